import { Command, Option } from 'commander';
import { CaptureStats, EMPTY_SESSION_STATS } from '../capture/live';
import { TraceRecorder } from '../trace/recorder';
import { exportPcapng } from '../output/pcapngExport';
import {
  addCaptureOptions, addRulesOption, CaptureCliOptions, describeStart, lostPerCpuText, prepareCapture, runUntilStopped, toolVersion, traceMeta,
} from './capture';
import { positiveInt, SNAPLEN_DEFAULT, snaplenBytes } from './options';

export interface RecordOptions extends CaptureCliOptions {
  write: string;
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
): Promise<CaptureStats> {
  const { view, backend, capture } = await prepareCapture(bridge, filter, opts, {
    mode: opts.mode, snaplen: opts.snaplen, tracePath: opts.write, deliverBatches: false, maxPackets: opts.count,
  });
  const recorder = new TraceRecorder(opts.write, capture);
  recorder.create(traceMeta(bridge, filter, opts, view, backend.backend, opts.snaplen));
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let stats: CaptureStats | undefined;
  try {
    stats = await runUntilStopped(capture, opts.duration, (finish) => {
      onStarted(`${describeStart(view, backend)}; recording to ${opts.write}`);
      recorder.startSymbols();
      timer = setInterval(() => {
        const s = capture.stats();
        progress(s ? { ...s, traversals: s.packets } : undefined, (Date.now() - startedAt) / 1000);
        if (opts.count !== undefined && s && s.packets >= opts.count) finish();
      }, PROGRESS_INTERVAL_MS);
    });
  } finally {
    if (timer) clearInterval(timer);
    recorder.finish(stats ?? capture.stats() ?? EMPTY_SESSION_STATS);
  }
  return stats;
}

function rate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

export async function printRecord(bridge: string, filterWords: string[], opts: RecordOptions): Promise<void> {
  const tty = process.stderr.isTTY;
  let lastPackets = 0;
  let lastAt = 0;
  const stats = await collectRecord(bridge, filterWords.join(' '), opts, (s, elapsed) => {
    if (!tty || !s) return;
    const pps = elapsed > lastAt ? (s.packets - lastPackets) / (elapsed - lastAt) : 0;
    lastPackets = s.packets;
    lastAt = elapsed;
    process.stderr.write(`\r${elapsed.toFixed(1)}s  ${s.packets} packets  ${rate(s.bytesWritten)}B  ${s.lost} lost  ${rate(pps)} pkt/s   `);
  }, (text) => process.stderr.write(`${text}\n`));
  if (tty) process.stderr.write('\n');
  process.stderr.write(`${stats.packets} packets, ${stats.events} events, ${stats.lost} lost${lostPerCpuText(stats)}; wrote ${opts.write} (${stats.bytesWritten} bytes)\n`);
  if (opts.pcapng) {
    const out = opts.write.replace(/(\.bnt)?$/, '.pcapng');
    const r = exportPcapng(opts.write, out, toolVersion());
    process.stderr.write(`wrote ${out} (${r.packets} packet records, ${r.interfaces} interfaces)\n`);
    if (r.error) throw r.error;
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
    .option('--pcapng', 'also export to pcapng when done, next to the trace file (NAME.pcapng)');
  return addRulesOption(addCaptureOptions(cmd))
    .addHelpText('after', `
Examples:
  sudo bpftrace-net record br-d13c50d4c15b -w trace.bnt
  sudo bpftrace-net record br-d13c50d4c15b -w icmp.bnt --pcapng 'icmp and host 192.168.222.2'
  bpftrace-net replay trace.bnt
  bpftrace-net export trace.bnt -o trace.pcapng`)
    .action((bridge: string, filter: string[], opts: RecordOptions) => printRecord(bridge, filter, opts));
}
