import * as fs from 'fs';
import * as path from 'path';
import { BnError } from './errors';

export interface ProbeResult {
  name: 'btf' | 'ringbuf' | 'tp_btf' | 'fentry' | 'fentry_bridge' | 'kprobe' | 'netfilter_link' | 'tc';
  ok: boolean;
  detail: string;
}

export interface NetfilterAttachment {
  family: number;
  hook: number;
  /** Which probe program of the pool. */
  slot: number;
  priority: number;
  /** Where it may move when another program holds `priority`. */
  lastPriority?: number;
}

export type BackendName = 'hooks' | 'fentry' | 'kprobe';

export interface SessionConfig {
  backend: BackendName;
  netnsPath?: string;
  netnsInode: number;
  bridgeIfindex: number;
  watchedIfindexes: number[];
  netfilter: NetfilterAttachment[];
  ringBytes?: number;
  /** tcpdump / pcap-filter expression, compiled by libpcap, run in the kernel. */
  /** compileFilter()'s rows; empty or absent: every packet. */
  filterProgram?: [number, number, number, number][];
  markValue?: number;
  markMask?: number;
  /** events: a ring record per hook hit; packets: one per packet, assembled in the kernel;
   * top: packets counted per path in the kernel, one exemplar per new path. */
  mode?: CaptureMode;
  /** Follow one matching packet in this many, at random. */
  sampleEvery?: number;
  /** Packet bytes copied at each hop (0: none, at most 256). */
  snaplen?: number;
  /** record: batches are written to (a dup of) this open file (its header already written). */
  traceFd?: number;
  /** false: batches go only to the trace file. */
  deliverBatches?: boolean;
  /** Keep exactly the first this many packets (all their hops); 0: no limit. */
  maxPackets?: number;
  /** npm run bench's floor: the same attach points, every program returning at once. */
  floor?: boolean;
}

export type CaptureMode = 'events' | 'packets' | 'top';

export interface PathCount {
  /** 16 hex digits. */
  signature: string;
  packets: number;
  bytes: number;
}

export interface SessionStats {
  lost: number;
  /** The same count per possible CPU, as the kernel keeps it. */
  lostPerCpu: number[];
  batches: number;
  events: number;
  /** Packets whose first hop was seen. */
  packets: number;
  /** Bytes appended to the trace file. */
  bytesWritten: number;
  /** Packets not followed because the ring was nearly full: shed whole, their events (or
   * records) counted in `lost`. */
  shed: number;
}

export interface NativeSession {
  /** Resolves once attached, with the programs left out on this kernel. */
  start(config: SessionConfig): Promise<{ notices: string[] }>;
  stop(): Promise<SessionStats>;
  stats(): SessionStats;
  /** top mode: the kernel's per-path counters, summed over CPUs. */
  readPaths(): PathCount[];
  /** record: an encoded TraceFrame, written by the reader thread between batches. */
  writeFrame(frame: Uint8Array): void;
  /** record -C/-G: the old file's last frames (whole, length-prefixed), then go on in fd (header written). */
  rotateTrace(fd: number, lastFrames: Uint8Array): void;
  /** record: kernel addresses (hex) seen since the last call, to be named in the file. */
  takeAddresses(): string[];
  /** Devices whose packets start a traversal, changed while running; false when not running. */
  setWatched(add: number[], remove: number[]): boolean;
  /** The ruleset changed: the hooks backend's probes move (applied after the frames queued before). */
  setNetfilter(attachments: NetfilterAttachment[]): Promise<{ error: string }>;
  /** While JS's own output is backed up: stop reading the ring (the kernel counts the loss). */
  setPaused(paused: boolean): void;
}

export interface NativeAddon {
  TraceSession: new (onBatch: (batch: Buffer) => void, onError: (err: Error) => void) => NativeSession;
  probeKernel(): ProbeResult[];
  dropReasons(): string[];
  encodeBatch(rawEvents: Buffer, lost: number, sequence: number): Buffer;
  /** The classic BPF program as [code, jt, jf, k] rows; throws with code BAD_FILTER and libpcap's message. */
  compileFilter(expression: string): [number, number, number, number][];
  eventSize: number;
  /** bpf/events.h as compiled: each field's offset and size, and the decision codes. */
  eventLayout: EventLayout;
  /** The nsid the netns at fromPath ('' = ours) gives each netns file in targets; -1 where none. */
  netnsIds(fromPath: string, targets: string[]): number[];
  /** Calls onChange (coalesced) on netlink notifications of the netns at path ('' = ours):
   * its links (default), or its nftables ruleset. */
  LinkMonitor: new (netnsPath: string, onChange: () => void, topic?: 'links' | 'nftables') => { stop(): void };
  /** --rules: nf_tables' rule tracer inside the netns at path (see native/rule_tracer.h). */
  RuleTracer: new (netnsPath: string, onBatch: (batch: Buffer) => void) => unknown;
  /** The netfilter hook table of the netns at path ('' = ours), read from the kernel. */
  hookTable(path: string): { entries: unknown[]; truncated: boolean };
  /** The netns's links over netlink, asked from a thread inside it ('' = ours). */
  linksIn(path: string): { ifindex: number; name: string; kind?: string; master?: number; mac?: string; link?: number; linkNetnsid?: number }[];
  /** The netns's main routing table over netlink ('' = ours). */
  routesIn(path: string): { family: 4 | 6; dst: Uint8Array | null; dstLen: number; oif: number; gateway: Uint8Array | null }[];
  /** Every bridge port of the netns with its settings and VLANs, and the forwarding database. */
  bridgePortsIn(path: string): {
    ports: { ifindex: number; operstate: string; state: string; hairpin: boolean; learning: boolean; flood: boolean;
      vlans: { vlan: number; flags: string[] }[] }[];
    fdb: { ifindex: number; mac: string; vlan?: number; flags: string[]; state?: string; master?: number }[];
  };
  /** A file read from a thread inside the netns (its sysctls). */
  readFileIn(path: string, file: string): string;
}

/** The checkout: the same from src/ (tests) and dist/src/ (the installed CLI). */
export function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new BnError('INTERNAL', `no package.json above ${__dirname}`, 70);
    dir = parent;
  }
  return dir;
}
const CANDIDATES = ['build/Release/bpftrace_net.node', 'build/Debug/bpftrace_net.node'];

let addon: NativeAddon | undefined;

/** The native addon, built by `npm run build:native` (cmake-js). */
export function native(): NativeAddon {
  if (addon) return addon;
  for (const candidate of CANDIDATES) {
    const file = path.join(projectRoot(), candidate);
    if (fs.existsSync(file)) {
      addon = require(file) as NativeAddon;
      return addon;
    }
  }
  throw new BnError('NATIVE_MISSING', `the native addon is not built (looked for ${CANDIDATES.join(', ')}): run npm run build`);
}

export interface EventLayout {
  size: number;
  fields: Record<string, { offset: number; size: number }>;
  bridgeDecision: { forward: number; flood: number; local: number };
  routeDecision: { forward: number; local: number };
}
