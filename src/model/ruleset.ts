/** What runs at each netfilter hook of the traced netns, as the kernel's own
 * hook table says (native hookTable(): bpf/hook_table.bpf.c): nftables base
 * chains, x_tables tables, the NAT core and the chains it runs, conntrack,
 * br_netfilter, BPF links. The only source of table and chain names. */
import { familyName, hookName, type Family, type HookName } from './hooks';

export type TableFamily = 'ip' | 'ip6' | 'inet' | 'bridge' | 'arp' | 'netdev';

/** chain: an nftables base chain (iptables-nft and ebtables-nft make these too);
 * xtables / ebtables: a legacy table; nat: the NAT core, running its nat chains;
 * the rest run no rules: conntrack (and its confirm), defrag, br_netfilter, BPF links, others. */
export type HookUserKind =
  | 'chain' | 'xtables' | 'ebtables' | 'nat' | 'conntrack' | 'confirm' | 'defrag' | 'br_netfilter' | 'bpf' | 'other';

export interface HookUser {
  kind: HookUserKind;
  priority: number;
  /** The hook function, as /proc/kallsyms names it. */
  function: string;
  table?: string;
  chain?: string;
  tableFamily?: TableFamily;
  /** nftables chain type: filter, nat, route. */
  type?: string;
  policy?: 'accept' | 'drop';
  /** nftables chain handle; bpf: the program id. */
  handle?: number;
  /** The chain's own priority (nat chains run at the NAT core's, ordered by theirs). */
  chainPriority?: number;
  /** kind nat: the chains the NAT core runs here, in order. */
  natChains?: HookUser[];
}

export interface HookUsers {
  family: Family;
  hook: HookName;
  users: HookUser[];
}

export interface Ruleset {
  hooks: HookUsers[];
  /** The kernel had more entries than the reader holds. */
  truncated?: boolean;
  /** Why the hook table could not be read: hops then name hooks, never tables. */
  unreadable?: string;
}

/** One entry of native hookTable(). */
export interface RawHookEntry {
  family: number;
  hook: number;
  index: number;
  priority: number;
  function: string;
  owner: 'nft' | 'xt' | 'ebt' | 'nat' | 'bpf' | 'other';
  natIndex: number;
  table: string;
  chain: string;
  type: string;
  tableFamily: number;
  policy: number;
  handle: number;
  chainPriority: number;
}

const TABLE_FAMILIES: Record<number, TableFamily> = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' };

/** nftables' names of the NFPROTO_* a table belongs to. */
export function tableFamilyName(nfproto: number): TableFamily | undefined {
  return TABLE_FAMILIES[nfproto];
}

function kindOf(e: RawHookEntry): HookUserKind {
  switch (e.owner) {
    case 'nft':
      return 'chain';
    case 'xt':
      return 'xtables';
    case 'ebt':
      return 'ebtables';
    case 'nat':
      return 'nat';
    case 'bpf':
      return 'bpf';
    default:
      break;
  }
  const f = e.function;
  if (/defrag/.test(f)) return 'defrag';
  if (/^(nf_confirm|ipv[46]_confirm)$/.test(f)) return 'confirm';
  if (/conntrack/.test(f)) return 'conntrack';
  if (/^(ip_sabotage_in|br_nf_)/.test(f)) return 'br_netfilter';
  return 'other';
}

function userOf(e: RawHookEntry): HookUser {
  const kind = kindOf(e);
  const u: HookUser = { kind, priority: e.priority, function: e.function || 'unknown' };
  if (kind === 'chain') {
    u.table = e.table;
    u.chain = e.chain;
    u.tableFamily = tableFamilyName(e.tableFamily);
    u.type = e.type || undefined;
    u.policy = e.policy === 0 ? 'drop' : 'accept';
    u.handle = e.handle;
    u.chainPriority = e.chainPriority;
  } else if (kind === 'xtables' || kind === 'ebtables') {
    u.table = e.table;
    u.chain = hookName(e.hook, e.family);
    u.tableFamily = tableFamilyName(e.tableFamily) ?? (kind === 'ebtables' ? 'bridge' : undefined);
  } else if (kind === 'bpf') {
    u.handle = e.handle;
  }
  return u;
}

/** The table `--rules` adds (src/capture/rules.ts). */
export const TRACER_TABLE = /^bpftrace_net_\d+$/;

/** The kernel's flat entry list -> users per hook, NAT chains inside their NAT core entry. */
export function rulesetFromEntries(entries: RawHookEntry[], truncated = false): Ruleset {
  const byHook = new Map<string, HookUsers>();
  let nat: HookUser | undefined;
  for (const e of entries) {
    const u = userOf(e);
    // `--rules` tables (this tracer's or another's) mark packets; they are tracers, like BPF links.
    if (u.kind === 'chain' && TRACER_TABLE.test(u.table ?? '')) continue;
    const key = `${e.family}/${e.hook}`;
    let group = byHook.get(key);
    if (!group) {
      group = { family: familyName(e.family), hook: hookName(e.hook, e.family), users: [] };
      byHook.set(key, group);
    }
    if (e.natIndex > 0) {
      if (nat) (nat.natChains ??= []).push(u);
      continue;
    }
    if (u.kind === 'nat') {
      u.natChains = [];
      nat = u;
    }
    group.users.push(u);
  }
  return { hooks: [...byHook.values()], truncated };
}

/** Users that run rules, and so can be a hop: chains, legacy tables, the NAT core with its chains. */
export function runsRules(u: HookUser): boolean {
  return u.kind === 'chain' || u.kind === 'xtables' || u.kind === 'ebtables' || u.kind === 'nat';
}

/** Users whose chains a packet can meet here (a NAT core without nat chains has none). */
export function hasChains(u: HookUser): boolean {
  return u.kind === 'nat' ? (u.natChains?.length ?? 0) > 0 : runsRules(u);
}

/** "ip filter FORWARD", "inet fw fwd", "iptables-legacy mangle PREROUTING", "conntrack (ipv4_conntrack_in)". */
export function describeUser(u: HookUser): string {
  switch (u.kind) {
    case 'chain':
      return `${u.tableFamily ?? '?'} ${u.table} ${u.chain}`;
    case 'xtables':
      return `${u.tableFamily === 'ip6' ? 'ip6tables' : u.tableFamily === 'arp' ? 'arptables' : 'iptables'}-legacy ${u.table} ${u.chain}`;
    case 'ebtables':
      return `ebtables-legacy ${u.table} ${u.chain}`;
    case 'nat':
      return u.natChains?.length ? u.natChains.map(describeUser).join(', ') : `the NAT core (${u.function})`;
    case 'bpf':
      return `BPF program ${u.handle ?? '?'}`;
    default:
      return `${u.kind} (${u.function})`;
  }
}

/** The users of one hook. */
export function usersAt(ruleset: Ruleset | undefined, family: Family, hook: HookName): HookUser[] {
  return ruleset?.hooks.find((h) => h.family === family && h.hook === hook)?.users ?? [];
}

/** Every line of `a` not in `b`, and the reverse: what a ruleset change did, in words. */
export function rulesetChanges(before: Ruleset, after: Ruleset): string[] {
  const lines = (r: Ruleset) =>
    new Set(r.hooks.flatMap((h) => h.users.filter((u) => u.kind !== 'bpf').map((u) => `${h.family} ${h.hook} ${u.priority}: ${describeUser(u)}`)));
  const a = lines(before);
  const b = lines(after);
  return [...[...b].filter((l) => !a.has(l)).map((l) => `+ ${l}`), ...[...a].filter((l) => !b.has(l)).map((l) => `- ${l}`)];
}
