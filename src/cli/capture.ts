/** What watch, top and record share: the capture options, preparing a
 * capture of one bridge, and running it until --duration, a signal or the
 * caller says done. */
import { Command, Option } from 'commander';
import { BACKEND_CHOICES, BackendChoice, BackendSelection, selectBackend } from '../capture/backend';
import { CaptureOptions, CaptureStats, LiveCapture } from '../capture/live';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, projectRoot } from '../native';
import type { TraceMeta } from '../trace/format';
import { requirePrivileges } from '../system/privileges';
import { BridgeView, containerPortOf, describeBridge, Link } from '../topology/links';
import { BnError } from '../errors';
import { attachContainers } from '../topology/containers';
import { resolveNetns } from '../topology/netns';
import { withContainer } from '../output/text';
import { onStdoutClosed } from './stdout';
import { compileFilter } from '../capture/filterProgram';
import { markFilter, positiveNumber, powerOfTwoBytes, sampleRate } from './options';

export interface CaptureCliOptions {
  netns?: string;
  duration?: number;
  backend: BackendChoice;
  uplink: string[];
  ringSize?: number;
  mark?: { value: number; mask: number };
  sample?: number;
  dockerHost?: string;
  rules?: boolean;
  /** false with -n: no container or netns names (no Docker API, no /proc walk). */
  names?: boolean;
  /** -v: why this backend, and libbpf's notices. */
  verbose?: boolean;
  /** --container: only packets that cross its port (followed from the kernel on). */
  container?: string;
}

export function addCaptureOptions(cmd: Command): Command {
  return cmd
    .option('--netns <name|path>', 'the network namespace holding the bridge (default: this process\'s)')
    .option('-d, --duration <seconds>', 'stop after this many seconds', positiveNumber('--duration'))
    .addOption(new Option('--backend <name>', 'how to hook the kernel').choices(BACKEND_CHOICES).default('auto'))
    .option('--uplink <dev>', 'also follow packets on this device (repeatable; default routes are followed anyway)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--ring-size <bytes>', 'kernel ring buffer size, a power of two (e.g. 16M)', powerOfTwoBytes)
    .option('--mark <value[/mask]>', 'only packets whose mark matches', markFilter)
    .option('--sample <1/N>', 'follow one matching packet in N, at random', sampleRate)
    .option('--container <name>', 'only packets that cross this container\'s port (a name, an id prefix, or a netns name), chosen in the kernel')
    .option('-v, --verbose', 'say why this backend (and not the others) and show libbpf\'s notices')
    .option('--docker-host <socket>', 'Docker Engine API socket for container names (default: $DOCKER_HOST, /var/run/docker.sock)');
}

/** watch and record: what every chain's rules did to each packet. */
export function addRulesOption(cmd: Command): Command {
  return cmd.option('--rules', 'also name every rule a packet met at each chain: adds one table of its own (owner flag, gone with bpftrace-net however it ends) that switches on nf_tables\' rule tracer for the traced devices');
}

/** watch and record: tcpdump's -n. */
export function addNamesOption(cmd: Command): Command {
  return cmd.option('-n, --no-names', 'no name lookups: devices by name only, no container or netns names (no Docker API calls)');
}

/** A malformed expression is refused before anything is loaded, in libpcap's words. */
export function checkFilter(filter: string): void {
  compileFilter(filter);
}

export interface PreparedCapture {
  view: BridgeView;
  backend: BackendSelection;
  capture: LiveCapture;
}

export async function prepareCapture(
  bridge: string,
  filter: string,
  opts: CaptureCliOptions,
  more: Partial<CaptureOptions> = {},
): Promise<PreparedCapture> {
  if (filter) checkFilter(filter);
  requirePrivileges();
  yieldToTraffic();
  const view = describeBridge(resolveNetns(opts.netns), bridge, opts.uplink);
  if (opts.names !== false) await attachContainers(view.netns, view.links.values(), opts.dockerHost);
  if (opts.container !== undefined) requireContainerPort(view, opts.container, opts.names);
  const backend = selectBackend(opts.backend, native().probeKernel());
  const capture = new LiveCapture(view, {
    backend: backend.backend, ringBytes: opts.ringSize, filter, mark: opts.mark, sampleEvery: opts.sample,
    follow: { uplinks: opts.uplink, dockerHost: opts.dockerHost, names: opts.names !== false }, rules: opts.rules, verbose: opts.verbose,
    container: opts.container, ...more,
  });
  return { view, backend, capture };
}

/** --container NAME names a container behind a port of the bridge, or one line lists who is there. */
function requireContainerPort(view: BridgeView, name: string, names: boolean | undefined): void {
  if (names === false) throw new BnError('BAD_ARGUMENT', '--container needs container names: it cannot go with -n');
  if (containerPortOf(view, name)) return;
  const known = view.ports.map((p) => (p.container ? `${p.container.name} on ${p.name}` : p.name)).join(', ') || 'none';
  throw new BnError('NO_SUCH_CONTAINER', `no container '${name}' behind a port of ${view.bridge.name} (ports: ${known})`);
}

/** On a saturated host the packet path must win over the tracer: what the tracer then
 * cannot keep is counted as lost instead of the traffic slowing down. The reader thread
 * is created later and inherits this. */
const TRACER_NICE = 10;

function yieldToTraffic(): void {
  try {
    if (os.getPriority() < TRACER_NICE) os.setPriority(TRACER_NICE);
  } catch {
    // not allowed: run as is
  }
}

/** Starts the capture, calls started(), and stops it on finish(), --duration,
 * SIGINT or SIGTERM, or the capture's first error (rethrown). */
export async function runUntilStopped(
  capture: LiveCapture,
  duration: number | undefined,
  started: (finish: () => void) => void,
  beforeStop?: () => void,
): Promise<CaptureStats> {
  let finish: () => void = () => undefined;
  let failure: Error | undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  capture.on('error', (err: Error) => {
    failure = err;
    finish();
  });
  const onSignal = () => finish();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The reader of our output is gone (`| head -1`): stop as if interrupted.
  onStdoutClosed(onSignal);
  let timer: NodeJS.Timeout | undefined;
  let stats: CaptureStats;
  try {
    await capture.start();
    // --duration counts from the moment tracing started, not from launch.
    if (duration) timer = setTimeout(finish, duration * 1000);
    started(finish);
    await done;
  } finally {
    if (timer) clearTimeout(timer);
    beforeStop?.();
    stats = await capture.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) throw failure;
  return stats;
}

export function describeStart(view: BridgeView, backend: BackendSelection, opts: Pick<CaptureCliOptions, 'verbose' | 'container'>): string {
  const ports = view.ports.map((p) => p.name).join(', ') || 'none';
  const uplinks = view.uplinks.map((u) => u.name).join(', ') || 'none';
  const only = opts.container !== undefined ? `; only packets crossing ${containerPortOf(view, opts.container)?.name ?? 'no port'} (${opts.container})` : '';
  return `watching ${view.bridge.name} in netns ${view.netns.label} (ports: ${ports}; uplinks: ${uplinks})${only}; ${opts.verbose ? backend.why : backend.short}`;
}

export function traceMeta(
  bridge: string, filter: string, opts: CaptureCliOptions & { mode: string }, view: BridgeView, backend: string, snaplen: number,
): TraceMeta {
  return {
    bridge, netns: opts.netns ?? '', backend, filter, snaplen, mode: opts.mode, sampleEvery: opts.sample ?? 1,
    command: process.argv.slice(2).join(' '), toolVersion: toolVersion(),
    ports: view.ports.map((p) => p.ifindex), uplinks: view.uplinks.map((u) => u.ifindex), rules: opts.rules ?? false,
  };
}

export function toolVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** What the capture says while it runs (the ruleset changed, rules could not be switched
 * on, a port came or went), as lines for onNotice: every command shows them. */
export function onNotices(capture: LiveCapture, onNotice: (text: string) => void): void {
  capture.on('notice', (n: string) => onNotice(n));
  capture.on('ports', (change: { added: number[]; removed: number[] }) => {
    for (const line of describePortChange(change, capture.contextData.links)) onNotice(line);
  });
}

/** "port added: vethX (web-3)" for the status line. */
export function describePortChange(change: { added: number[]; removed: number[] }, known: Link[]): string[] {
  const byIndex = new Map(known.map((l) => [l.ifindex, l]));
  const name = (i: number) => {
    const l = byIndex.get(i);
    return l ? withContainer(l.name, l.container) : `if${i}`;
  };
  return [...change.added.map((i) => `port added: ${name(i)}`), ...change.removed.map((i) => `port removed: ${name(i)}`)];
}
