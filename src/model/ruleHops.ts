/** --rules: what nf_tables' rule tracer said, given to the traversal's hops: the
 * rules each chain hop met, the bridge chains no probe reaches, the rule that
 * dropped the packet, and the hops whose messages were lost. */
import type { KernelEvent } from '../decode';
import type { ModelContext } from './build';
import { formatAddress } from './packet';
import { decidingRule, type RuleRun } from './rules';
import type { Hop, TraversalEnd } from './traversal';

/** The rules the packet met in a hop's chain, from the rule tracer's run of that chain.
 * A probe runs after its chains (NAT rewrites in between): the run may show the
 * addresses before (`before`) or at the hop. */
export function attachRules(hop: Hop, e: KernelEvent, before: KernelEvent | undefined, ctx: ModelContext): void {
  if (!ctx.rules || !hop.table || !hop.chain || !hop.tableFamily) return;
  // A message read a little before the probe event's own clock read is the same moment.
  const key = { tableFamily: hop.tableFamily, table: hop.table, chain: hop.chain, nfproto: e.nfFamily, inIfindex: e.inIfindex, outIfindex: e.outIfindex, ts: e.ts - 10e6 };
  const run = ctx.rules.take({ ...key, saddr: e.packet.saddr, daddr: e.packet.daddr }) ??
    (before ? ctx.rules.take({ ...key, saddr: before.packet.saddr, daddr: before.packet.daddr }) : undefined);
  if (run) hop.rules = ctx.rules.rulesOf(run);
}

const BRIDGE_FIRST_HOOKS = new Set(['BROUTING', 'PREROUTING']);

/** --rules on a backend that sees no bridge family (hooks): the bridge chains the rule
 * tracer saw this packet cross (ebtables-nft, nft `bridge` tables) become hops of their
 * own, marked seenBy 'nftrace'. Their place follows the bridge's order: BROUTING and
 * PREROUTING after the port's RX, INPUT before the bridge device's RX, FORWARD before
 * br_netfilter's FORWARD, OUTPUT and POSTROUTING before the port's TX. */
export function addBridgeHops(first: KernelEvent, last: KernelEvent, hops: Hop[], ctx: ModelContext): void {
  if (!ctx.rules || hops.some((h) => h.family === 'bridge')) return;
  const rx = hops.find((h) => h.hook === 'RX' && h.rxHandler === 'br_handle_frame');
  const bridgeName = ctx.deviceName(ctx.bridgeIfindex, ctx.netns);
  const ports = new Set(hops.filter((h) => h.hook === 'TX' && h.out !== bridgeName).map((h) => h.out));
  const addrs = new Set(hops.flatMap((h) => [h.src, h.dst]).filter(Boolean));
  const name = (i: number) => (i ? ctx.deviceName(i, ctx.netns) : null);
  const fmt = (b: Uint8Array) => formatAddress(b);
  // The same kind of packet: an IP packet's run has its protocol and addresses, a frame's that is not IP none.
  const same = (r: RuleRun) => (first.packet.ipVersion
    ? r.saddr.length > 0 && r.l4proto === first.packet.l4proto && addrs.has(fmt(r.saddr)) && addrs.has(fmt(r.daddr))
    : r.saddr.length === 0);
  const runs = ctx.rules.unclaimed((r) => r.tableFamily === 'bridge' && r.ts >= first.ts - 10e6 && r.ts <= last.ts + 1e9 &&
    ((rx !== undefined && name(r.iif) === rx.in) || ports.has(name(r.oif))) && same(r));
  const ruleset = ctx.probes?.planAt(first.ts)?.ruleset;
  for (const run of runs) {
    const hook = ruleset?.hooks.find((h) => h.family === 'bridge' && h.users.some((u) => u.kind === 'chain' && u.table === run.table && u.chain === run.chain))?.hook;
    if (!hook) continue;
    const rules = ctx.rules.rulesOf(run);
    const decided = decidingRule(rules);
    const hop: Hop = {
      family: 'bridge', hook, table: run.table, chain: run.chain, tableFamily: 'bridge',
      verdict: decided?.verdict === 'drop' ? 'DROP' : decided?.verdict === 'accept' ? 'ACCEPT' : null,
      in: name(run.iif), out: name(run.oif), physin: null, physout: null,
      src: run.saddr.length ? fmt(run.saddr) : null, dst: run.daddr.length ? fmt(run.daddr) : null,
      observed: true, ts: run.ts, rules, seenBy: 'nftrace', note: 'seen through the rule tracer (no probe reaches the bridge family here)',
    };
    if (hop.verdict === 'DROP') {
      // The tracer saw where it died: a drop only deduced from the probes around it goes.
      const guessed = hops.findIndex((h) => h.verdict === 'DROP' && !h.observed && h.family !== 'bridge');
      if (guessed >= 0) hops.splice(guessed, 1);
    }
    let at: number;
    if (BRIDGE_FIRST_HOOKS.has(hook)) at = rx ? hops.indexOf(rx) + 1 : 0;
    else if (hook === 'INPUT') at = hops.findIndex((h) => h.hook === 'RX' && h.in === bridgeName);
    else if (hook === 'FORWARD') at = hops.findIndex((h) => h.hook === 'FORWARD' || h.hook === 'POSTROUTING' || h.hook === 'TX');
    else at = hops.findIndex((h) => h.hook === 'TX' && h.out === hop.out);
    if (hop.verdict === 'DROP') at = hops.length;
    if (at < 0) at = hops.length;
    // After the bridge hops already placed there, in the order the tracer saw them.
    while (at < hops.length && hops[at].seenBy === 'nftrace') at++;
    hops.splice(at, 0, { ...hop, ts: hops[Math.max(0, at - 1)]?.ts ?? hop.ts });
  }
}

/** --rules: chain hops left without their rules while the kernel could not deliver
 * trace messages (ENOBUFS), or of a packet explained before its messages could come
 * (too many packets waiting, see capture/pipeline.ts), say so, and count toward the
 * packet's `missing`. */
export function countRulesLost(first: KernelEvent, last: KernelEvent, hops: Hop[], ctx: ModelContext, hurried = false): number {
  const overflowed = ctx.rules?.lostBetween(first.ts - 10e6, last.ts + 1e9);
  if (!ctx.rules || (!overflowed && !hurried)) return 0;
  const why = overflowed ? "the rule tracer's messages overflowed" : 'not waited for: too many packets were waiting for theirs';
  const bare = hops.filter((h) => h.tableFamily && h.table && !h.rules && h.consulted !== false);
  for (const h of bare) h.note = `${h.note ? `${h.note}; ` : ''}its rules were lost: ${why}`;
  return bare.length;
}

/** --rules: the chain and rule that dropped the packet. */
export function attributeDrop(hops: Hop[], end: TraversalEnd): void {
  if (end.kind !== 'drop') return;
  const at = hops.find((h) => h.verdict === 'DROP' && h.rules?.length);
  const rule = at?.rules && decidingRule(at.rules);
  if (!at || !rule || rule.verdict !== 'drop') return;
  end.table = at.table ?? undefined;
  end.chain = rule.chain;
  end.rule = rule;
}
