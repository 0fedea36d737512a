import { Command, Option } from 'commander';
import { lossDetailText } from '../output/lossText';
import { CaptureStats, EMPTY_SESSION_STATS } from '../capture/live';
import { TraceRecorder } from '../trace/recorder';
import { exportPcapng } from '../output/pcapngExport';
import {
  addCaptureOptions, addNamesOption, addRulesOption, CaptureCliOptions, checkFilter, describeStart, onNotices, prepareCapture, runUntilStopped, toolVersion, traceMeta,
} from './capture';
import { BnError } from '../errors';
import { collectReport, writeReport } from './report';
import { fileSizeBytes, positiveInt, positiveNumber, SNAPLEN_DEFAULT, snaplenBytes } from './options';

export interface RecordOptions extends CaptureCliOptions {
  write: string;
  /** -C, in bytes. */
  fileSize?: number;
  /** -W */
  fileCount?: number;
  /** -G, in seconds. */
  rotateSeconds?: number;
  /** --report: the HTML report of what was recorded. */
  report?: string;
  count?: number;
  snaplen: number;
  mode: 'events' | 'packets';
  pcapng?: boolean;
}

const PROGRESS_INTERVAL_MS = 250;

/** Records until --count packets, --duration, or SIGINT/SIGTERM; the file is
 * complete (trailer written) however it stops. */
export async function collectRecord(
  bridge: string,
  filter: string,
  opts: RecordOptions,
  progress: (stats: CaptureStats | undefined, elapsedS: number) => void,
  onStarted: (text: string) => void,
  onNotice: (text: string) => void = () => undefined,
): Promise<RecordStats> {
  checkRotation(opts);
  if (filter) checkFilter(filter);
  // Opened first: a place it cannot be written fails before anything is loaded.
  const recorder = new TraceRecorder(opts.write, { maxBytes: opts.fileSize, maxSeconds: opts.rotateSeconds, keepFiles: opts.fileCount });
  const { view, backend, capture } = await prepareCapture(bridge, filter, opts, {
    mode: opts.mode, snaplen: opts.snaplen, deliverBatches: false, maxPackets: opts.count,
  }).catch((err) => {
    recorder.abandon();
    throw err;
  });
  recorder.create(capture, traceMeta(bridge, filter, opts, view, backend.backend, opts.snaplen));
  onNotices(capture, onNotice);
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let stats: CaptureStats | undefined;
  try {
    stats = await runUntilStopped(capture, opts.duration, (finish) => {
      onStarted(`${describeStart(view, backend, opts)}; recording to ${opts.write}`);
      recorder.startSymbols();
      timer = setInterval(() => {
        const s = capture.stats();
        recorder.maybeRotate(s);
        progress(s ? { ...s, traversals: s.packets } : undefined, (Date.now() - startedAt) / 1000);
        if (opts.count !== undefined && s && s.packets >= opts.count) finish();
      }, PROGRESS_INTERVAL_MS);
    });
  } catch (err) {
    recorder.finish(capture.stats() ?? EMPTY_SESSION_STATS);
    throw err;
  } finally {
    if (timer) clearInterval(timer);
  }
  const failed = recorder.finish(stats);
  if (failed) throw failed;
  return { ...(stats ?? capture.stats() ?? EMPTY_SESSION_STATS), traversals: stats?.traversals ?? 0, files: recorder.files };
}

export type RecordStats = CaptureStats & { files: string[] };

function rate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

/** -W keeps the last N of the files -C or -G start: alone it means nothing. */
export function checkRotation(opts: RecordOptions): void {
  if (opts.fileCount !== undefined && opts.fileSize === undefined && opts.rotateSeconds === undefined) {
    throw new BnError('BAD_ARGUMENT', '-W keeps the last N files that -C or -G start: give -C SIZE or -G SECONDS with it');
  }
}

export async function printRecord(bridge: string, filterWords: string[], opts: RecordOptions): Promise<void> {
  checkRotation(opts);
  const tty = process.stderr.isTTY;
  let lastPackets = 0;
  let lastAt = 0;
  const stats = await collectRecord(bridge, filterWords.join(' '), opts, (s, elapsed) => {
    if (!tty || !s) return;
    const pps = elapsed > lastAt ? (s.packets - lastPackets) / (elapsed - lastAt) : 0;
    lastPackets = s.packets;
    lastAt = elapsed;
    process.stderr.write(`\r${elapsed.toFixed(1)}s  ${s.packets} packets  ${rate(s.bytesWritten)}B  ${s.lost} lost  ${rate(pps)} pkt/s   `);
  }, (text) => process.stderr.write(`${text}\n`), (text) => {
    // Over the progress line, which the next tick writes again below it.
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}notice: ${text}\n`);
  });
  if (tty) process.stderr.write('\n');
  const files = stats.files.length > 1 ? `${stats.files.length} files, ${stats.files[0]} to ${stats.files.at(-1)}` : opts.write;
  process.stderr.write(`${stats.packets} packets, ${stats.events} events, ${stats.lost} lost${lossDetailText(stats)}; wrote ${files} (${stats.bytesWritten} bytes)\n`);
  if (opts.report) {
    const r = collectReport(stats.files);
    writeReport(opts.report, r.html);
    process.stderr.write(`wrote ${opts.report}: ${r.packets} packets on ${r.paths} paths\n`);
  }
  if (opts.pcapng) {
    for (const file of stats.files) {
      const out = file.replace(/(\.bnt)?$/, '.pcapng');
      const r = exportPcapng(file, out, toolVersion());
      process.stderr.write(`wrote ${out} (${r.packets} packet records, ${r.interfaces} interfaces)\n`);
      if (r.error) throw r.error;
    }
  }
}

export function recordCommand(): Command {
  const cmd = new Command('record')
    .description('record packets crossing a bridge to a trace file, for replay and pcapng export')
    .argument('<bridge>', 'the bridge to trace')
    .argument('[filter...]', 'a tcpdump filter expression (pcap-filter), run in the kernel')
    .requiredOption('-w, --write <file>', 'the trace file to write (.bnt; created with mode 0600)')
    .option('-c, --count <n>', 'record exactly n packets (every hop of each), then stop', positiveInt('--count'))
    .option('-s, --snaplen <bytes>', `packet bytes kept at each hop (0: metadata only, at most 256)`, snaplenBytes, SNAPLEN_DEFAULT)
    .addOption(new Option('--mode <mode>', 'packets: one record per packet, assembled in the kernel; events: one per hook hit')
      .choices(['events', 'packets']).default('packets'))
    .option('--pcapng', 'also export to pcapng when done, next to the trace file (NAME.pcapng)')
    .option('--report <report.html>', 'also draw what was recorded as an HTML report when done (see report)')
    .option('-C, --file-size <size>', 'start a new file once this one holds SIZE: millions of bytes as in tcpdump, or 100k, 50M, 2G (files: NAME, NAME1, NAME2 ...; each replays on its own)', fileSizeBytes)
    .option('-G, --rotate-seconds <s>', 'start a new file every s seconds', positiveNumber('-G'))
    .option('-W, --file-count <n>', 'with -C or -G: keep only the last n files', positiveInt('-W'));
  return addNamesOption(addRulesOption(addCaptureOptions(cmd)))
    .addHelpText('after', `
Examples:
  sudo bpftrace-net record br-d13c50d4c15b -w trace.bnt
  sudo bpftrace-net record br-d13c50d4c15b -w icmp.bnt --pcapng 'icmp and host 192.168.222.2'
  bpftrace-net replay trace.bnt
  bpftrace-net export trace.bnt -o trace.pcapng`)
    .action((bridge: string, filter: string[], opts: RecordOptions) => printRecord(bridge, filter, opts));
}
