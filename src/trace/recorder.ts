/** The JS side of recording: the file's header before the capture starts,
 * symbol tables for the kernel addresses the native writer saw, the trailer
 * once it stopped. Batches themselves never pass through JS. */
import * as fs from 'fs';
import type { LiveCapture } from '../capture/live';
import { BnError } from '../errors';
import type { SessionStats } from '../native';
import type { BridgeView } from '../topology/links';
import { encodeFrame, encodeFrameBody, interfaceRows, planToRow, ruleTextRows, traceHeader, TraceMeta, varint } from './format';
import type { RuleTexts } from '../model/rules';
import type { ProbePlan } from '../model/probes';

const SYMBOLS_INTERVAL_MS = 500;
/** TraceFrame.rules (field 8, length-delimited): the native RuleBatch bytes go in as they are. */
const RULES_FIELD = 0x42;

export class TraceRecorder {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly file: string,
    private readonly capture: LiveCapture,
  ) {}

  /** Creates the file (mode 0600: it holds packet bytes) with its header. */
  create(meta: TraceMeta): void {
    try {
      const fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
      try {
        fs.fchmodSync(fd, 0o600);
        fs.writeSync(fd, encodeFrame({ header: traceHeader(this.capture.contextData, meta) }));
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw new BnError('TRACE_FILE', `cannot create ${this.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  /** While the native side writes batches: name the addresses it reports, follow the devices. */
  startSymbols(): void {
    this.capture.on('ports', (_change: unknown, view: BridgeView) => this.devicesChanged(view));
    // Queued before the probes move: the file names them before their first event.
    this.capture.on('ruleset', (plan: ProbePlan) => this.capture.writeFrame(encodeFrameBody({ probes: planToRow(plan) })));
    // --rules: the rule tracer's messages as read, and the rules' texts whenever they change.
    this.capture.on('rules', (bytes: Buffer) => this.capture.writeFrame(Buffer.concat([Buffer.from([RULES_FIELD]), varint(bytes.length), bytes])));
    const writeTexts = (texts: RuleTexts) => this.capture.writeFrame(encodeFrameBody({ ruleTexts: { rules: ruleTextRows(texts) } }));
    this.capture.on('ruleTexts', writeTexts);
    // Read while the capture started, before this listened.
    if (this.capture.rules?.texts.size) writeTexts(this.capture.rules.texts);
    this.timer = setInterval(() => {
      const frame = this.symbolFrame();
      if (frame) this.capture.writeFrame(encodeFrameBody(frame));
    }, SYMBOLS_INTERVAL_MS);
  }

  /** Ports came or went: the file's device table from here on. */
  devicesChanged(view: BridgeView): void {
    const rows = interfaceRows(this.capture.contextData.links, {
      bridgeIfindex: view.bridge.ifindex, ports: view.ports.map((p) => p.ifindex), uplinks: view.uplinks.map((u) => u.ifindex),
    });
    this.capture.writeFrame(encodeFrameBody({ interfaces: { interfaces: rows } }));
  }

  /** After the capture stopped (the native writer closed the file). */
  finish(stats: SessionStats): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const symbols = this.symbolFrame();
    const trailer = {
      trailer: {
        endTimeUnixNs: Date.now() * 1e6, events: stats.events, packets: stats.packets, lost: stats.lost,
        batches: stats.batches, lostPerCpu: stats.lostPerCpu,
      },
    };
    const bytes = [...(symbols ? [encodeFrame(symbols)] : []), encodeFrame(trailer)];
    fs.appendFileSync(this.file, Buffer.concat(bytes));
  }

  private symbolFrame() {
    const addresses = this.capture.takeAddresses();
    if (!addresses.length) return undefined;
    const symbols = addresses.map((hex) => {
      const addr = BigInt(`0x${hex}`);
      // A decimal string: protobufjs writes it as the exact uint64, where a number would round.
      return { address: addr.toString() as unknown as number, name: this.capture.ctx.symbol(addr) ?? '' };
    });
    return { symbols: { symbols } };
  }
}
