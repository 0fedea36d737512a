/** Trace files (.bnt): a stream of TraceFrames (proto/bpftrace_net.proto),
 * each preceded by its length as a varint. Header first, trailer last; batches,
 * loss counters and symbol tables between. */
import * as os from 'os';
import type { ContextData } from '../capture/context';
import { toNumber, Uint64 } from '../decode';
import { bpftrace_net as pb } from '../gen/bpftrace_net';
import type { Link } from '../topology/links';
import type { Probe, ProbePlan } from '../model/probes';
import type { HookUser, HookUserKind, TableFamily } from '../model/ruleset';
import type { Family, HookName } from '../model/hooks';
import { ruleKey, type RuleTexts } from '../model/rules';

export const TRACE_MAGIC = 'bpftrace-net trace';
export const TRACE_FORMAT_VERSION = 2;
/** A frame larger than this is corruption, not data (batches stay far below). */
export const MAX_FRAME_BYTES = 256 << 20;

export interface TraceMeta {
  /** --rules: rule-tracer frames follow. */
  rules?: boolean;
  bridge: string;
  netns: string;
  backend: string;
  filter: string;
  snaplen: number;
  mode: string;
  sampleEvery: number;
  command: string;
  toolVersion: string;
  /** ifindexes of the bridge's ports and uplinks, for the interface table's roles. */
  ports: number[];
  uplinks: number[];
}

export interface Roles {
  bridgeIfindex: number;
  ports: number[];
  uplinks: number[];
}

function role(l: Link, roles: Roles): string {
  if (l.ifindex === roles.bridgeIfindex) return 'bridge';
  if (roles.ports.includes(l.ifindex)) return 'port';
  if (roles.uplinks.includes(l.ifindex)) return 'uplink';
  return 'other';
}

/** The interface table of a header or of an InterfaceTable frame. */
export function interfaceRows(links: Link[], roles: Roles): pb.IInterface[] {
  return links.map((l) => ({
    ifindex: l.ifindex, name: l.name, kind: l.kind, role: role(l, roles), master: l.master ?? '', mac: l.mac ?? '',
    peerIfindex: l.peerIfindex ?? 0,
    container: l.container ? { ...l.container, pid: l.container.pid ?? 0 } : undefined,
  }));
}

export function linksFromRows(rows: pb.IInterface[]): Link[] {
  return rows.map((i) => ({
    ifindex: i.ifindex ?? 0, name: i.name ?? '', kind: i.kind ?? '', master: i.master || undefined, mac: i.mac || undefined,
    peerIfindex: i.peerIfindex || undefined,
    container: i.container ? {
      id: i.container.id ?? '', name: i.container.name ?? '', image: i.container.image ?? '',
      runtime: i.container.runtime ?? '', pid: i.container.pid || undefined, netns: i.container.netns ?? '',
    } : undefined,
  }));
}

export function traceHeader(ctx: ContextData, meta: TraceMeta): pb.ITraceHeader {
  return {
    magic: TRACE_MAGIC,
    formatVersion: TRACE_FORMAT_VERSION,
    host: os.hostname(),
    kernelRelease: os.release(),
    backend: meta.backend,
    startTimeUnixNs: Date.now() * 1e6,
    bridge: meta.bridge,
    netns: meta.netns,
    netnsInode: ctx.netns,
    bridgeIfindex: ctx.bridgeIfindex,
    filter: meta.filter,
    snaplen: meta.snaplen,
    mode: meta.mode,
    sampleEvery: meta.sampleEvery,
    interfaces: interfaceRows(ctx.links, { bridgeIfindex: ctx.bridgeIfindex, ports: meta.ports, uplinks: meta.uplinks }),
    monotonicToEpochNs: ctx.epochOffsetNs,
    dropReasons: ctx.dropReasons,
    routes: ctx.routes.map((r) => ({ prefix: r.prefix, dev: r.dev ?? '', via: r.via ?? '' , family: r.family ?? 0 })),
    brNetfilter: {
      known: ctx.brNetfilter.iptables !== undefined,
      iptables: ctx.brNetfilter.iptables ?? false,
      ip6tables: ctx.brNetfilter.ip6tables ?? false,
    },
    toolVersion: meta.toolVersion,
    command: meta.command,
    probes: ctx.probePlans.length ? planToRow(ctx.probePlans[0]) : undefined,
    rules: meta.rules ?? false,
  };
}

function userToRow(u: HookUser): pb.IHookUser {
  return {
    kind: u.kind, priority: u.priority, function: u.function, table: u.table ?? '', chain: u.chain ?? '',
    tableFamily: u.tableFamily ?? '', type: u.type ?? '', policy: u.policy ?? '', handle: u.handle ?? 0,
    chainPriority: u.chainPriority ?? 0, hasChainPriority: u.chainPriority !== undefined,
    natChains: u.natChains?.map(userToRow) ?? [],
  };
}

function userFromRow(r: pb.IHookUser): HookUser {
  const u: HookUser = { kind: (r.kind || 'other') as HookUserKind, priority: r.priority ?? 0, function: r.function ?? '' };
  if (r.table) u.table = r.table;
  if (r.chain) u.chain = r.chain;
  if (r.tableFamily) u.tableFamily = r.tableFamily as TableFamily;
  if (r.type) u.type = r.type;
  if (r.policy) u.policy = r.policy as HookUser['policy'];
  if (r.handle) u.handle = toNumber(r.handle as Uint64);
  if (r.hasChainPriority) u.chainPriority = r.chainPriority ?? 0;
  if (u.kind === 'nat') u.natChains = (r.natChains ?? []).map(userFromRow);
  return u;
}

/** Rule texts as a frame keeps them. */
export function ruleTextRows(texts: RuleTexts): pb.IRuleText[] {
  return [...texts].map(([key, { text, saved }]) => {
    const [family, table, chain, handle] = key.split(' ');
    return { family, table, chain, handle: Number(handle), text, saved };
  });
}

export function ruleTextsFromRows(rows: pb.IRuleText[]): RuleTexts {
  return new Map(rows.map((r) => [ruleKey(r.family ?? '', r.table ?? '', r.chain ?? '', toNumber(r.handle as Uint64)), r.saved ? { text: r.text ?? '', saved: r.saved } : { text: r.text ?? '' }]));
}

/** A probe plan (the hook table and where the probes were) as a trace file keeps it. */
export function planToRow(plan: ProbePlan): pb.IProbePlan {
  return {
    since: plan.since,
    hooks: plan.ruleset.hooks.map((h) => ({ family: h.family, hook: h.hook, users: h.users.map(userToRow) })),
    probes: plan.probes.map((p) => ({
      family: p.family, hook: p.hook, slot: p.slot, priority: p.priority, lastPriority: p.lastPriority,
      atStart: p.after === null, after: p.after ?? 0, covers: p.covers.map(userToRow),
    })),
    truncated: plan.ruleset.truncated ?? false,
    unreadable: plan.ruleset.unreadable ?? '',
  };
}

export function planFromRow(r: pb.IProbePlan): ProbePlan {
  const probes: Probe[] = (r.probes ?? []).map((p) => ({
    family: p.family ?? 0, hook: p.hook ?? 0, slot: p.slot ?? 0, priority: p.priority ?? 0, lastPriority: p.lastPriority ?? 0,
    after: p.atStart ? null : p.after ?? 0, covers: (p.covers ?? []).map(userFromRow),
  }));
  return {
    since: toNumber(r.since as Uint64),
    ruleset: {
      hooks: (r.hooks ?? []).map((h) => ({ family: h.family as Family, hook: h.hook as HookName, users: (h.users ?? []).map(userFromRow) })),
      truncated: r.truncated || undefined,
      unreadable: r.unreadable || undefined,
    },
    probes,
  };
}


export function contextFromHeader(h: pb.ITraceHeader): ContextData {
  const known = h.brNetfilter?.known ?? false;
  return {
    netns: h.netnsInode ?? 0,
    bridgeIfindex: h.bridgeIfindex ?? 0,
    links: linksFromRows(h.interfaces ?? []),
    dropReasons: h.dropReasons ?? [],
    epochOffsetNs: toNumber(h.monotonicToEpochNs as Uint64),
    brNetfilter: {
      iptables: known ? h.brNetfilter?.iptables ?? false : undefined,
      ip6tables: known ? h.brNetfilter?.ip6tables ?? false : undefined,
    },
    routes: (h.routes ?? []).map((r) => ({
      prefix: r.prefix ?? '', dev: r.dev || undefined, via: r.via || undefined,
      family: r.family === 4 || r.family === 6 ? r.family : undefined,
    })),
    probePlans: h.probes ? [planFromRow(h.probes)] : [],
  };
}

/** One frame with its varint length prefix. */
export function encodeFrame(frame: pb.ITraceFrame): Buffer {
  const body = pb.TraceFrame.encode(frame).finish();
  return Buffer.concat([varint(body.length), body]);
}

/** A frame as the native writer takes it: without the length prefix. */
export function encodeFrameBody(frame: pb.ITraceFrame): Buffer {
  return Buffer.from(pb.TraceFrame.encode(frame).finish());
}

export function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}
