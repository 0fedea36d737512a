/** `--rules`: an iptables-nft (ip6tables-, ebtables-, arptables-nft) rule in the form its
 * own tool saves it, beside the nft text. The save tools print no handles, but they print a
 * chain's rules in the kernel's order, as `nft -a list ruleset` does: the k-th `-A CHAIN`
 * line of a table is the k-th rule of that chain. The pairing is made only where the counts
 * agree (and only from a save taken while the nft listing stayed the same, see
 * capture/rules.ts), so a form shown is the rule's own, never a neighbour's. */
import type { RuleTexts } from './rules';

/** The save tool of each family whose tables iptables-nft and its siblings manage. */
export const SAVE_TOOLS: Record<string, string> = {
  ip: 'iptables-nft-save',
  ip6: 'ip6tables-nft-save',
  bridge: 'ebtables-nft-save',
  arp: 'arptables-nft-save',
};

interface SavedTable {
  /** Chain -> its policy as saved (`ACCEPT`, `DROP`, `-` for an iptables user chain, `RETURN` ...). */
  policies: Map<string, string>;
  /** Chain -> its `-A` lines, in order. */
  rules: Map<string, string[]>;
}

/** `*table`, `:CHAIN POLICY [counters]`, `-A CHAIN ...`, `COMMIT`; comments and warnings skipped. */
export function parseSave(output: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let table: SavedTable | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.trimEnd();
    let m = /^\*(\S+)$/.exec(line);
    if (m) {
      table = { policies: new Map(), rules: new Map() };
      tables.set(m[1], table);
      continue;
    }
    if (!table) continue;
    if (line === 'COMMIT') {
      table = undefined;
      continue;
    }
    m = /^:(\S+) (\S+)/.exec(line);
    if (m) {
      table.policies.set(m[1], m[2]);
      continue;
    }
    m = /^-A (\S+) /.exec(line);
    if (m) {
      const list = table.rules.get(m[1]) ?? [];
      list.push(line);
      table.rules.set(m[1], list);
    }
  }
  return tables;
}

/** Gives each rule of `family`'s saved tables its saved form; returns how many rules got one.
 * ebtables-nft keeps a user chain's policy (`:FOO DROP`) as one more rule at the chain's end,
 * which no `-A` line names: that rule's form is the policy line. */
export function addSavedForms(texts: RuleTexts, family: string, save: string): number {
  const handles = new Map<string, number[]>();
  for (const key of texts.keys()) {
    const [fam, table, chain, handle] = key.split(' ');
    if (fam !== family) continue;
    const at = `${table} ${chain}`;
    const list = handles.get(at) ?? [];
    list.push(Number(handle));
    handles.set(at, list);
  }
  let given = 0;
  for (const [name, saved] of parseSave(save)) {
    for (const [chain, ruleHandles] of handles) {
      const [table, chainName] = chain.split(' ');
      if (table !== name) continue;
      const lines = saved.rules.get(chainName) ?? [];
      const policy = saved.policies.get(chainName);
      const forms = [...lines];
      if (family === 'bridge' && policy && policy !== 'RETURN' && ruleHandles.length === lines.length + 1 && !isBaseChain(chainName)) {
        forms.push(`:${chainName} ${policy}`);
      }
      if (forms.length !== ruleHandles.length) continue;
      ruleHandles.forEach((handle, i) => {
        const key = `${family} ${table} ${chainName} ${handle}`;
        texts.set(key, { ...texts.get(key)!, saved: forms[i] });
        given++;
      });
    }
  }
  return given;
}

function isBaseChain(chain: string): boolean {
  return ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'BROUTING'].includes(chain);
}

/** What a family's saved form is called in text output. */
export function savedFormLabel(family: string): string {
  return (SAVE_TOOLS[family] ?? 'iptables-nft-save').replace('-nft-save', '');
}
