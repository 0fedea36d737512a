/** One packet's kernel events -> a Traversal: hops in order, where it ended,
 * and the decisions the events imply. */
import { EventKind, KernelEvent } from '../decode';
import { familyName, hookName, slotById, tableAfter } from './hooks';
import { describePacket, formatAddress, protoName } from './packet';
import type { Hop, Traversal, TraversalEnd } from './traversal';

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
    family: familyName(e.nfFamily), hook: hookName(e.nfHook), table, verdict,
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

export function buildTraversal(events: KernelEvent[], ctx: ModelContext, lost: number): Traversal {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const first = sorted[0];
  const hops: Hop[] = [];
  let end: TraversalEnd = { kind: 'unknown', dev: null, reason: null };
  let lastNf: KernelEvent | null = null;

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
      case EventKind.DROP: {
        const reason = ctx.dropReason(e.reason);
        if (lastNf && reason === NETFILTER_DROP) hops.push(dropHop(lastNf, e, ctx));
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
    end,
    lost,
    missing: missingEvents(sorted),
  };
}
