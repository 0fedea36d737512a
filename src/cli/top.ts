import { Command } from 'commander';
import type { ClosedPacket } from '../correlate/correlator';
import { PathTable, TopSnapshot } from '../model/paths';
import type { Traversal } from '../model/traversal';
import { formatTop } from '../output/top';
import { stdoutClosed } from './stdout';
import { addCaptureOptions, CaptureCliOptions, describeStart, onNotices, prepareCapture, runUntilStopped } from './capture';
import { positiveInt, positiveNumber } from './options';

export interface TopOptions extends CaptureCliOptions {
  interval: number;
  limit: number;
  json?: boolean;
  /** Stop after this many refreshes. */
  iterations?: number;
}

/** Counts packets per path in the kernel and hands a snapshot to onSnapshot
 * every interval (and a last one at the end). */
export async function collectTop(
  bridge: string,
  filter: string,
  opts: TopOptions,
  onSnapshot: (s: TopSnapshot) => void,
  onStarted: (text: string) => void,
  onNotice: (text: string) => void = () => undefined,
): Promise<TopSnapshot> {
  const { view, backend, capture } = await prepareCapture(bridge, filter, opts, { mode: 'top', idleTimeoutMs: 1000 });
  const table = new PathTable();
  onNotices(capture, onNotice);
  let lost = 0;
  capture.on('traversal', (t: Traversal, packet: ClosedPacket) => {
    const signature = packet.events.find((e) => e.pathSignature)?.pathSignature;
    if (signature) table.addExemplar(signature, t);
  });
  capture.on('lost', (n: number) => (lost = n));
  let timer: NodeJS.Timeout | undefined;
  let last: TopSnapshot | undefined;
  const take = () => (last = table.snapshot(capture.readPaths(), Date.now(), lost));
  let refreshes = 0;
  let attached = false;
  try {
    await runUntilStopped(capture, opts.duration, (finish) => {
      attached = true;
      onStarted(describeStart(view, backend, opts));
      take();
      timer = setInterval(() => {
        onSnapshot(take());
        if (opts.iterations !== undefined && ++refreshes >= opts.iterations) finish();
      }, opts.interval * 1000);
    }, () => {
      if (timer) clearInterval(timer);
      // Stopped between refreshes (Ctrl-C, --duration): the counts up to now.
      if (attached && (opts.iterations === undefined || refreshes < opts.iterations)) onSnapshot(take());
    });
  } finally {
    if (timer) clearInterval(timer);
  }
  return last ?? table.snapshot([], Date.now(), lost);
}

/** Notices kept under the table on a terminal, where each refresh clears the screen. */
const NOTICES_SHOWN = 5;

export async function printTop(bridge: string, filterWords: string[], opts: TopOptions): Promise<void> {
  const tty = process.stdout.isTTY && !opts.json;
  const notices: string[] = [];
  const show = (s: TopSnapshot) => {
    if (stdoutClosed()) return;
    const below = tty && notices.length ? `\n${notices.map((n) => `notice: ${n}`).join('\n')}` : '';
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...s, paths: s.paths.slice(0, opts.limit) })}\n`);
    else process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : ''}${formatTop(s, opts.limit, bridge)}${below}\n${tty ? '' : '\n'}`);
  };
  const onNotice = (text: string) => {
    if (!tty) return void process.stderr.write(`notice: ${text}\n`);
    notices.push(`${new Date().toISOString().slice(11, 19)} ${text}`);
    if (notices.length > NOTICES_SHOWN) notices.shift();
  };
  await collectTop(bridge, filterWords.join(' '), opts, show, (text) => process.stderr.write(`${text}\n`), onNotice);
}

export function topCommand(): Command {
  const cmd = new Command('top')
    .description('count packets per path in the kernel and show the busiest paths and drop points, refreshed live')
    .argument('<bridge>', 'the bridge to trace')
    .argument('[filter...]', 'a tcpdump filter expression (pcap-filter), run in the kernel')
    .option('-i, --interval <seconds>', 'refresh every this many seconds', positiveNumber('--interval'), 1)
    .option('-n, --limit <rows>', 'show this many paths', positiveInt('--limit'), 20)
    .option('--iterations <n>', 'stop after n refreshes', positiveInt('--iterations'))
    .option('--json', 'one JSON snapshot per refresh (JSON lines)');
  return addCaptureOptions(cmd)
    .addHelpText('after', `
Examples:
  sudo bpftrace-net top br-d13c50d4c15b
  sudo bpftrace-net top docker0 'udp' --interval 5 --limit 10
  sudo bpftrace-net top br0 --netns dk --json --iterations 3`)
    .action((bridge: string, filter: string[], opts: TopOptions) => printTop(bridge, filter, opts));
}
