/** Decoded batches -> correlated packets -> traversals: the same steps for a
 * live capture and for a replayed trace file, so both print the same. */
import { ClosedPacket, Correlator } from '../correlate/correlator';
import type { DecodedBatch } from '../decode';
import { buildTraversal, ModelContext } from '../model/build';
import type { RuleEvent } from '../model/rules';
import type { Traversal } from '../model/traversal';

export interface PipelineSinks {
  traversal(t: Traversal, packet: ClosedPacket): void;
  /** The kernel's loss count grew (total since start). */
  lost?(total: number): void;
}

/** --rules: how long a closed packet waits for the rule tracer's messages about it
 * (they travel by netlink and another thread, the packet's events by the ring). */
export const RULES_HOLD_NS = 500e6;

export class TraversalPipeline {
  private readonly correlator: Correlator;
  private lostSoFar = 0;
  private readonly held: { packet: ClosedPacket; at: number }[] = [];
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
      if (this.holdNs) this.held.push({ packet, at: this.latest });
      else this.explain(packet);
    });
  }

  private explain(packet: ClosedPacket): void {
    this.traversals++;
    this.sinks.traversal(buildTraversal(packet.events, this.ctx, this.lostSoFar, packet.branches), packet);
  }

  private release(nowNs: number): void {
    while (this.held.length && this.held[0].at <= nowNs - this.holdNs) this.explain(this.held.shift()!.packet);
    this.ctx.rules?.expire(nowNs);
  }

  /** --rules: what the rule tracer said; the hops it belongs to take it when explained. */
  pushRules(events: RuleEvent[], lost: number): void {
    this.ctx.rules?.add(events);
    if (this.ctx.rules) this.ctx.rules.lost = lost;
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
