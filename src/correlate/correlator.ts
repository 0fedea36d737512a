/** Groups kernel events into packets. The kernel numbers each packet and each
 * of its events, so interleaving across CPUs only reorders whole events; a
 * packet is complete at its end event, or closed as unknown after a timeout. */
import type { KernelEvent } from '../decode';
import { isEndEvent } from '../model/build';

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

interface OpenPacket {
  events: KernelEvent[];
  lastTs: number;
}

export class Correlator {
  private readonly open = new Map<number, OpenPacket>();
  private readonly idleTimeoutNs: number;
  private readonly maxOpen: number;

  constructor(
    private readonly opts: CorrelatorOptions,
    private readonly onPacket: (events: KernelEvent[], why: CloseReason) => void,
  ) {
    this.idleTimeoutNs = opts.idleTimeoutNs ?? 2e9;
    this.maxOpen = opts.maxOpen ?? 65536;
  }

  get openCount(): number {
    return this.open.size;
  }

  push(e: KernelEvent): void {
    let p = this.open.get(e.packetId);
    if (!p) {
      if (this.open.size >= this.maxOpen) this.evictOldest();
      p = { events: [], lastTs: e.ts };
      this.open.set(e.packetId, p);
    }
    p.events.push(e);
    if (e.ts > p.lastTs) p.lastTs = e.ts;
    if (isEndEvent(e, this.opts)) this.close(e.packetId, p, 'end');
  }

  /** Closes packets idle since before `nowNs` - timeout. */
  expire(nowNs: number): void {
    for (const [id, p] of this.open) {
      if (nowNs - p.lastTs >= this.idleTimeoutNs) this.close(id, p, 'timeout');
    }
  }

  flush(): void {
    for (const [id, p] of this.open) this.close(id, p, 'flush');
  }

  private evictOldest(): void {
    // Map iteration is insertion order: the first entry is the oldest packet.
    const first = this.open.entries().next();
    if (!first.done) this.close(first.value[0], first.value[1], 'evicted');
  }

  private close(id: number, p: OpenPacket, why: CloseReason): void {
    this.open.delete(id);
    this.onPacket(p.events, why);
  }
}
