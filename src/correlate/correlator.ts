/** Groups kernel events into packets. The kernel numbers each packet and each
 * of its events, so interleaving across CPUs only reorders whole events; a
 * packet is complete at its end event, or closed as unknown after a timeout.
 *
 * A clone (the bridge floods a copy to each port) is a new skb, so the kernel
 * gives it a new number; it is attached as a branch of the packet it was
 * copied from: the one in flight with the same headers that just came in by a
 * bridge port. */
import { EventKind, isEndEvent, KernelEvent, PacketHeaders } from '../decode';
import { sameBytes } from '../model/packet';

export interface CorrelatorOptions {
  /** Close a packet that saw no event for this long (kernel ns). */
  idleTimeoutNs?: number;
  /** Bound on open packets: the oldest are closed first beyond it. */
  maxOpen?: number;
  /** The bridge's ifindex and netns: TX there is a step, not the end. */
  bridgeIfindex: number;
  netns: number;
}

export type CloseReason = 'end' | 'timeout' | 'evicted' | 'flush';

export interface ClosedPacket {
  events: KernelEvent[];
  why: CloseReason;
  /** Clones made of this packet, each with its own events. */
  branches: KernelEvent[][];
}

interface OpenPacket {
  id: number;
  events: KernelEvent[];
  lastTs: number;
  branches: OpenPacket[];
  parent?: OpenPacket;
  done: boolean;
}

/** A clone shows up within this long of its original's arrival. Microseconds on real
 * hardware; under an emulator (the TCG VM of test/vm) on a busy host, the bridge's work
 * between the two took over 5 ms, and a flood's copy went unadopted. The newest
 * arrival with the same headers is taken, so a wider window costs no precision. */
const CLONE_WINDOW_NS = 50e6;
const RECENT_ARRIVALS = 64;

/** A clone has its original's headers: ethertype, addresses, MACs, protocol, ports and length.
 * Compared as they are, no key made: every packet arriving by a port is a candidate, and few
 * are ever compared. */
function sameCloneHeaders(p: PacketHeaders, q: PacketHeaders): boolean {
  return p === q || (p.ethertype === q.ethertype && p.l4proto === q.l4proto && p.sport === q.sport && p.dport === q.dport &&
    p.ipLen === q.ipLen && sameBytes(p.saddr, q.saddr) && sameBytes(p.daddr, q.daddr) && sameBytes(p.smac, q.smac) && sameBytes(p.dmac, q.dmac));
}

export class Correlator {
  private readonly open = new Map<number, OpenPacket>();
  private readonly idleTimeoutNs: number;
  private readonly maxOpen: number;
  /** Packets that just came in by a bridge port: candidates to have been cloned. */
  private readonly arrivals: { packet: OpenPacket; headers: PacketHeaders; ts: number }[] = [];

  constructor(
    private readonly opts: CorrelatorOptions,
    private readonly onPacket: (packet: ClosedPacket) => void,
  ) {
    this.idleTimeoutNs = opts.idleTimeoutNs ?? 2e9;
    this.maxOpen = opts.maxOpen ?? 65536;
  }

  get openCount(): number {
    return this.open.size;
  }

  push(e: KernelEvent): void {
    let p = this.open.get(e.packetId);
    // A loss report for a packet already closed (its end came) or never seen: its gap, or
    // the global count, already says it.
    if (e.kind === EventKind.LOST && !p) return;
    if (!p) {
      if (this.open.size >= this.maxOpen) this.evictOldest();
      p = { id: e.packetId, events: [], lastTs: e.ts, branches: [], done: false };
      this.open.set(e.packetId, p);
      if (e.kind !== EventKind.RX) this.adoptClone(p, e);
    }
    p.events.push(e);
    if (e.ts > p.lastTs) p.lastTs = e.ts;
    if (p.parent && e.ts > p.parent.lastTs) p.parent.lastTs = e.ts;
    if (e.kind === EventKind.RX && e.aux !== 0n && e.netns === this.opts.netns) this.noteArrival(p, e);
    if (isEndEvent(e, this.opts)) this.finish(p, 'end');
  }

  /** Closes packets idle since before `nowNs` - timeout. */
  expire(nowNs: number): void {
    for (const p of [...this.open.values()]) {
      if (!p.parent && nowNs - p.lastTs >= this.idleTimeoutNs) this.close(p, 'timeout');
    }
  }

  flush(): void {
    for (const p of [...this.open.values()]) if (!p.parent) this.close(p, 'flush');
  }

  private noteArrival(p: OpenPacket, e: KernelEvent): void {
    this.arrivals.push({ packet: p, headers: e.packet, ts: e.ts });
    if (this.arrivals.length > RECENT_ARRIVALS) this.arrivals.shift();
  }

  private adoptClone(p: OpenPacket, first: KernelEvent): void {
    for (let i = this.arrivals.length - 1; i >= 0; i--) {
      const a = this.arrivals[i];
      if (first.ts - a.ts > CLONE_WINDOW_NS) break;
      if (a.packet.done || a.packet === p || !sameCloneHeaders(a.headers, first.packet)) continue;
      p.parent = a.packet;
      a.packet.branches.push(p);
      return;
    }
  }

  /** A packet and its branches are closed together, once all of them ended. */
  private finish(p: OpenPacket, why: CloseReason): void {
    p.done = true;
    const root = p.parent ?? p;
    if (root.done && root.branches.every((b) => b.done)) this.close(root, why);
  }

  private evictOldest(): void {
    // Map iteration is insertion order: the first entry is the oldest packet.
    const first = this.open.values().next();
    if (!first.done) this.close(first.value.parent ?? first.value, 'evicted');
  }

  private close(p: OpenPacket, why: CloseReason): void {
    this.open.delete(p.id);
    p.done = true;
    for (const b of p.branches) this.open.delete(b.id);
    const i = this.arrivals.findIndex((a) => a.packet === p);
    if (i >= 0) this.arrivals.splice(i, 1);
    this.onPacket({ events: p.events, why, branches: p.branches.map((b) => b.events) });
  }
}
