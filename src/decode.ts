/** Batch bytes (proto/bpftrace_net.proto) -> typed kernel events. */
import { bpftrace_net as pb } from './gen/bpftrace_net';
import { BnError } from './errors';
import { decodeBatchWire } from './wire';

export const EventKind = pb.EventKind;

export interface PacketHeaders {
  ethertype: number;
  ipVersion: number;
  saddr: Uint8Array;
  daddr: Uint8Array;
  l4proto: number;
  sport: number;
  dport: number;
  ttl: number;
  ipLen: number;
  icmpType: number;
  icmpCode: number;
  smac: Uint8Array;
  dmac: Uint8Array;
  /** 0: no conntrack entry yet; else ip_conntrack_info + 1. */
  ctState: number;
}

export interface KernelEvent {
  ts: number;
  packetId: number;
  seq: number;
  kind: pb.EventKind;
  cpu: number;
  netns: number;
  ifindex: number;
  inIfindex: number;
  outIfindex: number;
  physinIfindex: number;
  physoutIfindex: number;
  nfFamily: number;
  nfHook: number;
  nfSlot: number;
  aux: bigint;
  reason: number;
  mark: number;
  skb: bigint;
  packet: PacketHeaders;
  verdict: number;
  detail: number;
  table: string;
  chain: string;
  /** NF_HOOK_ENTER: priorities of the hook's entries (detail = count, nfSlot = first to run). */
  priorities: number[];
  /** The packet's first bytes at this hop (--snaplen), its whole length, and where they start. */
  data: Uint8Array;
  wireLen: number;
  dataFromMac: boolean;
  /** top mode: the path this packet hashes to (16 hex digits), on exemplars; '' otherwise. */
  pathSignature: string;
}

export interface DecodedBatch {
  events: KernelEvent[];
  lost: number;
  sequence: number;
}

type Uint64 = number | { low: number; high: number; toNumber(): number };
const EMPTY = new Uint8Array(0);

function toNumber(v: Uint64 | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function toBigInt(v: Uint64 | null | undefined): bigint {
  if (v == null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

function toPacket(p: pb.IPacket | null | undefined): PacketHeaders {
  return {
    ethertype: p?.ethertype ?? 0,
    ipVersion: p?.ipVersion ?? 0,
    saddr: p?.saddr ?? EMPTY,
    daddr: p?.daddr ?? EMPTY,
    l4proto: p?.l4proto ?? 0,
    sport: p?.sport ?? 0,
    dport: p?.dport ?? 0,
    ttl: p?.ttl ?? 0,
    ipLen: p?.ipLen ?? 0,
    icmpType: p?.icmpType ?? 0,
    icmpCode: p?.icmpCode ?? 0,
    smac: p?.smac ?? EMPTY,
    dmac: p?.dmac ?? EMPTY,
    ctState: p?.ctState ?? 0,
  };
}

export function toKernelEvent(e: pb.IEvent): KernelEvent {
  return {
    ts: toNumber(e.ts as Uint64),
    packetId: toNumber(e.packetId as Uint64),
    seq: e.seq ?? 0,
    kind: e.kind ?? pb.EventKind.EVENT_KIND_UNSPECIFIED,
    cpu: e.cpu ?? 0,
    netns: e.netns ?? 0,
    ifindex: e.ifindex ?? 0,
    inIfindex: e.inIfindex ?? 0,
    outIfindex: e.outIfindex ?? 0,
    physinIfindex: e.physinIfindex ?? 0,
    physoutIfindex: e.physoutIfindex ?? 0,
    nfFamily: e.nfFamily ?? 0,
    nfHook: e.nfHook ?? 0,
    nfSlot: e.nfSlot ?? 0,
    aux: toBigInt(e.aux as Uint64),
    reason: e.reason ?? 0,
    mark: e.mark ?? 0,
    skb: toBigInt(e.skb as Uint64),
    packet: toPacket(e.packet),
    verdict: e.verdict ?? 0,
    detail: e.detail ?? 0,
    table: e.table ?? '',
    chain: e.chain ?? '',
    priorities: e.priorities ?? [],
    data: e.data ?? EMPTY,
    wireLen: e.wireLen ?? 0,
    dataFromMac: e.dataFromMac ?? false,
    pathSignature: toBigInt(e.pathSignature as Uint64) ? toBigInt(e.pathSignature as Uint64).toString(16).padStart(16, '0') : '',
  };
}

export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  try {
    return decodeBatchWire(bytes);
  } catch (err) {
    throw new BnError('CORRUPT_BATCH', `cannot decode an event batch: ${(err as Error).message}`);
  }
}

/** A batch protobufjs already decoded (a trace file's frame). */
export function fromBatch(batch: pb.IBatch): DecodedBatch {
  return {
    events: (batch.events ?? []).map(toKernelEvent),
    lost: toNumber(batch.lost as Uint64),
    sequence: toNumber(batch.sequence as Uint64),
  };
}
