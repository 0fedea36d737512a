/** The JS side of recording: each file's header before the reader thread gets it,
 * symbol tables for the kernel addresses the native writer saw, the trailer once
 * the capture stopped; and, with -C/-G, a new file that stands on its own (its
 * own header, device table, probe plan, rule texts and symbols) whenever the
 * current one is full or old enough. Batches themselves never pass through JS. */
import * as fs from 'fs';
import type { LiveCapture } from '../capture/live';
import type { SessionStats } from '../native';
import { EMPTY_SESSION_STATS } from '../capture/live';
import type { BridgeView } from '../topology/links';
import { BnError } from '../errors';
import { OutputFile } from '../output/outputFile';
import { encodeFrame, encodeFrameBody, interfaceRows, planToRow, ruleTextRows, traceHeader, TraceMeta, varint } from './format';
import type { RuleTexts } from '../model/rules';
import type { ProbePlan } from '../model/probes';
import { RuleBatchFilter } from './ruleBatches';

const SYMBOLS_INTERVAL_MS = 500;
/** TraceFrame.rules (field 8, length-delimited): the native RuleBatch bytes go in as they are. */
const RULES_FIELD = 0x42;

/** record -C/-G/-W, as tcpdump has them. */
export interface Rotation {
  /** Start a new file once this many bytes are written (-C). */
  maxBytes?: number;
  /** Start a new file after this many seconds (-G). */
  maxSeconds?: number;
  /** Keep the newest this many files, deleting older ones this run wrote (-W). */
  keepFiles?: number;
}

/** tcpdump's names: the first file as given, then NAME1, NAME2, ... */
export function rotatedName(file: string, index: number): string {
  return index === 0 ? file : `${file}${index}`;
}

function ruleTextsFrame(texts: RuleTexts) {
  return { ruleTexts: { rules: ruleTextRows(texts) } };
}

export class TraceRecorder {
  private timer: NodeJS.Timeout | undefined;
  private file: OutputFile;
  private meta: TraceMeta | undefined;
  private started = false;
  /** Every address named so far: each file carries the names its events need. */
  private readonly symbols = new Map<string, string>();
  private index = 0;
  private readonly written: string[] = [];
  private fileStartedAt = 0;
  private fileStartBytes = 0;

  /** Opens the first file at once (before anything is loaded: an unwritable place fails first). */
  constructor(
    readonly path: string,
    private readonly rotation: Rotation = {},
  ) {
    this.file = OutputFile.create(path, 'TRACE_FILE');
  }

  private capture!: LiveCapture;

  /** The files written so far, oldest first (those -W deleted left out). */
  get files(): string[] {
    return [...this.written];
  }

  /** Writes the header; the capture's reader thread writes to the same file from then on. */
  create(capture: LiveCapture, meta: TraceMeta): void {
    this.capture = capture;
    this.meta = meta;
    this.file.write(encodeFrame({ header: traceHeader(this.capture.contextData, meta) }));
    this.capture.recordTo(this.file.fd);
  }

  /** Tracing started: the file takes its name, and from here on names the addresses it
   * reports and follows the devices. */
  startSymbols(): void {
    this.started = true;
    this.file.publish();
    this.written.push(this.path);
    this.fileStartedAt = Date.now();
    this.capture.on('ports', (_change: unknown, view: BridgeView) => this.devicesChanged(view));
    // Queued before the probes move: the file names them before their first event.
    this.capture.on('ruleset', (plan: ProbePlan) => this.capture.writeFrame(encodeFrameBody({ probes: planToRow(plan) })));
    // --rules: the rule tracer's messages as read, and the rules' texts whenever they change.
    const ruleBatches = new RuleBatchFilter();
    this.capture.on('rules', (bytes: Buffer) => {
      if (!ruleBatches.keep(bytes, this.capture.stats()?.events ?? 0, performance.now())) return;
      this.capture.writeFrame(Buffer.concat([Buffer.from([RULES_FIELD]), varint(bytes.length), bytes]));
    });
    this.capture.on('ruleTexts', (texts: RuleTexts) => this.capture.writeFrame(encodeFrameBody(ruleTextsFrame(texts))));
    // Read while the capture started, before this listened.
    if (this.capture.rules?.texts.size) this.capture.writeFrame(encodeFrameBody(ruleTextsFrame(this.capture.rules.texts)));
    this.timer = setInterval(() => {
      const frame = this.symbolFrame(this.newSymbols());
      if (frame) this.capture.writeFrame(encodeFrameBody(frame));
    }, SYMBOLS_INTERVAL_MS);
  }

  /** -C/-G: called now and then while recording; starts the next file when this one is done. */
  maybeRotate(stats: SessionStats | undefined): void {
    if (!this.started || !stats) return;
    const full = this.rotation.maxBytes !== undefined && stats.bytesWritten - this.fileStartBytes >= this.rotation.maxBytes;
    const old = this.rotation.maxSeconds !== undefined && Date.now() - this.fileStartedAt >= this.rotation.maxSeconds * 1000;
    if (full || old) this.rotate(stats);
  }

  private rotate(stats: SessionStats): void {
    // The old file's end goes through the reader thread, after the batches it has written,
    // together with the switch (nothing can come between them).
    const symbols = this.symbolFrame(this.newSymbols());
    const last = Buffer.concat([...(symbols ? [encodeFrame(symbols)] : []), encodeFrame(this.trailer(stats))]);
    const name = rotatedName(this.path, ++this.index);
    const next = OutputFile.create(name, 'TRACE_FILE');
    const data = this.capture.contextData;
    const latest = this.capture.probes.latest;
    next.write(encodeFrame({ header: traceHeader({ ...data, probePlans: latest ? [latest] : [] }, this.meta!) }));
    const all = this.symbolFrame([...this.symbols].map(([address, name]) => ({ address, name })));
    if (all) next.write(encodeFrame(all));
    if (this.capture.rules?.texts.size) next.write(encodeFrame(ruleTextsFrame(this.capture.rules.texts)));
    next.publish();
    this.capture.rotateTrace(next.fd, last);
    this.file.close();
    this.file = next;
    this.written.push(name);
    this.fileStartedAt = Date.now();
    this.fileStartBytes = stats.bytesWritten;
    const keep = this.rotation.keepFiles;
    while (keep !== undefined && this.written.length > keep) fs.rmSync(this.written.shift()!, { force: true });
  }

  /** Ports came or went: the file's device table from here on. */
  devicesChanged(view: BridgeView): void {
    if (this.meta) this.meta = { ...this.meta, ports: view.ports.map((p) => p.ifindex), uplinks: view.uplinks.map((u) => u.ifindex) };
    const rows = interfaceRows(this.capture.contextData.links, {
      bridgeIfindex: view.bridge.ifindex, ports: view.ports.map((p) => p.ifindex), uplinks: view.uplinks.map((u) => u.ifindex),
    });
    this.capture.writeFrame(encodeFrameBody({ interfaces: { interfaces: rows } }));
  }

  /** After the capture stopped (the reader thread closed its side of the file): the
   * last names and the trailer. A capture that never started leaves no file, and an
   * existing file by that name as it was. Returns what went wrong writing them. */
  finish(stats: SessionStats): BnError | undefined {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.started) {
      this.file.discard();
      return undefined;
    }
    try {
      const symbols = this.symbolFrame(this.newSymbols());
      this.file.write(Buffer.concat([...(symbols ? [encodeFrame(symbols)] : []), encodeFrame(this.trailer(stats))]));
      return undefined;
    } catch (err) {
      // Returned, not thrown: it must not hide the error that stopped the capture, if any.
      return new BnError('TRACE_FILE', `writing the trace file failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    } finally {
      this.file.close();
    }
  }

  /** The capture could not be prepared: nothing was written; the file goes. */
  abandon(): void {
    this.finish(EMPTY_SESSION_STATS);
  }

  private trailer(stats: SessionStats) {
    return {
      trailer: {
        endTimeUnixNs: Date.now() * 1e6, events: stats.events, packets: stats.packets, lost: stats.lost,
        batches: stats.batches, lostPerCpu: stats.lostPerCpu, shed: stats.shed,
      },
    };
  }

  /** Addresses the reader saw since the last call, named. */
  private newSymbols(): { address: string; name: string }[] {
    return this.capture.takeAddresses().map((hex) => {
      const name = this.capture.ctx.symbol(BigInt(`0x${hex}`)) ?? '';
      this.symbols.set(hex, name);
      return { address: hex, name };
    });
  }

  private symbolFrame(named: { address: string; name: string }[]) {
    if (!named.length) return undefined;
    // A decimal string: protobufjs writes it as the exact uint64, where a number would round.
    const symbols = named.map(({ address, name }) => ({ address: BigInt(`0x${address}`).toString() as unknown as number, name }));
    return { symbols: { symbols } };
  }
}
