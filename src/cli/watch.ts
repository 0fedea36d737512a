import { Command, Option } from 'commander';
import { BACKEND_CHOICES, BackendChoice, BackendSelection, selectBackend } from '../capture/backend';
import { CaptureStats, LiveCapture } from '../capture/live';
import type { Traversal } from '../model/traversal';
import { native } from '../native';
import { formatJsonLine } from '../output/json';
import { formatTraversal } from '../output/text';
import { requirePrivileges } from '../system/privileges';
import { BridgeView, describeBridge } from '../topology/links';
import { resolveNetns } from '../topology/netns';
import { markFilter, positiveInt, positiveNumber, powerOfTwoBytes, sampleRate } from './options';
import { BnError } from '../errors';

export interface WatchOptions {
  netns?: string;
  count?: number;
  duration?: number;
  json?: boolean;
  backend: BackendChoice;
  uplink: string[];
  ringSize?: number;
  mark?: { value: number; mask: number };
  mode: 'events' | 'packets';
  sample?: number;
  snaplen?: number;
}

export interface WatchStatus {
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
  requirePrivileges();
  const view = describeBridge(resolveNetns(opts.netns), bridge, opts.uplink);
  const backend = selectBackend(opts.backend, native().probeKernel());
  const capture = new LiveCapture(view, {
    backend: backend.backend, ringBytes: opts.ringSize, filter, mark: opts.mark,
    mode: opts.mode, sampleEvery: opts.sample, snaplen: opts.snaplen,
  });

  let finish: () => void = () => undefined;
  let failure: Error | undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let seen = 0;
  capture.on('traversal', (t: Traversal) => {
    if (opts.count !== undefined && seen >= opts.count) return;
    seen++;
    onTraversal(t);
    if (opts.count !== undefined && seen >= opts.count) finish();
  });
  capture.on('lost', (n: number) => status.onLost(n));
  capture.on('notice', (n: string) => status.onNotice(n));
  capture.on('error', (err: Error) => {
    failure = err;
    finish();
  });

  const onSignal = () => finish();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const timer = opts.duration ? setTimeout(finish, opts.duration * 1000) : undefined;
  let stats: CaptureStats;
  try {
    await capture.start();
    status.onStarted(view, backend);
    await done;
  } finally {
    if (timer) clearTimeout(timer);
    stats = await capture.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) throw failure;
  return stats;
}

/** A malformed expression is refused before anything is loaded, in libpcap's words. */
export function checkFilter(filter: string): void {
  try {
    native().compileFilter(filter);
  } catch (err) {
    throw new BnError('BAD_FILTER', `bad filter '${filter}': ${(err as Error).message}`);
  }
}

export function printWatch(bridge: string, filterWords: string[], opts: WatchOptions): Promise<void> {
  const write = (t: Traversal) => process.stdout.write(`${opts.json ? formatJsonLine(t) : formatTraversal(t)}\n`);
  return collectWatch(bridge, filterWords.join(' '), opts, write, {
    onStarted(view, backend) {
      const ports = view.ports.map((p) => p.name).join(', ') || 'none';
      const uplinks = view.uplinks.map((u) => u.name).join(', ') || 'none';
      process.stderr.write(
        `watching ${view.bridge.name} in netns ${view.netns.label} (ports: ${ports}; uplinks: ${uplinks}); ${backend.why}\n`,
      );
    },
    onNotice(text) {
      process.stderr.write(`notice: ${text}\n`);
    },
    onLost(total) {
      process.stderr.write(`! ${total} events lost so far: the ring buffer was full (a larger --ring-size helps)\n`);
    },
  }).then((stats) => {
    const perCpu = stats.lost ? ` (${stats.lostPerCpu.map((n, cpu) => `cpu${cpu}: ${n}`).join(', ')})` : '';
    process.stderr.write(`${stats.traversals} packets, ${stats.events} events, ${stats.lost} lost${perCpu}\n`);
  });
}

export function watchCommand(): Command {
  return new Command('watch')
    .description('show, live, every packet crossing a bridge: ports, netfilter hooks, verdicts, where it left or was dropped')
    .argument('<bridge>', 'the bridge to trace, e.g. br-d13c50d4c15b or docker0')
    .argument('[filter...]', 'a tcpdump filter expression (pcap-filter), run in the kernel at each packet\'s first hook')
    .option('--netns <name|path>', 'the network namespace holding the bridge (default: this process\'s)')
    .option('-c, --count <n>', 'stop after n packets', positiveInt('--count'))
    .option('-d, --duration <seconds>', 'stop after this many seconds', positiveNumber('--duration'))
    .option('--json', 'one JSON object per packet (JSON lines)')
    .addOption(new Option('--backend <name>', 'how to hook the kernel').choices(BACKEND_CHOICES).default('auto'))
    .option('--uplink <dev>', 'also follow packets on this device (repeatable; default routes are followed anyway)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--ring-size <bytes>', 'kernel ring buffer size, a power of two (e.g. 16M)', powerOfTwoBytes)
    .option('--mark <value[/mask]>', 'only packets whose mark matches', markFilter)
    .addOption(new Option('--mode <mode>', 'events: the kernel sends every hook hit; packets: it assembles each packet and sends it once (cheaper)')
      .choices(['events', 'packets']).default('events'))
    .option('--sample <1/N>', 'follow one matching packet in N, at random', sampleRate)
    .addHelpText('after', `
Examples:
  sudo bpftrace-net watch br-d13c50d4c15b
  sudo bpftrace-net watch docker0 --count 10 --json
  sudo bpftrace-net watch br-d13c50d4c15b 'icmp and host 192.168.222.2'
  sudo bpftrace-net watch br0 --netns dk --duration 30
  sudo ip netns exec dk bpftrace-net watch br0`)
    .action((bridge: string, filter: string[], opts: WatchOptions) => printWatch(bridge, filter, opts));
}
