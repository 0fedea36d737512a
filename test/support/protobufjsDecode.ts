/** The reference the hand-written wire decoder (src/wire.ts) is checked
 * against: protobufjs's decoded Batch mapped field by field onto KernelEvent. */
import { DecodedBatch, KernelEvent, PacketHeaders, toBigInt, toNumber, Uint64 } from '../../src/decode';
import { bpftrace_net as pb } from '../../src/gen/bpftrace_net';

const EMPTY = new Uint8Array(0);

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
    tcpFlags: p?.tcpFlags ?? 0,
    vlanProto: p?.vlanProto ?? 0,
    vlanTci: p?.vlanTci ?? 0,
  };
}

function toKernelEvent(e: pb.IEvent): KernelEvent {
  const signature = toBigInt(e.pathSignature as Uint64);
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
    pathSignature: signature ? signature.toString(16).padStart(16, '0') : '',
  };
}

export function decodeWithProtobufjs(bytes: Uint8Array): DecodedBatch {
  const batch = pb.Batch.decode(bytes);
  return {
    events: batch.events.map(toKernelEvent),
    lost: toNumber(batch.lost as Uint64),
    sequence: toNumber(batch.sequence as Uint64),
  };
}
