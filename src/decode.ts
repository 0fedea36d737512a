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
  /** TCP header flags byte. */
  tcpFlags: number;
  /** 0x8100, 0x88a8; 0: untagged. */
  vlanProto: number;
  /** The 802.1Q tag: priority, DEI, VLAN id. */
  vlanTci: number;
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

/** A uint64 as protobufjs hands it over: a number, or a Long where it would not fit. */
export type Uint64 = number | { low: number; high: number; toNumber(): number } | null | undefined;

export function toNumber(v: Uint64): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function toBigInt(v: Uint64): bigint {
  if (v == null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

/** Batch bytes, live or from a trace file, through the wire decoder (src/wire.ts). */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  try {
    return decodeBatchWire(bytes);
  } catch (err) {
    throw new BnError('CORRUPT_BATCH', `cannot decode an event batch: ${(err as Error).message}`);
  }
}

/** Where a packet leaves the traced bridge's world: freed, or handed to any device other
 * than the bridge itself (a port, an uplink). The correlator closes a packet there; the
 * model reads its end there. */
export function isEndEvent(e: KernelEvent, bridge: { netns: number; bridgeIfindex: number }): boolean {
  if (e.kind === EventKind.DROP || e.kind === EventKind.CONSUME) return true;
  return e.kind === EventKind.TX && !(e.ifindex === bridge.bridgeIfindex && e.netns === bridge.netns);
}
