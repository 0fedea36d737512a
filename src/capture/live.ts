/** A live capture of one bridge: native session -> decode -> correlate ->
 * model. Emits Traversals; knows nothing of how they are printed. */
import { EventEmitter } from 'events';
import { Correlator } from '../correlate/correlator';
import { decodeBatch } from '../decode';
import { asBnError } from '../errors';
import { buildTraversal, ModelContext } from '../model/build';
import { netfilterAttachments } from '../model/hooks';
import { BackendName, CaptureMode, native, NativeSession, PathCount, SessionStats } from '../native';
import { Kallsyms } from '../topology/kallsyms';
import { RouteTable } from '../topology/routes';
import type { BridgeView } from '../topology/links';

export interface CaptureOptions {
  backend: BackendName;
  ringBytes?: number;
  filter?: string;
  mark?: { value: number; mask: number };
  idleTimeoutMs?: number;
  mode?: CaptureMode;
  sampleEvery?: number;
  snaplen?: number;
}

export interface CaptureStats extends SessionStats {
  traversals: number;
}

const EXPIRE_INTERVAL_MS = 250;

function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

export function modelContext(view: BridgeView): ModelContext {
  const kallsyms = new Kallsyms();
  const reasons = native().dropReasons().map((r) => r.replace(/^SKB_DROP_REASON_/, ''));
  const epochOffsetNs = Date.now() * 1e6 - monotonicNs();
  const routes = RouteTable.load(view.netns);
  return {
    netns: view.netns.inode,
    bridgeIfindex: view.bridge.ifindex,
    deviceName: (ifindex, netns) =>
      netns === view.netns.inode ? view.links.get(ifindex)?.name ?? `if${ifindex}` : `if${ifindex}@netns:${netns}`,
    symbol: (addr) => kallsyms.lookup(addr),
    dropReason: (r) => reasons[r] || `reason ${r}`,
    toEpochNs: (ts) => ts + epochOffsetNs,
    brNetfilter: view.brNetfilter,
    route: (dst) => routes.lookup(dst),
  };
}

/** Events: 'traversal' (Traversal, ClosedPacket), 'lost' (total lost so far), 'notice' (a program left
 * out on this kernel), 'error' (BnError). */
export class LiveCapture extends EventEmitter {
  private session: NativeSession | undefined;
  private correlator: Correlator;
  private timer: NodeJS.Timeout | undefined;
  private lost = 0;
  private traversals = 0;
  private readonly ctx: ModelContext;

  constructor(
    private readonly view: BridgeView,
    private readonly opts: CaptureOptions,
  ) {
    super();
    this.ctx = modelContext(view);
    this.correlator = new Correlator(
      {
        netns: view.netns.inode,
        bridgeIfindex: view.bridge.ifindex,
        idleTimeoutNs: (opts.idleTimeoutMs ?? 2000) * 1e6,
      },
      (packet) => {
        this.traversals++;
        this.emit('traversal', buildTraversal(packet.events, this.ctx, this.lost, packet.branches), packet);
      },
    );
  }

  async start(): Promise<void> {
    const view = this.view;
    const session = new (native().TraceSession)(
      (batch) => this.onBatch(batch),
      (err) => this.emit('error', asBnError(err)),
    );
    this.session = session;
    const watched = [view.bridge, ...view.ports, ...view.uplinks].map((l) => l.ifindex);
    try {
      const { notices } = await session.start({
        backend: this.opts.backend,
        netnsPath: view.netns.path,
        netnsInode: view.netns.inode,
        bridgeIfindex: view.bridge.ifindex,
        watchedIfindexes: watched,
        netfilter: this.opts.backend === 'hooks' ? netfilterAttachments() : [],
        ringBytes: this.opts.ringBytes,
        filter: this.opts.filter,
        markValue: this.opts.mark?.value,
        markMask: this.opts.mark?.mask,
        mode: this.opts.mode,
        sampleEvery: this.opts.sampleEvery,
        snaplen: this.opts.snaplen,
      });
      for (const n of notices) this.emit('notice', n);
    } catch (err) {
      await session.stop();
      throw asBnError(err);
    }
    this.timer = setInterval(() => this.correlator.expire(monotonicNs()), EXPIRE_INTERVAL_MS);
  }

  /** top mode: the kernel's per-path counters. */
  readPaths(): PathCount[] {
    return this.session?.readPaths() ?? [];
  }

  /** Detaches everything, then closes the packets still open. */
  async stop(): Promise<CaptureStats> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const stats = this.session
      ? await this.session.stop()
      : { lost: 0, lostPerCpu: [], batches: 0, events: 0, packets: 0, bytesWritten: 0 };
    this.session = undefined;
    this.correlator.flush();
    return { ...stats, traversals: this.traversals };
  }

  private onBatch(bytes: Buffer): void {
    try {
      const batch = decodeBatch(bytes);
      if (batch.lost !== this.lost) {
        this.lost = batch.lost;
        this.emit('lost', this.lost);
      }
      for (const e of batch.events) this.correlator.push(e);
    } catch (err) {
      this.emit('error', asBnError(err));
    }
  }
}
