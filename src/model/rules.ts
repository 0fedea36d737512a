/** `--rules`: what nf_tables' own rule tracer said about a packet (NFT_MSG_TRACE
 * messages, read natively), grouped into runs — one packet through one base
 * chain, with the user chains it jumped into — and matched to the hop of that
 * chain. Rule texts are the kernel's ruleset as `nft -a list ruleset` prints it. */
import { sameBytes } from './packet';
import { tableFamilyName, TRACER_TABLE, type Ruleset } from './ruleset';

/** One batch from the rule tracer. */
export interface DecodedRuleBatch {
  events: RuleEvent[];
  lost: number;
  /** Every trace message queued before this (kernel clock) has arrived; 0: unknown (older traces). */
  drainedTo: number;
}

export interface RuleEvent {
  /** CLOCK_MONOTONIC ns when read (the kernel's messages carry no time). */
  ts: number;
  id: number;
  /** The table's family (NFPROTO_*). */
  family: number;
  table: string;
  chain: string;
  handle: number;
  /** 1 policy, 2 return, 3 rule. */
  type: number;
  verdict: number;
  jumpTarget: string;
  iif: number;
  oif: number;
  /** The hook's family (NFPROTO_*). */
  nfproto: number;
  networkHeader: Uint8Array;
  policy: number;
}

/** A rule the packet met in a chain, with what it said. */
export interface HopRule {
  chain: string;
  /** null: the base chain's policy, or the return from a user chain. */
  handle: number | null;
  text: string;
  verdict: string;
  /** For an iptables-nft (ip6tables-, ebtables-, arptables-nft) rule: the line its save tool prints. */
  saved?: string;
}

const EMPTY = new Uint8Array();
const TRACE_POLICY = 1;
const TRACE_RETURN = 2;
const TRACE_RULE = 3;

/** Netfilter and nf_tables verdict codes, as nft writes them. */
export function ruleVerdictName(v: number): string {
  switch (v) {
    case 0: return 'drop';
    case 1: return 'accept';
    case 2: return 'stolen';
    case 3: return 'queue';
    case 4: return 'repeat';
    case 5: return 'stop';
    case -1: return 'continue';
    case -2: return 'break';
    case -3: return 'jump';
    case -4: return 'goto';
    case -5: return 'return';
    default: return `verdict ${v}`;
  }
}

/** A verdict that ends the packet's way through this hook's chain. */
function terminal(e: RuleEvent): boolean {
  return e.type === TRACE_POLICY || (e.type !== TRACE_RETURN && e.verdict >= 0);
}

export interface RuleText {
  /** As `nft list ruleset` prints it. */
  text: string;
  /** As iptables-nft-save (or a sibling) prints it, where that can be told (xtablesSave.ts). */
  saved?: string;
}

export type RuleTexts = Map<string, RuleText>;

export function ruleKey(family: string, table: string, chain: string, handle: number): string {
  return `${family} ${table} ${chain} ${handle}`;
}

/** `nft -a list ruleset` -> rule text by family, table, chain and handle. Counters'
 * running values are left out: the text names the rule, not its state. */
export function parseRuleTexts(listing: string): RuleTexts {
  const out: RuleTexts = new Map();
  let table: { family: string; name: string } | undefined;
  let chain: string | undefined;
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    let m = /^table (\S+) (\S+) \{/.exec(line);
    if (m) {
      table = { family: m[1], name: m[2] };
      chain = undefined;
      continue;
    }
    m = /^chain (\S+) \{/.exec(line);
    if (m && table) {
      chain = m[1];
      continue;
    }
    if (line === '}') {
      if (chain) chain = undefined;
      else table = undefined;
      continue;
    }
    m = /^(.*\S) # handle (\d+)$/.exec(line);
    if (m && table && chain && !/^(type|policy) /.test(m[1])) {
      const text = m[1].replace(/counter packets \d+ bytes \d+/g, 'counter');
      out.set(ruleKey(table.family, table.name, chain, Number(m[2])), { text });
    }
  }
  return out;
}

/** One packet through one base chain (and the user chains it jumped into). */
export interface RuleRun {
  id: number;
  tableFamily: string;
  table: string;
  /** The base chain. */
  chain: string;
  nfproto: number;
  iif: number;
  oif: number;
  /** The addresses and L4 protocol in the network header when the base chain ran (none: not IP). */
  saddr: Uint8Array;
  daddr: Uint8Array;
  l4proto: number;
  ts: number;
  events: RuleEvent[];
  done: boolean;
  taken: boolean;
}

/** Copies, not views: a view would keep the whole decoded batch alive as long as the run. */
function addressesOf(nh: Uint8Array): { saddr: Uint8Array; daddr: Uint8Array; l4proto: number } {
  const version = nh.length ? nh[0] >> 4 : 0;
  if (version === 4 && nh.length >= 20) return { saddr: nh.slice(12, 16), daddr: nh.slice(16, 20), l4proto: nh[9] };
  if (version === 6 && nh.length >= 40) return { saddr: nh.slice(8, 24), daddr: nh.slice(24, 40), l4proto: nh[6] };
  return { saddr: new Uint8Array(), daddr: new Uint8Array(), l4proto: 0 };
}

/** How long after a packet's hop its trace messages may still arrive, and how
 * long an unclaimed run is kept. */
const MATCH_WINDOW_NS = 2e9;

/** What the hop a run is matched to says about itself. */
export interface HopKey {
  tableFamily: string;
  table: string;
  chain: string;
  nfproto: number;
  inIfindex: number;
  outIfindex: number;
  saddr: Uint8Array;
  daddr: Uint8Array;
  ts: number;
}

/** Rule-tracer messages, grouped into runs and handed to the hops they belong to.
 *
 * Why a match is unambiguous: the kernel numbers a packet's messages with one
 * trace id (a keyed hash of its skb) for the whole hook, and a base chain runs
 * once per packet and hook; a run is matched to the hop of the same table family,
 * table, base chain and hook family, the same in and out devices and the same
 * addresses, read no earlier than the hop ran. Two packets that agree on all of
 * that within the window (a burst of identical packets) are told apart by order:
 * runs are handed out oldest first, as the kernel sent them, to hops oldest first. */
/** Runs held at once: past this the oldest go (counted in `dropped`), so a flood of
 * trace messages JS cannot keep up with costs bounded memory. */
const MAX_RUNS = 10000;

export class RuleIndex {
  /** Unclaimed runs by what a hop matches them on, oldest first. */
  private byKey = new Map<string, RuleRun[]>();
  private bridgeRuns: RuleRun[] = [];
  private count = 0;
  private open = new Map<string, RuleRun>();
  private baseChains: { ruleset: Ruleset | undefined; keys: Set<string> } = { ruleset: undefined, keys: new Set() };
  /** Runs dropped unclaimed because too many were held. */
  dropped = 0;
  texts: RuleTexts = new Map();
  lost = 0;
  /** When the kernel's count of undelivered trace messages grew (kernel clock, as read). */
  private readonly lossTimes: number[] = [];

  constructor(
    /** Base chains of the moment: a message's chain is one, or a user chain of the last one. */
    private readonly ruleset: () => Ruleset | undefined,
    /** Our own table (the one that sets nftrace): its messages are not the user's rules. */
    private readonly ownTable = TRACER_TABLE,
  ) {}

  private isBaseChain(family: string, table: string, chain: string): boolean {
    const r = this.ruleset();
    if (r !== this.baseChains.ruleset) {
      const keys = new Set<string>();
      for (const h of r?.hooks ?? []) for (const u of h.users) for (const c of [u, ...(u.natChains ?? [])]) {
        if (c.kind === 'chain') keys.add(`${c.tableFamily} ${c.table} ${c.chain}`);
      }
      this.baseChains = { ruleset: r, keys };
    }
    return this.baseChains.keys.has(`${family} ${table} ${chain}`);
  }

  private static key(tableFamily: string, table: string, chain: string, nfproto: number, iif: number, oif: number): string {
    return `${tableFamily} ${table} ${chain} ${nfproto} ${iif} ${oif}`;
  }

  private keep(run: RuleRun): void {
    if (run.tableFamily === 'bridge') this.bridgeRuns.push(run);
    const k = RuleIndex.key(run.tableFamily, run.table, run.chain, run.nfproto, run.iif, run.oif);
    const list = this.byKey.get(k);
    if (list) list.push(run);
    else this.byKey.set(k, [run]);
    if (++this.count > MAX_RUNS) this.expire(-Infinity, MAX_RUNS / 2);
  }

  add(events: RuleEvent[]): void {
    for (const e of events) {
      if (this.ownTable.test(e.table)) continue;
      const family = tableFamilyName(e.family) ?? `family${e.family}`;
      const key = `${e.id}/${family}/${e.table}`;
      let run = this.open.get(key);
      if (!run || run.done || (this.isBaseChain(family, e.table, e.chain) && e.chain !== run.chain && !run.events.some((x) => x.jumpTarget === e.chain))) {
        const { saddr, daddr, l4proto } = addressesOf(e.networkHeader);
        run = {
          id: e.id, tableFamily: family, table: e.table, chain: e.chain, nfproto: e.nfproto, iif: e.iif, oif: e.oif,
          saddr, daddr, l4proto, ts: e.ts, events: [], done: false, taken: false,
        };
        this.open.set(key, run);
        this.keep(run);
      }
      // Its headers are in the run's addresses: the event itself need not hold the batch's bytes.
      run.events.push({ ...e, networkHeader: EMPTY });
      if (terminal(e)) run.done = true;
    }
  }

  /** The kernel's count of trace messages it could not deliver (ENOBUFS), as of ts. */
  noteLost(total: number, ts: number): void {
    if (total > this.lost) this.lossTimes.push(ts);
    this.lost = total;
    if (this.lossTimes.length > 1024) this.lossTimes.splice(0, this.lossTimes.length - 1024);
  }

  /** Were trace messages lost while a packet crossed (from, to)? */
  lostBetween(from: number, to: number): boolean {
    return this.lossTimes.some((t) => t >= from && t <= to);
  }

  /** Drops runs too old to be claimed at `nowNs` (-Infinity: none is), and beyond
   * `keepAtMost` the oldest. */
  expire(nowNs: number, keepAtMost = Infinity): void {
    const horizon = nowNs - MATCH_WINDOW_NS;
    let count = 0;
    const all: RuleRun[] = [];
    for (const [k, list] of this.byKey) {
      const kept = list.filter((r) => !r.taken && r.ts >= horizon);
      if (kept.length) this.byKey.set(k, kept);
      else this.byKey.delete(k);
      count += kept.length;
      if (keepAtMost !== Infinity) all.push(...kept);
    }
    if (count > keepAtMost) {
      const cut = all.sort((a, b) => a.ts - b.ts)[count - keepAtMost].ts;
      count = 0;
      for (const [k, list] of this.byKey) {
        const kept = list.filter((r) => r.ts >= cut);
        this.dropped += list.length - kept.length;
        count += kept.length;
        if (kept.length) this.byKey.set(k, kept);
        else this.byKey.delete(k);
      }
      this.bridgeRuns = this.bridgeRuns.filter((r) => r.ts >= cut);
    }
    this.count = count;
    this.bridgeRuns = this.bridgeRuns.filter((r) => !r.taken && r.ts >= horizon);
    for (const [k, r] of this.open) if (r.ts < horizon || r.done) this.open.delete(k);
  }

  /** The run of the hop, if the rule tracer saw it; each run is given once. */
  take(hop: HopKey): RuleRun | undefined {
    const list = this.byKey.get(RuleIndex.key(hop.tableFamily, hop.table, hop.chain, hop.nfproto, hop.inIfindex, hop.outIfindex));
    const at = list?.findIndex((r) => !r.taken && sameBytes(r.saddr, hop.saddr) && sameBytes(r.daddr, hop.daddr) &&
      r.ts >= hop.ts && r.ts - hop.ts < MATCH_WINDOW_NS) ?? -1;
    if (at < 0) return undefined;
    // Out of the list at once: under a flood the list is long, and a claimed run is not looked at again.
    const [run] = list!.splice(at, 1);
    this.count--;
    run.taken = true;
    return run;
  }

  /** Bridge-family runs nobody claimed, for chains no probe sees (the hooks backend). */
  unclaimed(pred: (r: RuleRun) => boolean): RuleRun[] {
    const out = this.bridgeRuns.filter((r) => !r.taken && pred(r));
    for (const r of out) r.taken = true;
    return out;
  }

  /** The rules of a run, in order, with their texts. */
  rulesOf(run: RuleRun): HopRule[] {
    // A rule message without a handle is the end of a chain's rules (nft monitor trace shows none).
    return run.events.filter((e) => e.type !== TRACE_RULE || e.handle).map((e) => {
      if (e.type === TRACE_POLICY) return { chain: e.chain, handle: null, text: `policy ${ruleVerdictName(e.policy)}`, verdict: ruleVerdictName(e.policy) };
      if (e.type === TRACE_RETURN) return { chain: e.chain, handle: null, text: 'return', verdict: 'return' };
      const known = this.texts.get(ruleKey(run.tableFamily, run.table, e.chain, e.handle));
      const text = known?.text ?? `rule ${e.handle} (text not in the ruleset read)`;
      const verdict = e.verdict === -3 || e.verdict === -4 ? `${ruleVerdictName(e.verdict)} ${e.jumpTarget}` : ruleVerdictName(e.verdict);
      return known?.saved ? { chain: e.chain, handle: e.handle, text, verdict, saved: known.saved } : { chain: e.chain, handle: e.handle, text, verdict };
    });
  }
}

/** The rule that decided: the last with a verdict that ends the chain, or the policy. */
export function decidingRule(rules: HopRule[]): HopRule | undefined {
  return [...rules].reverse().find((r) => ['accept', 'drop', 'stolen', 'queue'].includes(r.verdict) || r.handle === null && r.text.startsWith('policy'));
}
