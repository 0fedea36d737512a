/** One packet's kernel events -> a Traversal: hops in order, where it ended,
 * and the decisions the events imply. */
import { EventKind, KernelEvent } from '../decode';
import { familyName, hookName, slotById, tableAfter, verdictName } from './hooks';
import { describePacket, formatAddress, protoName } from './packet';
import type { Decision, Hop, HookRun, Traversal, TraversalEnd } from './traversal';

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
}

const NETFILTER_DROP = 'NETFILTER_DROP';

/** Where a packet leaves the traced bridge's world: freed, or handed to any
 * device other than the bridge itself (a port, an uplink). */
export function isEndEvent(e: KernelEvent, bridge: { netns: number; bridgeIfindex: number }): boolean {
  if (e.kind === EventKind.DROP || e.kind === EventKind.CONSUME) return true;
  return e.kind === EventKind.TX && !(e.ifindex === bridge.bridgeIfindex && e.netns === bridge.netns);
}

function addresses(e: KernelEvent) {
  return { src: formatAddress(e.packet.saddr), dst: formatAddress(e.packet.daddr) };
}

function deviceHop(e: KernelEvent, ctx: ModelContext, hook: 'RX' | 'TX'): Hop {
  const dev = ctx.deviceName(e.ifindex, e.netns);
  const hop: Hop = {
    family: 'netdev', hook, table: null, verdict: null,
    in: hook === 'RX' ? dev : null, out: hook === 'TX' ? dev : null, physin: null, physout: null,
    ...addresses(e), observed: true, ts: e.ts, ttl: e.packet.ttl || undefined, cpu: e.cpu,
  };
  if (hook === 'RX') {
    hop.rxHandler = ctx.symbol(e.aux) ?? (e.aux ? `0x${e.aux.toString(16)}` : null);
    if (hop.rxHandler === 'br_handle_frame') hop.note = `bridge port ${dev}: br_handle_frame takes the frame (L2 path)`;
    else if (e.ifindex === ctx.bridgeIfindex && e.netns === ctx.netns) hop.note = 'the bridge passes it up to its own L3 stack';
  }
  return hop;
}

function netfilterHop(e: KernelEvent, ctx: ModelContext, table: Hop['table'], verdict: Hop['verdict']): Hop {
  const name = (ifindex: number) => (ifindex ? ctx.deviceName(ifindex, e.netns) : null);
  return {
    family: familyName(e.nfFamily), hook: hookName(e.nfHook, e.nfFamily), table, verdict,
    in: name(e.inIfindex), out: name(e.outIfindex), physin: name(e.physinIfindex), physout: name(e.physoutIfindex),
    ...addresses(e), observed: true, ts: e.ts, ttl: e.packet.ttl || undefined, cpu: e.cpu,
  };
}

/** A netfilter DROP is seen as a kfree_skb after the last slot reached; the
 * table is the next one probed at that hook. */
function dropHop(lastNf: KernelEvent, drop: KernelEvent, ctx: ModelContext): Hop {
  const hook = hookName(lastNf.nfHook);
  const hop = netfilterHop(lastNf, ctx, tableAfter(hook, lastNf.nfSlot), 'DROP');
  hop.ts = drop.ts;
  hop.inferred = ['table'];
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
  if (e.chain) hop.chain = e.chain;
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
    case 1:
      return { ts: e.ts, kind: 'bridge', decision: 'forward', port, text: `FDB: the destination MAC is behind port ${port}` };
    case 2:
      return { ts: e.ts, kind: 'bridge', decision: 'flood', text: 'unknown or broadcast destination MAC: flooded to the ports' };
    default:
      return { ts: e.ts, kind: 'bridge', decision: 'local', text: "the destination MAC is the bridge's own: up to L3" };
  }
}

function routeDecision(e: KernelEvent): Decision {
  return e.detail === 1
    ? { ts: e.ts, kind: 'route', decision: 'forward', text: 'routing: not for this host, forwarded' }
    : { ts: e.ts, kind: 'route', decision: 'local', text: 'routing: addressed to this host, delivered locally' };
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

/** Without br_handle_frame's own result (its return comes after the packet has
 * left), bridge hooks or a bridge decision after the port's RX show the frame
 * was consumed by the bridge. */
function inferRxHandlerResult(hops: Hop[], decisions: Decision[]): void {
  const rx = hops.find((h) => h.hook === 'RX' && h.rxHandler === 'br_handle_frame');
  if (!rx || rx.rxResult) return;
  const bridged = decisions.some((d) => d.kind === 'bridge') || hops.some((h) => h.family === 'bridge' && h.ts >= rx.ts);
  if (!bridged) return;
  rx.rxResult = 'CONSUMED';
  rx.inferred = [...(rx.inferred ?? []), 'rxResult'];
}

export function buildTraversal(events: KernelEvent[], ctx: ModelContext, lost: number): Traversal {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const first = sorted[0];
  const hops: Hop[] = [];
  const decisions: Decision[] = [];
  let end: TraversalEnd = { kind: 'unknown', dev: null, reason: null };
  let lastNf: KernelEvent | null = null;
  let lastHook: KernelEvent | null = null;
  const hookRuns: HookRun[] = [];
  const openRuns: HookRun[] = [];

  for (const e of sorted) {
    switch (e.kind) {
      case EventKind.RX:
        hops.push(deviceHop(e, ctx, 'RX'));
        lastNf = null;
        break;
      case EventKind.TX:
        hops.push(deviceHop(e, ctx, 'TX'));
        lastNf = null;
        if (isEndEvent(e, ctx)) {
          end = { kind: 'tx', dev: ctx.deviceName(e.ifindex, e.netns), reason: null };
        }
        break;
      case EventKind.NF: {
        lastNf = e;
        const slot = slotById(e.nfSlot);
        if (slot && slot.table) hops.push(netfilterHop(e, ctx, slot.table, 'ACCEPT'));
        break;
      }
      case EventKind.NF_TABLE:
        hops.push(tableHop(e, ctx));
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
        decisions.push(routeDecision(e));
        break;
      case EventKind.DROP: {
        const reason = ctx.dropReason(e.reason);
        // Freed inside a hook: its return is never seen, the drop is its result.
        const inside = openRuns[openRuns.length - 1];
        if (inside && reason === NETFILTER_DROP) inside.verdict = 'DROP';
        if (e.table) {
          // Freed while a table ran (nftables drops inside nft_do_chain): seen, not inferred.
          hops.push({ ...tableHop(e, ctx), verdict: 'DROP' });
        } else if (reason === NETFILTER_DROP) {
          if (lastNf?.kind === EventKind.NF) hops.push(dropHop(lastNf, e, ctx));
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

  inferRxHandlerResult(hops, decisions);
  const { src, dst } = addresses(first);
  return {
    id: first.packetId,
    ts: first.ts,
    time: new Date(ctx.toEpochNs(first.ts) / 1e6).toISOString(),
    netns: ctx.netns,
    src,
    dst,
    proto: protoName(first.packet),
    summary: describePacket(first.packet),
    hops,
    decisions,
    hookRuns,
    end,
    lost,
    missing: missingEvents(sorted),
  };
}
