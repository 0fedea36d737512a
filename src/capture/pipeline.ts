/** Decoded batches -> correlated packets -> traversals: the same steps for a
 * live capture and for a replayed trace file, so both print the same. */
import { ClosedPacket, Correlator } from '../correlate/correlator';
import type { DecodedBatch } from '../decode';
import { buildTraversal, ModelContext } from '../model/build';
import type { Traversal } from '../model/traversal';

export interface PipelineSinks {
  traversal(t: Traversal, packet: ClosedPacket): void;
  /** The kernel's loss count grew (total since start). */
  lost?(total: number): void;
}

export class TraversalPipeline {
  private readonly correlator: Correlator;
  private lostSoFar = 0;
  traversals = 0;

  constructor(
    private ctx: ModelContext,
    idleTimeoutNs: number,
    private readonly sinks: PipelineSinks,
  ) {
    this.correlator = new Correlator({ netns: ctx.netns, bridgeIfindex: ctx.bridgeIfindex, idleTimeoutNs }, (packet) => {
      this.traversals++;
      this.sinks.traversal(buildTraversal(packet.events, this.ctx, this.lostSoFar, packet.branches), packet);
    });
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
    for (const e of batch.events) this.correlator.push(e);
  }

  /** Closes packets idle since before nowNs - the idle timeout (kernel clock). */
  expire(nowNs: number): void {
    this.correlator.expire(nowNs);
  }

  flush(): void {
    this.correlator.flush();
  }
}
