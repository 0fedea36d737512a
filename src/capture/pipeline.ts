/** Decoded batches -> correlated packets -> traversals: the same steps for a
 * live capture and for a replayed trace file, so both print the same. */
import { ClosedPacket, Correlator } from '../correlate/correlator';
import { EventKind, type DecodedBatch } from '../decode';
import { buildTraversal, ModelContext } from '../model/build';
import type { RuleEvent } from '../model/rules';
import { linkRejects } from '../model/reject';
import { isIcmpError } from '../model/packet';

/** Traversals kept to link a late-closing rejected packet to its ICMP error. */
const RECENT = 64;
/** Without --rules, dropped packets and ICMP errors still wait this long, so that a
 * rejected packet and its answer are explained (and linked) together. */
const REJECT_HOLD_NS = 50e6;

function mayBeRejectPair(p: ClosedPacket): boolean {
  const first = p.events[0]?.packet;
  if (first && isIcmpError(first)) return true;
  return p.events.some((e) => e.kind === EventKind.DROP);
}
import type { Traversal } from '../model/traversal';

export interface PipelineSinks {
  traversal(t: Traversal, packet: ClosedPacket): void;
  /** The kernel's loss count grew (total since start). */
  lost?(total: number): void;
}

/** --rules: how long a closed packet waits for the rule tracer's messages about it
 * (they travel by netlink and another thread, the packet's events by the ring). */
export const RULES_HOLD_NS = 500e6;
/** Closed packets waiting at most: past this the oldest are explained at once (their
 * hops without rules say why and count as missing), so a flood costs bounded memory. */
export const MAX_HELD = 8192;

export class TraversalPipeline {
  private readonly correlator: Correlator;
  private lostSoFar = 0;
  /** Closed packets waiting, in order of `until`; `heldFrom` is the first still waiting. */
  private held: { packet: ClosedPacket; until: number }[] = [];
  private heldFrom = 0;
  private readonly recent: Traversal[] = [];
  private latest = 0;
  traversals = 0;

  constructor(
    private ctx: ModelContext,
    idleTimeoutNs: number,
    private readonly sinks: PipelineSinks,
    /** > 0 with --rules: closed packets wait this long (kernel clock) before they are explained. */
    private readonly holdNs = 0,
  ) {
    this.correlator = new Correlator({ netns: ctx.netns, bridgeIfindex: ctx.bridgeIfindex, idleTimeoutNs }, (packet) => {
      const hold = this.holdNs || (mayBeRejectPair(packet) ? REJECT_HOLD_NS : 0);
      if (!hold) return this.explain([packet]);
      this.held.push({ packet, until: this.latest + hold });
      if (this.held.length - this.heldFrom > MAX_HELD) this.releaseOldest();
    });
  }

  /** Packets closed together are explained together: a rejected packet and the
   * ICMP error answering it (sent from inside the rule) are linked before either goes out. */
  private explain(packets: ClosedPacket[], hurried = false): void {
    const built = packets.map((p) => buildTraversal(p.events, this.ctx, this.lostSoFar, p.branches, hurried && this.holdNs > 0));
    linkRejects(built, this.recent);
    packets.forEach((p, i) => {
      this.traversals++;
      this.sinks.traversal(built[i], p);
    });
    this.recent.push(...built);
    if (this.recent.length > RECENT) this.recent.splice(0, this.recent.length - RECENT);
  }

  private release(nowNs: number): void {
    let end = this.heldFrom;
    while (end < this.held.length && this.held[end].until <= nowNs) end++;
    this.explainHeld(end);
    this.ctx.rules?.expire(nowNs);
  }

  /** Too many waiting: the oldest quarter goes now. */
  private releaseOldest(): void {
    this.explainHeld(this.heldFrom + MAX_HELD / 4, true);
  }

  /** Explains held[heldFrom, end) (indices, not shift(): a flood holds thousands). */
  private explainHeld(end: number, hurried = false): void {
    if (end <= this.heldFrom) return;
    const due = this.held.slice(this.heldFrom, end).map((h) => h.packet);
    this.heldFrom = end;
    if (this.heldFrom > 1024 && this.heldFrom * 2 > this.held.length) {
      this.held = this.held.slice(this.heldFrom);
      this.heldFrom = 0;
    }
    this.explain(due, hurried);
  }

  /** --rules: what the rule tracer said; the hops it belongs to take it when explained. */
  pushRules(events: RuleEvent[], lost: number): void {
    this.ctx.rules?.add(events);
    const ts = events.reduce((m, e) => Math.max(m, e.ts), this.latest);
    this.ctx.rules?.noteLost(lost, ts);
  }

  /** Devices changed (a container started): later traversals are explained with this. */
  setContext(ctx: ModelContext): void {
    this.ctx = ctx;
  }

  get lost(): number {
    return this.lostSoFar;
  }

  push(batch: DecodedBatch): void {
    if (batch.lost !== this.lostSoFar) {
      this.lostSoFar = batch.lost;
      this.sinks.lost?.(batch.lost);
    }
    for (const e of batch.events) {
      if (e.ts > this.latest) this.latest = e.ts;
      this.correlator.push(e);
    }
  }

  /** Closes packets idle since before nowNs - the idle timeout (kernel clock). */
  expire(nowNs: number): void {
    if (nowNs > this.latest) this.latest = nowNs;
    this.correlator.expire(nowNs);
    this.release(nowNs);
  }

  flush(): void {
    this.correlator.flush();
    this.release(Infinity);
  }
}
