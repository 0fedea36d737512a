/** One packet's kernel events -> a Traversal: hops in order, where it ended,
 * and the decisions the events imply. */
import { EventKind, isEndEvent, KernelEvent, PacketHeaders } from '../decode';
import { native } from '../native';

/** The decision codes of bpf/events.h, as the addon compiled them. */
const DECISION = native().eventLayout;
import { familyName, hookName, verdictName } from './hooks';
import { ProbeHistory, type Probe, type ProbePlan } from './probes';
import { describeUser, hasChains, runsRules, usersAt, type HookUser } from './ruleset';
import { decidingRule, type RuleIndex } from './rules';
import { addBridgeHops, attachRules, attributeDrop, countRulesLost } from './ruleHops';
import { ctStateName, describePacket, formatAddress, formatMac, isIcmpError, natTableConsulted, protoName, sameBytes, vlanTag } from './packet';
import type { Branch, Decision, DeviceInfo, Hop, HookRun, Traversal, TraversalEnd } from './traversal';

export interface ModelContext {
  /** The traced netns (inode) and its bridge. */
  netns: number;
  bridgeIfindex: number;
  /** Device name for an ifindex in a netns (inode). */
  deviceName(ifindex: number, netns: number): string | null;
  symbol(addr: bigint): string | undefined;
  dropReason(reason: number): string;
  /** Kernel monotonic ns -> Unix epoch ns. */
  toEpochNs(ts: number): number;
  /** The route the netns' table has for a destination, where known. */
  route?(dst: string): { prefix: string; dev?: string; via?: string } | undefined;
  /** What sits behind a device of the traced netns (a port's container), where known. */
  deviceInfo?(name: string): DeviceInfo | undefined;
  /** --rules: what nf_tables' rule tracer said, to be given to the hops it belongs to. */
  rules?: RuleIndex;
  /** The traced netns's hook table over time, and where the hooks backend's probes were. */
  probes?: ProbeHistory;
  /** br_netfilter's bridge-nf-call-* switches in the traced netns, where known. */
  brNetfilter?: { iptables: boolean | undefined; ip6tables: boolean | undefined };
}

const NETFILTER_DROP = 'NETFILTER_DROP';

type HopAddresses = Pick<Hop, 'src' | 'dst' | 'smac' | 'dmac' | 'vlan'>;

/** The last few headers formatted: a packet's hops mostly share them (a few: MACs change where
 * it is routed, addresses where it is translated), and formatting is a hot path. Replaced in
 * turn; a hit by value takes the new headers, so their other hops hit by identity. */
const FORMATTED_KEPT = 4;
const lastHeaders: (PacketHeaders | undefined)[] = new Array(FORMATTED_KEPT).fill(undefined);
const lastAddresses: HopAddresses[] = new Array(FORMATTED_KEPT).fill({ src: null, dst: null });
let nextReplaced = 0;

function sameAddresses(p: PacketHeaders, q: PacketHeaders): boolean {
  return sameBytes(p.saddr, q.saddr) && sameBytes(p.daddr, q.daddr) && sameBytes(p.smac, q.smac) &&
    sameBytes(p.dmac, q.dmac) && p.vlanProto === q.vlanProto && p.vlanTci === q.vlanTci;
}

function addresses(e: KernelEvent): HopAddresses {
  const p = e.packet;
  for (let i = 0; i < FORMATTED_KEPT; i++) if (lastHeaders[i] === p) return lastAddresses[i];
  for (let i = 0; i < FORMATTED_KEPT; i++) {
    const q = lastHeaders[i];
    if (q && sameAddresses(p, q)) {
      lastHeaders[i] = p;
      return lastAddresses[i];
    }
  }
  const smac = formatMac(p.smac);
  const dmac = formatMac(p.dmac);
  const formatted: HopAddresses = { src: formatAddress(p.saddr), dst: formatAddress(p.daddr) };
  if (smac && dmac) {
    formatted.smac = smac;
    formatted.dmac = dmac;
  }
  if (p.vlanProto) formatted.vlan = vlanTag(p.vlanProto, p.vlanTci);
  lastHeaders[nextReplaced] = p;
  lastAddresses[nextReplaced] = formatted;
  nextReplaced = (nextReplaced + 1) % FORMATTED_KEPT;
  return formatted;
}

/** The fields every hop has past its devices, in the order --json prints them. Assigned one
 * by one: an object spread takes V8's slow generic path, and this runs for every hop. */
function finishHop(hop: Hop, e: KernelEvent): Hop {
  const a = addresses(e);
  hop.src = a.src;
  hop.dst = a.dst;
  if (a.smac !== undefined) {
    hop.smac = a.smac;
    hop.dmac = a.dmac;
  }
  if (a.vlan !== undefined) hop.vlan = a.vlan;
  hop.observed = true;
  hop.ts = e.ts;
  hop.ttl = e.packet.ttl || undefined;
  hop.cpu = e.cpu;
  return hop;
}

function deviceHop(e: KernelEvent, ctx: ModelContext, hook: 'RX' | 'TX'): Hop {
  const dev = ctx.deviceName(e.ifindex, e.netns);
  const hop = finishHop({
    family: 'netdev', hook, table: null, verdict: null,
    in: hook === 'RX' ? dev : null, out: hook === 'TX' ? dev : null, physin: null, physout: null,
  } as Hop, e);
  if (hook === 'RX') {
    hop.rxHandler = ctx.symbol(e.aux) ?? (e.aux ? `0x${e.aux.toString(16)}` : null);
    if (hop.rxHandler === 'br_handle_frame') hop.note = `bridge port ${dev}: br_handle_frame takes the frame (L2 path)`;
    else if (e.ifindex === ctx.bridgeIfindex && e.netns === ctx.netns) hop.note = 'the bridge passes it up to its own L3 stack';
  }
  return hop;
}

function netfilterHop(e: KernelEvent, ctx: ModelContext, table: Hop['table'], verdict: Hop['verdict']): Hop {
  const name = (ifindex: number) => (ifindex ? ctx.deviceName(ifindex, e.netns) : null);
  const hop = finishHop({
    family: familyName(e.nfFamily), hook: hookName(e.nfHook, e.nfFamily), table, verdict,
    in: name(e.inIfindex), out: name(e.outIfindex), physin: name(e.physinIfindex), physout: name(e.physoutIfindex),
  } as Hop, e);
  hop.ct = ctStateName(e.packet.ctState);
  return hop;
}

/** The hop a user of a hook that runs rules makes: its real table and chain. */
function userHop(e: KernelEvent, ctx: ModelContext, u: HookUser, verdict: Hop['verdict']): Hop {
  const hop = netfilterHop(e, ctx, u.table ?? null, verdict);
  if (u.chain) hop.chain = u.chain;
  if (u.tableFamily) hop.tableFamily = u.tableFamily;
  hop.priority = u.priority;
  if (u.kind === 'xtables' || u.kind === 'ebtables') hop.note = `${describeUser(u)} (legacy x_tables)`;
  return hop;
}

/** The hops a probe stands for: every chain between it and the probe before it
 * let the packet through. The NAT core runs its nat chains only for a
 * connection's first packet; later ones get the translation conntrack holds. */
function probeHops(e: KernelEvent, ctx: ModelContext, probe: Probe, plan: ProbePlan): Hop[] {
  const hops: Hop[] = [];
  if (probe.after === null) {
    // The hook's first probe: where the hook has no chain at all (or the ruleset could
    // not be read), the hook itself is the hop, so the path still shows it.
    const users = usersAt(plan.ruleset, familyName(e.nfFamily), hookName(e.nfHook, e.nfFamily));
    if (plan.ruleset.unreadable || !users.some(hasChains)) {
      const hop = netfilterHop(e, ctx, null, null);
      hop.note = plan.ruleset.unreadable ? 'hook reached (the ruleset could not be read)' : 'hook reached: no chain is registered here';
      return [hop];
    }
  }
  for (const u of probe.covers) {
    if (!runsRules(u)) continue;
    const chains = u.kind === 'nat' ? u.natChains ?? [] : [u];
    for (const c of chains) {
      const hop = userHop(e, ctx, c, 'ACCEPT');
      if (u.kind === 'nat') {
        hop.priority = u.priority;
        if (c.chainPriority !== undefined && c.kind === 'chain') hop.chainPriority = c.chainPriority;
        if (!natTableConsulted(e.packet)) {
          hop.consulted = false;
          const ct = ctStateName(e.packet.ctState);
          hop.note = ct === null || ct === 'untracked'
            ? 'nat chain not consulted: the packet has no conntrack entry (nat needs one)'
            : `nat chain not consulted: the connection is ${ct}, conntrack applies its translation`;
        }
      }
      hops.push(hop);
    }
  }
  return hops;
}

/** A netfilter DROP seen as a kfree_skb after the last probe reached: it
 * happened in what runs between that probe and the next one. One chain there
 * is named as the dropper; several are named as candidates (inferred). */
function dropHop(lastNf: KernelEvent, drop: KernelEvent, ctx: ModelContext): Hop {
  const found = ctx.probes?.probe(lastNf.nfFamily, lastNf.nfHook, lastNf.nfSlot, lastNf.ts);
  const after = found ? ProbeHistory.coveredAfter(found.plan, found.probe) : [];
  const ruled = after.flatMap((u) => (u.kind === 'nat' ? u.natChains ?? [] : runsRules(u) ? [u] : []));
  let hop: Hop;
  // --rules: the rule tracer names the chain that said drop among several.
  const told = ctx.rules && ruled.length > 1 ? ruled.map((u) => {
    const h = userHop(lastNf, ctx, u, 'DROP');
    attachRules(h, lastNf, undefined, ctx);
    return h;
  }).find((h) => h.rules && decidingRule(h.rules)?.verdict === 'drop') : undefined;
  if (told) {
    hop = told;
  } else if (ruled.length >= 1 && ruled.length === after.filter((u) => u.kind !== 'nat' || u.natChains?.length).length) {
    hop = userHop(lastNf, ctx, ruled[0], 'DROP');
    if (ruled.length > 1) {
      hop.inferred = ['table'];
      hop.note = `dropped in one of: ${ruled.map(describeUser).join(', ')}`;
    }
  } else {
    hop = netfilterHop(lastNf, ctx, null, 'DROP');
    hop.inferred = ['table'];
    hop.note = after.length
      ? `dropped between probes, where the kernel runs: ${after.map(describeUser).join(', ')}`
      : 'dropped after the last probe of the hook';
  }
  hop.ts = drop.ts;
  hop.observed = false;
  return hop;
}

/** Events of this packet the kernel numbered but never delivered (ring full). */
function missingEvents(sorted: KernelEvent[]): number {
  const last = sorted[sorted.length - 1];
  return last.seq + 1 - sorted.length;
}

/** A table (iptables/ebtables/nftables) that ran and said what it said: seen, not inferred. */
function tableHop(e: KernelEvent, ctx: ModelContext): Hop {
  const hop = netfilterHop(e, ctx, e.table || null, verdictName(e.verdict));
  if (hop.family === 'bridge' && hop.table === 'broute') {
    // The BROUTING step (ebtables-nft would register it as a prerouting chain).
    hop.hook = 'BROUTING';
    if (hop.verdict === 'DROP') hop.note = "broute: DROP means 'route': the frame leaves the bridge for the port's own L3 stack";
  }
  if (e.chain) hop.chain = e.chain;
  // The table's family and priority, from the hook table of the moment.
  const users = usersAt(ctx.probes?.planAt(e.ts)?.ruleset, hop.family, hop.hook).flatMap((u) => [u, ...(u.natChains ?? [])]);
  const u = users.find((x) => x.table === hop.table && (!e.chain || x.chain === e.chain));
  if (u?.tableFamily) hop.tableFamily = u.tableFamily;
  if (u) hop.priority = u.priority;
  return hop;
}

const RX_HANDLER_RESULTS = ['CONSUMED', 'ANOTHER', 'EXACT', 'PASS'];

/** br_handle_frame returns after everything it started (its fexit comes
 * late): its result belongs to the RX hop of the port that took the frame. */
function applyRxHandlerResult(e: KernelEvent, hops: Hop[]): void {
  const hop = [...hops].reverse().find((h) => h.hook === 'RX' && h.rxHandler === 'br_handle_frame');
  if (!hop) return;
  const result = RX_HANDLER_RESULTS[e.verdict] ?? `${e.verdict}`;
  hop.rxResult = result;
  if (result === 'CONSUMED') hop.note = `bridge port ${hop.in}: br_handle_frame took the frame (RX_HANDLER_CONSUMED, L2 path)`;
  else if (result === 'PASS') hop.note = `bridge port ${hop.in}: br_handle_frame let it pass to the port's own stack (RX_HANDLER_PASS, L3: brouted)`;
}

function bridgeDecision(e: KernelEvent, ctx: ModelContext): Decision {
  const port = e.outIfindex ? ctx.deviceName(e.outIfindex, e.netns) : null;
  switch (e.detail) {
    case DECISION.bridgeDecision.forward:
      return { ts: e.ts, kind: 'bridge', decision: 'forward', port, text: `FDB: the destination MAC is behind port ${port}` };
    case DECISION.bridgeDecision.flood:
      return { ts: e.ts, kind: 'bridge', decision: 'flood', text: 'unknown or broadcast destination MAC: flooded to the ports' };
    default:
      return { ts: e.ts, kind: 'bridge', decision: 'local', text: "the destination MAC is the bridge's own: up to L3" };
  }
}

function forwardText(dst: string | null, out: string | null, ctx: ModelContext): string {
  const r = dst ? ctx.route?.(dst) : undefined;
  const how = r ? `, route ${r.prefix}${r.via ? ` via ${r.via}` : ''}` : '';
  return `routing: not for this host, forwarded${out ? ` out ${out}` : ''}${how}`;
}

function routeDecision(e: KernelEvent, ctx: ModelContext): Decision {
  return e.detail === DECISION.routeDecision.forward
    ? { ts: e.ts, kind: 'route', decision: 'forward', text: forwardText(formatAddress(e.packet.daddr), null, ctx) }
    : { ts: e.ts, kind: 'route', decision: 'local', text: 'routing: addressed to this host, delivered locally' };
}

/** The hooks backend sees no routing function, but the hook after PREROUTING
 * tells: FORWARD means routed on, INPUT means delivered here. */
function inferRouting(hops: Hop[], decisions: Decision[], ctx: ModelContext): void {
  if (decisions.some((d) => d.kind === 'route')) {
    // Seen by a function-tracing backend: add the way out once it is known.
    const fwd = hops.find((h) => h.hook === 'FORWARD' && h.family !== 'bridge' && h.out);
    const d = decisions.find((x) => x.kind === 'route' && x.decision === 'forward');
    if (d && fwd) d.text = forwardText(fwd.dst, fwd.out, ctx);
    return;
  }
  let prev: Hop | undefined;
  for (const h of hops) {
    if (h.family !== 'ipv4' && h.family !== 'ipv6') continue;
    const after = prev;
    prev = h;
    if (after?.hook !== 'PREROUTING' || after.family !== h.family) continue;
    if (h.hook === 'FORWARD') {
      // br_netfilter runs ipv4 FORWARD for frames bridged port to port too: physout says so, no route was looked up.
      if (h.physout) return;
      decisions.push({ ts: h.ts, kind: 'route', decision: 'forward', text: forwardText(h.dst, h.out, ctx), inferred: true });
      return;
    }
    if (h.hook === 'INPUT') {
      decisions.push({ ts: h.ts, kind: 'route', decision: 'local', text: 'routing: addressed to this host, delivered locally', inferred: true });
      return;
    }
  }
}

/** nf_hook_slow's result: 1 the packet goes on, 0 stolen or queued, < 0 dropped (-errno). */
function closeHookRun(run: HookRun, ret: number): void {
  if (ret === 1) run.verdict = 'ACCEPT';
  else if (ret === 0) run.verdict = 'STOLEN';
  else {
    run.verdict = 'DROP';
    run.errno = -ret;
  }
}

function explainDrop(hops: Hop[], end: TraversalEnd, decisions: Decision[]): void {
  if (end.kind !== 'drop') return;
  const at = hops.find((h) => h.verdict === 'DROP' && h.table !== 'broute');
  const where = at ? ` at ${at.family} ${at.table ?? '?'} ${at.hook}${at.chain && at.chain !== at.hook ? ` (chain ${at.chain})` : ''}` : end.dev ? ` on ${end.dev}` : '';
  const ts = at?.ts ?? hops[hops.length - 1]?.ts ?? 0;
  decisions.push({ ts, kind: 'drop', decision: 'drop', text: `dropped${where}, kernel reason ${end.reason}${end.location ? ` (${end.location})` : ''}` });
}

/** Without bridge functions in sight (hooks backend): a frame that came in by
 * one port and left by another, never passing up to the bridge device, was
 * switched at L2; one that the bridge device received went up to L3. */
function inferBridging(hops: Hop[], decisions: Decision[], branches: Branch[]): void {
  if (decisions.some((d) => d.kind === 'bridge' && d.decision !== 'no-iptables')) return;
  const rx = hops.find((h) => h.hook === 'RX' && h.rxHandler === 'br_handle_frame');
  if (!rx) return;
  const up = hops.find((h) => h.hook === 'RX' && h !== rx && h.rxHandler !== 'br_handle_frame');
  if (up) {
    decisions.push({ ts: up.ts, kind: 'bridge', decision: 'local', text: `the destination MAC is the bridge's own: up to L3 on ${up.in}`, inferred: true });
    return;
  }
  const out = hops.find((h) => h.hook === 'TX' && h.out !== rx.in);
  if (out && !branches.length) {
    decisions.push({ ts: out.ts, kind: 'bridge', decision: 'forward', port: out.out, text: `switched at L2 to port ${out.out} (FDB)`, inferred: true });
  }
}

/** Copies the bridge made: say where they went (a function-tracing backend
 * also saw br_flood itself). */
function explainFlood(branches: Branch[], decisions: Decision[]): void {
  if (!branches.length) return;
  const ports = branches.map((b) => b.end.dev ?? '?');
  const seen = decisions.find((d) => d.kind === 'bridge' && d.decision === 'flood');
  const text = `flooded: ${branches.length} ${branches.length === 1 ? 'copy' : 'copies'} out ${ports.join(', ')}`;
  if (seen) seen.text = text;
  else decisions.push({ ts: branches[0].hops[0]?.ts ?? 0, kind: 'bridge', decision: 'flood', port: null, text, inferred: true });
}

/** A frame bridged from port to port never met iptables: say why, if the
 * switch that would have sent it there is off. */
function explainNoIptables(first: KernelEvent, hops: Hop[], decisions: Decision[], ctx: ModelContext): void {
  const v6 = first.packet.ipVersion === 6;
  const sw = v6 ? ctx.brNetfilter?.ip6tables : ctx.brNetfilter?.iptables;
  if (sw !== false || !first.packet.ipVersion) return;
  const family = v6 ? 'ipv6' : 'ipv4';
  const bridged = hops[0]?.rxHandler === 'br_handle_frame' && hops.some((h) => h.hook === 'TX' && h.out !== hops[0].in);
  if (!bridged || hops.some((h) => h.family === family)) return;
  const name = v6 ? 'bridge-nf-call-ip6tables' : 'bridge-nf-call-iptables';
  decisions.push({ ts: hops[0].ts, kind: 'bridge', decision: 'no-iptables', text: `${name}=0: bridged ${v6 ? 'IPv6' : 'IPv4'} is not passed to ${v6 ? 'ip6tables' : 'iptables'}` });
}

/** Where the packet's headers were read: the event, and for a probe's, the probe (what ran
 * just before it, put in words only where a rewrite is found). */
interface Point {
  e: KernelEvent;
  probe: Probe | undefined;
}

function pointWhere({ e, probe }: Point, ctx: ModelContext): string {
  switch (e.kind) {
    case EventKind.RX: return `before RX on ${ctx.deviceName(e.ifindex, e.netns)}`;
    case EventKind.TX: return `before TX on ${ctx.deviceName(e.ifindex, e.netns)}`;
    case EventKind.NF: return probeWhere(e, probe);
    default: return `in ${e.table} ${hookName(e.nfHook, e.nfFamily)}`;
  }
}

/** "192.168.222.2:40000" for TCP and UDP, the address alone otherwise. */
function endpoint(addr: string | null, port: number, e: KernelEvent): string | null {
  if (!addr) return null;
  const l4 = e.packet.l4proto;
  if (l4 !== 6 && l4 !== 17 && l4 !== 132) return addr;
  return e.packet.ipVersion === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** What ran between a probe and the one before it, in words. */
function probeWhere(e: KernelEvent, probe: Probe | undefined): string {
  const at = `${familyName(e.nfFamily)} ${hookName(e.nfHook, e.nfFamily)}`;
  if (!probe?.covers.length) return `at ${at}`;
  return `in ${coversText(probe)} at ${at}`;
}

/** A probe's covers in words, made once per probe: every translated packet names them. */
const coversTexts = new WeakMap<Probe, string>();

function coversText(probe: Probe): string {
  let text = coversTexts.get(probe);
  if (text === undefined) {
    text = probe.covers.map(describeUser).join(', ');
    coversTexts.set(probe, text);
  }
  return text;
}

/** Addresses or ports that change between two points were rewritten there: say how.
 * Compared as bytes; words only where something changed (this runs for every event). */
function explainRewrites(first: KernelEvent, points: Point[], decisions: Decision[], ctx: ModelContext): void {
  let src = first;
  let dst = first;
  for (const point of points) {
    const e = point.e;
    const p = e.packet;
    if (p.saddr.length && src.packet.saddr.length && (!sameBytes(p.saddr, src.packet.saddr) || p.sport !== src.packet.sport)) {
      const before = endpoint(formatAddress(src.packet.saddr), src.packet.sport, src);
      const after = endpoint(formatAddress(p.saddr), p.sport, e);
      if (before !== after) decisions.push({ ts: e.ts, kind: 'nat', decision: 'snat', text: `SNAT ${before} -> ${after} ${pointWhere(point, ctx)}${replyNote(p)}` });
    }
    if (p.daddr.length && dst.packet.daddr.length && (!sameBytes(p.daddr, dst.packet.daddr) || p.dport !== dst.packet.dport)) {
      const before = endpoint(formatAddress(dst.packet.daddr), dst.packet.dport, dst);
      const after = endpoint(formatAddress(p.daddr), p.dport, e);
      if (before !== after) decisions.push({ ts: e.ts, kind: 'nat', decision: 'dnat', text: `DNAT ${before} -> ${after} ${pointWhere(point, ctx)}${replyNote(p)}` });
    }
    if (p.saddr.length) src = e;
    if (p.daddr.length) dst = e;
  }
}

function replyNote(p: PacketHeaders): string {
  return ctStateName(p.ctState)?.includes('reply') ? ' (reply of a translated connection)' : '';
}

/** Without br_handle_frame's own result (its return comes after the packet has
 * left), bridge hooks or a bridge decision after the port's RX show the frame
 * was consumed by the bridge. */
function inferRxHandlerResult(hops: Hop[], decisions: Decision[]): void {
  const rx = hops.find((h) => h.hook === 'RX' && h.rxHandler === 'br_handle_frame');
  if (!rx || rx.rxResult) return;
  // The broute step runs before the decision, so it proves nothing either way.
  const bridged = decisions.some((d) => d.kind === 'bridge') || hops.some((h) => h.family === 'bridge' && h.table !== 'broute' && h.ts >= rx.ts);
  if (!bridged) return;
  rx.rxResult = 'CONSUMED';
  rx.inferred = [...(rx.inferred ?? []), 'rxResult'];
}

/** Date.toISOString for a time in ms, the seconds part made once per second: a flood
 * has thousands of packets a second, and formatting was a fifth of building each. */
let isoSecond = NaN;
let isoPrefix = '';
export function isoTime(ms: number): string {
  if (!(ms >= 0)) return new Date(ms).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    const full = new Date(second * 1000).toISOString();
    if (full.length !== 24) return new Date(ms).toISOString(); // years past 9999 or before 0
    isoSecond = second;
    isoPrefix = full.slice(0, 20);
  }
  return `${isoPrefix}${String(Math.floor(ms - second * 1000)).padStart(3, '0')}Z`;
}

/** `rulesHurried`: --rules, the packet is explained before its rule messages could all arrive. */
export function buildTraversal(all: KernelEvent[], ctx: ModelContext, lost: number, branchEvents: KernelEvent[][] = [], rulesHurried = false): Traversal {
  // Loss reports are not hops: they say how many of this packet's events never came.
  let reportedLost = 0;
  let inOrder = true;
  const sorted: KernelEvent[] = [];
  for (const e of all) {
    if (e.kind === EventKind.LOST) {
      reportedLost += Number(e.aux);
      continue;
    }
    if (sorted.length && e.seq < sorted[sorted.length - 1].seq) inOrder = false;
    sorted.push(e);
  }
  // Most packets come whole and in order (a record is): sorting is for those that did not.
  if (!inOrder) sorted.sort((a, b) => a.seq - b.seq);
  const first = sorted[0];
  const hops: Hop[] = [];
  const decisions: Decision[] = [];
  let end: TraversalEnd = { kind: 'unknown', dev: null, reason: null };
  let lastNf: KernelEvent | null = null;
  let lastHook: KernelEvent | null = null;
  const hookRuns: HookRun[] = [];
  const openRuns: HookRun[] = [];
  const points: Point[] = [];

  for (const e of sorted) {
    switch (e.kind) {
      case EventKind.RX:
        hops.push(deviceHop(e, ctx, 'RX'));
        points.push({ e, probe: undefined });
        lastNf = null;
        break;
      case EventKind.TX:
        hops.push(deviceHop(e, ctx, 'TX'));
        points.push({ e, probe: undefined });
        lastNf = null;
        if (isEndEvent(e, ctx)) {
          end = { kind: 'tx', dev: ctx.deviceName(e.ifindex, e.netns), reason: null };
        }
        break;
      case EventKind.NF: {
        const before = lastNf ?? undefined;
        lastNf = e;
        const found = ctx.probes?.probe(e.nfFamily, e.nfHook, e.nfSlot, e.ts);
        if (found) {
          for (const hop of probeHops(e, ctx, found.probe, found.plan)) {
            attachRules(hop, e, before, ctx);
            hops.push(hop);
          }
        }
        points.push({ e, probe: found?.probe });
        break;
      }
      case EventKind.NF_TABLE:
        hops.push(tableHop(e, ctx));
        attachRules(hops[hops.length - 1], e, undefined, ctx);
        points.push({ e, probe: undefined });
        lastNf = e;
        break;
      case EventKind.NF_HOOK_ENTER: {
        lastHook = e;
        lastNf = null;
        const run: HookRun = {
          family: familyName(e.nfFamily), hook: hookName(e.nfHook, e.nfFamily), depth: openRuns.length,
          entries: e.detail, firstEntry: e.nfSlot, priorities: e.priorities, verdict: null, ts: e.ts,
        };
        hookRuns.push(run);
        openRuns.push(run);
        break;
      }
      case EventKind.NF_HOOK_EXIT: {
        const run = openRuns.pop();
        if (run) closeHookRun(run, e.verdict);
        break;
      }
      case EventKind.RX_HANDLER:
        applyRxHandlerResult(e, hops);
        break;
      case EventKind.BR_DECISION:
        decisions.push(bridgeDecision(e, ctx));
        break;
      case EventKind.ROUTE:
        decisions.push(routeDecision(e, ctx));
        break;
      case EventKind.DROP: {
        const reason = ctx.dropReason(e.reason);
        // Freed inside a hook: its return is never seen, the drop is its result.
        const inside = openRuns[openRuns.length - 1];
        if (inside && reason === NETFILTER_DROP) inside.verdict = 'DROP';
        if (e.table) {
          // Freed while a table ran (nftables drops inside nft_do_chain): seen, not inferred.
          const hop: Hop = { ...tableHop(e, ctx), verdict: 'DROP' };
          attachRules(hop, e, undefined, ctx);
          hops.push(hop);
        } else if (reason === NETFILTER_DROP) {
          if (lastNf?.kind === EventKind.NF) {
            const hop = dropHop(lastNf, e, ctx);
            attachRules(hop, lastNf, undefined, ctx);
            hops.push(hop);
          }
          // Dropped by a hook function that is no table (conntrack, br_netfilter ...).
          else if (!lastNf && lastHook) hops.push({ ...netfilterHop(lastHook, ctx, null, 'DROP'), ts: e.ts });
        }
        end = {
          kind: 'drop', dev: ctx.deviceName(e.ifindex, e.netns), reason,
          location: ctx.symbol(e.aux) ?? null,
        };
        break;
      }
      case EventKind.CONSUME:
        end = { kind: 'local', dev: ctx.deviceName(e.ifindex, e.netns), reason: null, location: ctx.symbol(e.aux) ?? null };
        break;
      default:
        break; // TX_QUEUE: the TX that follows carries the same information
    }
  }

  addBridgeHops(first, sorted[sorted.length - 1], hops, ctx);
  const rulesMissing = countRulesLost(first, sorted[sorted.length - 1], hops, ctx, rulesHurried);
  attributeDrop(hops, end);
  explainDrop(hops, end, decisions);
  const branches: Branch[] = branchEvents.map((evs) => {
    const b = buildTraversal(evs, ctx, lost);
    return { id: b.id, hops: b.hops, end: b.end };
  });
  explainFlood(branches, decisions);
  inferBridging(hops, decisions, branches);
  inferRxHandlerResult(hops, decisions);
  explainNoIptables(first, hops, decisions, ctx);
  inferRouting(hops, decisions, ctx);
  explainRewrites(first, points, decisions, ctx);
  sortByTime(decisions);
  const { src, dst } = addresses(first);
  return {
    id: first.packetId,
    ts: first.ts,
    time: isoTime(ctx.toEpochNs(first.ts) / 1e6),
    netns: ctx.netns,
    src,
    dst,
    proto: protoName(first.packet),
    summary: describePacket(first.packet, src, dst),
    icmpError: icmpErrorOf(first),
    hops,
    decisions,
    hookRuns,
    end,
    branches,
    lost,
    // The sequence gap sees losses before the last event that came; the reports see them all.
    missing: Math.max(missingEvents(sorted), reportedLost) + rulesMissing,
    devices: devicesOf(hops, end, branches, ctx),
  };
}

/** Decisions in time order, ties as they came: an insertion sort, as stable as Array.sort and
 * far cheaper for the few a packet has (this runs for every packet). */
function sortByTime(decisions: Decision[]): void {
  for (let i = 1; i < decisions.length; i++) {
    const d = decisions[i];
    let j = i - 1;
    while (j >= 0 && decisions[j].ts > d.ts) {
      decisions[j + 1] = decisions[j];
      j--;
    }
    decisions[j + 1] = d;
  }
}

/** undefined (no key in --json) unless the packet is an ICMP error. */
function icmpErrorOf(e: KernelEvent): { type: number; code: number } | undefined {
  const p = e.packet;
  return isIcmpError(p) ? { type: p.icmpType, code: p.icmpCode } : undefined;
}

/** The devices a traversal names that have something behind them (containers). */
function devicesOf(hops: Hop[], end: TraversalEnd, branches: Branch[], ctx: ModelContext): Record<string, DeviceInfo> {
  const out: Record<string, DeviceInfo> = {};
  if (!ctx.deviceInfo) return out;
  // A handful of names, in the order the hops name them: an array beats a Set here.
  const names: string[] = [];
  const note = (n: string | null | undefined) => {
    if (n && !names.includes(n)) names.push(n);
  };
  const noteHops = (hs: Hop[]) => {
    for (const h of hs) {
      note(h.in);
      note(h.out);
      note(h.physin);
      note(h.physout);
    }
  };
  noteHops(hops);
  for (const b of branches) noteHops(b.hops);
  note(end.dev);
  for (const b of branches) note(b.end.dev);
  for (const n of names) {
    const info = ctx.deviceInfo(n);
    if (info) out[n] = info;
  }
  return out;
}
