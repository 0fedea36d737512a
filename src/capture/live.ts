/** A live capture of one bridge: native session -> decode -> correlate ->
 * model. Emits Traversals; knows nothing of how they are printed. */
import { EventEmitter } from 'events';
import { compileFilter } from './filterProgram';
import { decodeBatch } from '../decode';
import { asBnError } from '../errors';
import type { ModelContext } from '../model/build';
import { attachmentsOf, planProbes, ProbeHistory, type ProbePlan } from '../model/probes';
import { rulesetChanges, type Ruleset } from '../model/ruleset';
import { BackendName, native, NativeSession, PathCount, SessionConfig, SessionStats } from '../native';
import { captureContextData, ContextData, liveModelContext, monotonicNs } from './context';
import { Kallsyms } from '../topology/kallsyms';
import { RULES_HOLD_NS, TraversalPipeline } from './pipeline';
import { decodeRuleBatch, RuleCapture } from './rules';
import { RuleIndex, type RuleTexts } from '../model/rules';
import { BridgeView, tracedDevices } from '../topology/links';
import { LinkWatcher } from '../topology/linkWatcher';
import { RulesetWatcher } from '../topology/ruleset';

export interface CaptureOptions
  extends Pick<SessionConfig, 'mode' | 'sampleEvery' | 'snaplen' | 'deliverBatches' | 'maxPackets'> {
  backend: BackendName;
  ringBytes?: number;
  filter?: string;
  mark?: { value: number; mask: number };
  idleTimeoutMs?: number;
  /** Follow ports as they come and go (netlink notifications). */
  follow?: { uplinks: string[]; dockerHost?: string; names?: boolean };
  /** --rules: switch on nf_tables' rule tracer for the traced devices. */
  rules?: boolean;
  /** -v: libbpf's notices too. */
  verbose?: boolean;
  /** --container: only packets that cross this container's port, chosen in the kernel. */
  container?: string;
}

/** The counters of a capture that never started. */
export const EMPTY_SESSION_STATS: SessionStats = { lost: 0, lostPerCpu: [], batches: 0, events: 0, packets: 0, bytesWritten: 0, shed: 0 };

export interface CaptureStats extends SessionStats {
  traversals: number;
  /** --rules: the rule tracer's messages read, and those the kernel could not deliver (ENOBUFS). */
  rules?: { events: number; lost: number };
}

const EXPIRE_INTERVAL_MS = 250;

/** Events: 'traversal' (Traversal, ClosedPacket), 'lost' (total lost so far), 'notice' (a program left
 * out on this kernel, the ruleset changed), 'ports' ({added, removed} ifindexes, the new BridgeView),
 * 'ruleset' (ProbePlan: the hook table changed, before the probes move), 'error' (BnError). */
export class LiveCapture extends EventEmitter {
  private session: NativeSession | undefined;
  private readonly pipeline: TraversalPipeline;
  private timer: NodeJS.Timeout | undefined;
  private watcher: LinkWatcher | undefined;
  private rulesetWatcher: RulesetWatcher | undefined;
  private ruleCapture: RuleCapture | undefined;
  /** --rules: the rule tracer's messages, waiting for their hops. */
  readonly rules: RuleIndex | undefined;
  /** The netns's hook table over time: what every netfilter event is read with. */
  readonly probes: ProbeHistory;
  ctx: ModelContext;
  /** What a trace file's header keeps so a replay explains packets the same way. */
  contextData: ContextData;
  /** rx_handlers' and drop locations' names, read in the background once attached. */
  private readonly kallsyms = new Kallsyms();

  constructor(
    private view: BridgeView,
    private readonly opts: CaptureOptions,
  ) {
    super();
    this.contextData = captureContextData(view);
    this.probes = new ProbeHistory(this.contextData.probePlans);
    this.rules = opts.rules ? new RuleIndex(() => this.probes.latest?.ruleset) : undefined;
    this.ctx = { ...liveModelContext(this.contextData, this.probes, this.kallsyms), rules: this.rules };
    this.pipeline = new TraversalPipeline(this.ctx, (opts.idleTimeoutMs ?? 2000) * 1e6, {
      traversal: (t, packet) => this.emit('traversal', t, packet),
      lost: (n) => this.emit('lost', n),
    }, opts.rules ? RULES_HOLD_NS : 0);
  }

  async start(): Promise<void> {
    const view = this.view;
    const session = new (native().TraceSession)(
      (batch) => this.onBatch(batch),
      (err) => this.emit('error', asBnError(err)),
    );
    this.session = session;
    const watched = tracedDevices(view, this.opts.container).map((l) => l.ifindex);
    if (this.rules) this.startRules(view);
    try {
      const { notices } = await session.start({
        backend: this.opts.backend,
        netnsPath: view.netns.path,
        netnsInode: view.netns.inode,
        bridgeIfindex: view.bridge.ifindex,
        watchedIfindexes: watched,
        netfilter: this.opts.backend === 'hooks' ? attachmentsOf(this.probes.latest!) : [],
        ringBytes: this.opts.ringBytes,
        filterProgram: this.opts.filter ? compileFilter(this.opts.filter) : [],
        markValue: this.opts.mark?.value,
        markMask: this.opts.mark?.mask,
        mode: this.opts.mode,
        sampleEvery: this.opts.sampleEvery,
        snaplen: this.opts.snaplen,
        traceFd: this.traceFd,
        deliverBatches: this.opts.deliverBatches,
        maxPackets: this.opts.maxPackets,
        // Only npm run bench sets this: what the attach points cost with programs that do nothing.
        floor: process.env.BPFTRACE_NET_BENCH_FLOOR === '1',
      });
      // Attached: not while the session's thread loads (it reads the same file, on a CPU of two).
      // Only where events come to JS to be named: record writes them to its file as they are.
      if (this.opts.deliverBatches !== false) void this.kallsyms.preload();
      // libbpf's own notices: with -v.
      if (this.opts.verbose) for (const n of notices) this.emit('notice', n);
      const unreadable = this.probes.latest?.ruleset.unreadable;
      if (unreadable) this.emit('notice', `the ruleset of netns ${view.netns.label} cannot be read (${unreadable}): hops name hooks only, never tables`);
    } catch (err) {
      await session.stop();
      this.ruleCapture?.stop();
      this.ruleCapture = undefined;
      throw asBnError(err);
    }
    this.timer = setInterval(() => this.pipeline.expire(monotonicNs()), EXPIRE_INTERVAL_MS);
    if (this.opts.follow) {
      this.watcher = new LinkWatcher(this.view, this.opts.follow.uplinks, this.opts.follow.names === false ? null : this.opts.follow.dockerHost, (view) => {
        const change = this.updateView(view);
        if (change.added.length || change.removed.length) this.emit('ports', change, view);
      });
      this.watcher.start();
    }
    this.rulesetWatcher = new RulesetWatcher(view.netns, this.probes.latest!.ruleset, (r) => void this.rulesetChanged(r),
      () => this.ruleCapture?.refreshTexts());
    this.rulesetWatcher.start();
  }

  /** --rules, before the probes: a table of our own marks the traced devices' packets.
   * A netns where it cannot be added says so in one line; the capture goes on without rules. */
  private startRules(view: BridgeView): void {
    // Every device, even with --container: a packet toward the container comes in by another one.
    const rc = new RuleCapture(view.netns, [view.bridge, ...view.ports, ...view.uplinks].map((l) => l.name), this.opts.filter);
    rc.on('batch', (bytes: Buffer) => {
      this.pipeline.pushRules(decodeRuleBatch(bytes));
      this.emit('rules', bytes);
    });
    rc.on('texts', (texts: RuleTexts) => {
      this.rules!.texts = texts;
      this.emit('ruleTexts', texts);
    });
    try {
      rc.start();
      this.ruleCapture = rc;
    } catch (err) {
      this.emit('notice', `${(err as Error).message}; the capture goes on without rules`);
    }
  }

  /** Tables or chains came or went: say what, keep the new plan (a trace file
   * gets it before the first event of a moved probe), then move the probes. */
  private async rulesetChanged(ruleset: Ruleset): Promise<void> {
    // A table may have come with its module (nf_tables, br_netfilter): their functions' names too.
    void this.kallsyms.invalidate();
    const before = this.probes.latest!;
    const plan: ProbePlan = planProbes(ruleset, monotonicNs(), before);
    this.probes.add(plan);
    this.contextData = { ...this.contextData, probePlans: [...this.contextData.probePlans, plan] };
    const changes = rulesetChanges(before.ruleset, ruleset);
    this.emit('notice', `ruleset changed: ${changes.join('; ') || 'entries reordered'}`);
    this.emit('ruleset', plan);
    if (this.opts.backend !== 'hooks' || !this.session) return;
    try {
      const { error } = await this.session.setNetfilter(attachmentsOf(plan));
      if (error) this.emit('notice', `a probe could not move with the ruleset: ${error}`);
    } catch {
      // stopped meanwhile
    }
  }

  /** Ports added or removed while tracing: follow the new ones at once, name their containers. */
  updateView(view: BridgeView): { added: number[]; removed: number[] } {
    const watched = (v: BridgeView) => new Set(tracedDevices(v, this.opts.container).map((l) => l.ifindex));
    const before = watched(this.view);
    const after = watched(view);
    const added = [...after].filter((i) => !before.has(i));
    const removed = [...before].filter((i) => !after.has(i));
    this.session?.setWatched(added, removed);
    this.ruleCapture?.setDevices([view.bridge, ...view.ports, ...view.uplinks].map((l) => l.name));
    this.view = view;
    // Names of devices that left stay known: their last packets are still being explained.
    const links = new Map(this.contextData.links.map((l) => [l.ifindex, l]));
    for (const l of view.links.values()) links.set(l.ifindex, l);
    this.contextData = { ...this.contextData, links: [...links.values()] };
    this.ctx = { ...liveModelContext(this.contextData, this.probes, this.kallsyms), rules: this.rules };
    this.pipeline.setContext(this.ctx);
    return { added, removed };
  }

  /** Output backed up (a slow pipe): stop taking events until it drains; the kernel counts the loss. */
  pause(): void {
    this.session?.setPaused(true);
  }

  resume(): void {
    this.session?.setPaused(false);
  }

  /** The native session's counters so far. */
  stats(): SessionStats | undefined {
    return this.session?.stats();
  }

  /** Recording: kernel addresses seen since the last call, and a frame for the file. */
  takeAddresses(): string[] {
    return this.session?.takeAddresses() ?? [];
  }

  writeFrame(frame: Uint8Array): void {
    this.session?.writeFrame(frame);
  }

  private traceFd: number | undefined;

  /** Recording: batches go to this open file (header written), from the start. */
  recordTo(fd: number): void {
    this.traceFd = fd;
  }

  rotateTrace(fd: number, lastFrames: Uint8Array): void {
    this.session?.rotateTrace(fd, lastFrames);
  }

  /** top mode: the kernel's per-path counters. */
  readPaths(): PathCount[] {
    return this.session?.readPaths() ?? [];
  }

  /** Detaches everything, then closes the packets still open. */
  async stop(): Promise<CaptureStats> {
    this.watcher?.stop();
    this.watcher = undefined;
    this.rulesetWatcher?.stop();
    this.rulesetWatcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const stats = this.session ? await this.session.stop() : EMPTY_SESSION_STATS;
    this.session = undefined;
    // The table goes with the tracer's socket; its last messages were handed over on the way.
    const rules = this.ruleCapture?.stats();
    this.ruleCapture?.stop();
    // Its last batch reaches JS through the event loop: let it in before the held packets go.
    if (rules) await new Promise((r) => setTimeout(r, 20));
    this.ruleCapture = undefined;
    this.pipeline.flush();
    return { ...stats, traversals: this.pipeline.traversals, ...(rules ? { rules } : {}) };
  }

  private onBatch(bytes: Buffer): void {
    try {
      this.pipeline.push(decodeBatch(bytes));
    } catch (err) {
      this.emit('error', asBnError(err));
    }
  }
}
