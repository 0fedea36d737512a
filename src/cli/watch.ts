import { Command, Option } from 'commander';
import { lossDetailText } from '../output/lossText';
import type { BackendSelection } from '../capture/backend';
import { CaptureStats, EMPTY_SESSION_STATS, LiveCapture } from '../capture/live';
import type { Traversal } from '../model/traversal';
import { formatJsonLine } from '../output/json';
import { formatTraversal } from '../output/text';
import type { BridgeView } from '../topology/links';
import { TraceRecorder } from '../trace/recorder';
import { stdoutClosed } from './stdout';
import { printReplay } from './replay';
import { BnError } from '../errors';
import * as os from 'os';
import { ReportBuilder } from '../output/report';
import { reportHtml } from '../output/reportHtml';
import { writeReport } from './report';
import {
  addCaptureOptions, addNamesOption, addRulesOption, CaptureCliOptions, checkFilter, describeStart, onNotices, prepareCapture, runUntilStopped, toolVersion, traceMeta,
} from './capture';
import { positiveInt, SNAPLEN_DEFAULT, snaplenBytes } from './options';

export interface WatchOptions extends CaptureCliOptions {
  count?: number;
  json?: boolean;
  mode: 'events' | 'packets';
  /** Also record what is shown to this trace file. */
  write?: string;
  snaplen: number;
  /** --report: the HTML report of what was shown, written when the capture ends. */
  report?: string;
  /** -e: Ethernet addresses on each hop. */
  ether?: boolean;
}

export interface WatchStatus {
  onCapture?(capture: LiveCapture): void;
  onStarted(view: BridgeView, backend: BackendSelection): void;
  onLost(total: number): void;
  onNotice(text: string): void;
}

/** Traces until --count traversals, --duration seconds, or SIGINT/SIGTERM. */
export async function collectWatch(
  bridge: string,
  filter: string,
  opts: WatchOptions,
  onTraversal: (t: Traversal) => void,
  status: WatchStatus,
): Promise<CaptureStats> {
  if (filter) checkFilter(filter);
  // Opened first: a place it cannot be written fails before anything is loaded.
  const recorder = opts.write ? new TraceRecorder(opts.write) : undefined;
  const abandon = (err: unknown): never => {
    recorder?.abandon();
    throw err;
  };
  const { view, backend, capture } = await prepareCapture(bridge, filter, opts, { mode: opts.mode, snaplen: opts.write ? opts.snaplen : 0 }).catch(abandon);
  status.onCapture?.(capture);
  recorder?.create(capture, traceMeta(bridge, filter, opts, view, backend.backend, opts.write ? opts.snaplen : 0));
  const startedAt = Date.now();
  const report = opts.report ? new ReportBuilder({
    host: os.hostname(), kernel: os.release(), backend: backend.backend, bridge: view.bridge.name, netns: view.netns.label, filter,
    mode: opts.mode, startedAt: new Date(startedAt).toISOString(), durationS: null, lost: 0, links: capture.contextData.links,
    ports: view.ports.map((p) => p.ifindex), uplinks: view.uplinks.map((u) => u.ifindex), rules: opts.rules ?? false,
  }) : undefined;
  let seen = 0;
  let finish: () => void = () => undefined;
  capture.on('traversal', (t: Traversal) => {
    if (opts.count !== undefined && seen >= opts.count) return;
    seen++;
    report?.add(t);
    onTraversal(t);
    if (opts.count !== undefined && seen >= opts.count) finish();
  });
  capture.on('lost', (n: number) => status.onLost(n));
  onNotices(capture, status.onNotice);
  let stats: CaptureStats | undefined;
  try {
    stats = await runUntilStopped(capture, opts.duration, (stop) => {
      finish = stop;
      recorder?.startSymbols();
      status.onStarted(view, backend);
    });
  } catch (err) {
    recorder?.finish(capture.stats() ?? EMPTY_SESSION_STATS);
    throw err;
  }
  const failed = recorder?.finish(stats);
  if (failed) throw failed;
  if (report && opts.report) {
    report.setFacts({ lost: stats.lost, durationS: (Date.now() - startedAt) / 1000, links: capture.contextData.links });
    writeReport(opts.report, reportHtml(report.build(), toolVersion()));
  }
  // The summary counts the packets shown: with --count, the rest were traced but not printed.
  return { ...stats, traversals: seen };
}

export function printWatch(bridge: string, filterWords: string[], opts: WatchOptions): Promise<void> {
  let capture: LiveCapture | undefined;
  let backedUp = false;
  // A reader slower than the traffic (a pipe into jq) must not make us buffer without
  // bound: stop taking events until stdout drains; the kernel counts what it drops.
  const write = (t: Traversal) => {
    if (stdoutClosed()) return;
    if (process.stdout.write(`${opts.json ? formatJsonLine(t) : formatTraversal(t, opts.ether)}\n`) || backedUp) return;
    backedUp = true;
    capture?.pause();
    process.stdout.once('drain', () => {
      backedUp = false;
      capture?.resume();
    });
  };
  return collectWatch(bridge, filterWords.join(' '), opts, write, {
    onCapture(c) {
      capture = c;
    },
    onStarted(view, backend) {
      process.stderr.write(`${describeStart(view, backend, opts)}\n`);
    },
    onNotice(text) {
      process.stderr.write(`notice: ${text}\n`);
    },
    onLost(total) {
      process.stderr.write(`! ${total} events lost so far: the ring buffer was full (a larger --ring-size helps)\n`);
    },
  }).then((stats) => {
    process.stderr.write(`${stats.traversals} packets, ${stats.events} events, ${stats.lost} lost${lossDetailText(stats)}\n`);
  });
}

export function watchCommand(): Command {
  const cmd = new Command('watch')
    .description('show, live, every packet crossing a bridge: ports, netfilter hooks, verdicts, where it left or was dropped')
    .argument('[bridge]', 'the bridge to trace, e.g. br-d13c50d4c15b or docker0')
    .argument('[filter...]', 'a tcpdump filter expression (pcap-filter), run in the kernel at each packet\'s first hook')
    .option('-c, --count <n>', 'stop after n packets', positiveInt('--count'))
    .option('--json', 'one JSON object per packet (JSON lines)')
    .addOption(new Option('--mode <mode>', 'events: the kernel sends every hook hit; packets: it assembles each packet and sends it once (cheaper)')
      .choices(['events', 'packets']).default('events'))
    .option('-w, --write <file>', 'also record what is shown to this trace file (see replay, export)')
    .option('-s, --snaplen <bytes>', 'with --write: packet bytes kept at each hop (0 to 256)', snaplenBytes, SNAPLEN_DEFAULT)
    .option('--report <report.html>', 'when done, draw what was shown as an HTML report (see report)')
    .option('-e, --ether', 'print each hop\'s Ethernet addresses (JSON hops always carry smac/dmac where known)')
    .option('-r, --read <trace.bnt>', 'read a trace file instead of the kernel (as replay does; the words after it are the filter)');
  return addNamesOption(addRulesOption(addCaptureOptions(cmd)))
    .addHelpText('after', `
Examples:
  sudo bpftrace-net watch br-d13c50d4c15b
  sudo bpftrace-net watch docker0 --count 10 --json
  sudo bpftrace-net watch br-d13c50d4c15b 'icmp and host 192.168.222.2'
  sudo bpftrace-net watch br0 --netns dk --duration 30 --mode packets --sample 1/100
  sudo ip netns exec dk bpftrace-net watch br0

Reading the output:
  #12 ...               a packet (its id), then one line per hop, in the order it met them
  filter?               '?': the table is deduced (several chains share that place), not observed
  (inferred)            the hop itself is deduced from the hops around it, no probe saw it
  * ...                 a decision: bridging (FDB port, flood, up to L3) or routing
  -- ...                a note on the hop (why, what the kernel said)
  => ...                where the packet left, was delivered, or was dropped (and by what)
  ! N event(s) ...      events of this packet the kernel could not deliver: hops are incomplete`)
    .action((bridge: string | undefined, filter: string[], opts: WatchOptions & { read?: string }) => {
      // tcpdump's -r: the same output from a file; every positional word is then the filter.
      if (opts.read) return printReplay(opts.read, [...(bridge ? [bridge] : []), ...filter], opts);
      if (!bridge) throw new BnError('BAD_ARGUMENT', "missing the bridge to trace (or -r FILE to read a trace)");
      return printWatch(bridge, filter, opts);
    });
}
