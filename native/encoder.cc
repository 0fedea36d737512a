#include "encoder.h"

#include <cstring>

#include "protobuf_wire.h"

namespace {

// Field numbers of proto/bpftrace_net.proto.
enum BatchField { kBatchEvents = 1, kBatchLost = 2, kBatchSequence = 3 };
enum EventField {
  kTs = 1, kPacketId, kSeq, kKind, kCpu, kNetns, kIfindex, kInIfindex, kOutIfindex,
  kPhysinIfindex, kPhysoutIfindex, kNfFamily, kNfHook, kNfSlot, kAux, kReason, kMark, kSkb, kPacket,
  kVerdict, kDetail, kTable, kChain, kPriorities, kData, kWireLen, kDataFromMac, kPathSignature
};
enum PacketField {
  kEthertype = 1, kIpVersion, kSaddr, kDaddr, kL4proto, kSport, kDport, kTtl, kIpLen,
  kIcmpType, kIcmpCode, kSmac, kDmac, kCtState, kTcpFlags, kVlanProto, kVlanTci
};
using wire::PutBytes;
using wire::PutUint;
using wire::PutVarint;

constexpr size_t kIPv4Len = 4, kIPv6Len = 16, kMacLen = 6;

uint32_t ZigZag(int32_t v) { return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31); }

// zigzag: small negative errnos stay small
void PutSint(std::vector<uint8_t>& out, int field, int32_t v) { PutUint(out, field, ZigZag(v)); }

// repeated sint32, packed: one length-delimited run of zigzag varints.
void PutPriorities(std::vector<uint8_t>& out, const int32_t* values, size_t n) {
  if (n == 0) return;
  std::vector<uint8_t> packed;
  for (size_t i = 0; i < n; i++) PutVarint(packed, ZigZag(values[i]));
  PutBytes(out, kPriorities, packed.data(), packed.size());
}

// A fixed-size, possibly unterminated C string from the kernel.
void PutString(std::vector<uint8_t>& out, int field, const char* s, size_t max) {
  size_t len = strnlen(s, max);
  if (len) PutBytes(out, field, reinterpret_cast<const uint8_t*>(s), len);
}

void PutMessage(std::vector<uint8_t>& out, int field, const std::vector<uint8_t>& body) {
  PutBytes(out, field, body.data(), body.size());
}

void EncodePacket(std::vector<uint8_t>& out, const bn_packet& p) {
  PutUint(out, kEthertype, p.ethertype);
  PutUint(out, kIpVersion, p.ip_version);
  bool has_addresses = p.ip_version != 0 || p.ethertype == 0x0806;
  if (has_addresses) {
    size_t len = p.ip_version == 6 ? kIPv6Len : kIPv4Len;
    PutBytes(out, kSaddr, p.saddr, len);
    PutBytes(out, kDaddr, p.daddr, len);
  }
  PutUint(out, kL4proto, p.l4proto);
  PutUint(out, kSport, p.sport);
  PutUint(out, kDport, p.dport);
  PutUint(out, kTtl, p.ttl);
  PutUint(out, kIpLen, p.ip_len);
  PutUint(out, kIcmpType, p.icmp_type);
  PutUint(out, kIcmpCode, p.icmp_code);
  PutUint(out, kCtState, p.ct_state);
  PutUint(out, kTcpFlags, p.tcp_flags);
  PutUint(out, kVlanProto, p.vlan_proto);
  PutUint(out, kVlanTci, p.vlan_tci);
  if (p.has_mac) {
    PutBytes(out, kSmac, p.smac, kMacLen);
    PutBytes(out, kDmac, p.dmac, kMacLen);
  }
}

}  // namespace

void BatchEncoder::Append(const bn_event& e, const bn_snap* snap, uint64_t signature) {
  std::vector<uint8_t>& body = scratch_;
  body.clear();
  PutUint(body, kTs, e.ts);
  PutUint(body, kPacketId, e.packet_id);
  PutUint(body, kSeq, e.seq);
  PutUint(body, kKind, e.kind);
  PutUint(body, kCpu, e.cpu);
  PutUint(body, kNetns, e.netns);
  PutUint(body, kIfindex, e.ifindex);
  PutUint(body, kInIfindex, e.in_ifindex);
  PutUint(body, kOutIfindex, e.out_ifindex);
  PutUint(body, kPhysinIfindex, e.physin_ifindex);
  PutUint(body, kPhysoutIfindex, e.physout_ifindex);
  PutUint(body, kNfFamily, e.nf_family);
  PutUint(body, kNfHook, e.nf_hook);
  PutUint(body, kNfSlot, e.nf_slot);
  PutUint(body, kAux, e.aux);
  PutUint(body, kReason, e.reason);
  PutUint(body, kMark, e.mark);
  PutUint(body, kSkb, e.skb);
  PutSint(body, kVerdict, e.verdict);
  PutUint(body, kDetail, e.detail);
  PutString(body, kTable, e.table, sizeof(e.table));
  if (e.kind == BN_EV_NF_HOOK_ENTER) {
    PutPriorities(body, e.priorities, e.detail < BN_MAX_PRIORITIES ? e.detail : BN_MAX_PRIORITIES);
  } else {
    PutString(body, kChain, e.chain, sizeof(e.chain));
  }
  // The packet is written even when empty so that every event carries one.
  packet_scratch_.clear();
  EncodePacket(packet_scratch_, e.pkt);
  PutMessage(body, kPacket, packet_scratch_);
  if (snap && snap->wire_len) {
    size_t len = snap->len < BN_SNAP_MAX ? snap->len : BN_SNAP_MAX;
    if (len) PutBytes(body, kData, snap->bytes, len);
    PutUint(body, kWireLen, snap->wire_len);
    PutUint(body, kDataFromMac, snap->from_mac);
  }
  PutUint(body, kPathSignature, signature);

  PutMessage(out_, kBatchEvents, body);
  event_count_++;
}

namespace {
enum RecordField {
  kRecPacketId = 1, kRecSkb, kRecStartTs, kRecNetns, kRecFirstSeq, kRecFlags, kRecSignature, kRecHeaders, kRecNames, kRecHops
};
enum RecordHeaderField { kHdrPacket = 1, kHdrMark, kHdrData, kHdrWireLen, kHdrDataFromMac };
enum RecordBatchField { kRecordBatchRecords = 1, kRecordBatchLost = 2, kRecordBatchSequence = 3 };
}  // namespace

void RecordEncoder::Append(const bn_record& r) {
  body_.clear();
  PutUint(body_, kRecPacketId, r.packet_id);
  PutUint(body_, kRecSkb, r.skb);
  PutUint(body_, kRecStartTs, r.start_ts);
  PutUint(body_, kRecNetns, r.netns);
  PutUint(body_, kRecFirstSeq, r.first_seq);
  PutUint(body_, kRecFlags, r.flags);
  PutUint(body_, kRecSignature, (r.flags & BN_REC_EXEMPLAR) ? r.signature : 0);
  uint32_t headers = r.n_headers < BN_MAX_HEADERS ? r.n_headers : BN_MAX_HEADERS;
  for (uint32_t i = 0; i < headers; i++) {
    const bn_header& h = r.headers[i];
    part_.clear();
    packet_.clear();
    bn_packet p = h.pkt;
    p.ct_state = 0;
    EncodePacket(packet_, p);
    PutMessage(part_, kHdrPacket, packet_);
    PutUint(part_, kHdrMark, h.mark);
    if (h.snap.wire_len) {
      size_t len = h.snap.len < BN_SNAP_MAX ? h.snap.len : BN_SNAP_MAX;
      if (len) PutBytes(part_, kHdrData, h.snap.bytes, len);
      PutUint(part_, kHdrWireLen, h.snap.wire_len);
      PutUint(part_, kHdrDataFromMac, h.snap.from_mac);
    }
    PutMessage(body_, kRecHeaders, part_);
  }
  uint32_t names = r.n_names < BN_MAX_NAMES ? r.n_names : BN_MAX_NAMES;
  for (uint32_t i = 0; i < names; i++) {
    size_t len = BN_NAME_SIZE;
    while (len && r.names[i][len - 1] == 0) len--;
    PutBytes(body_, kRecNames, reinterpret_cast<const uint8_t*>(r.names[i]), len);
  }
  hops_.clear();
  uint32_t hops = r.n_hops < BN_MAX_HOPS ? r.n_hops : BN_MAX_HOPS;
  for (uint32_t i = 0; i < hops; i++) {
    const bn_hop& h = r.hops[i];
    const uint64_t words[] = {
        h.ts_delta, h.ifindex, h.in_ifindex, h.out_ifindex, h.physin_ifindex, h.physout_ifindex, ZigZag(h.verdict), h.reason, h.aux,
        uint64_t{h.kind} | uint64_t{h.nf_family} << 8 | uint64_t{h.nf_hook} << 16 | uint64_t{h.nf_slot} << 24 | uint64_t{h.detail} << 32,
        uint64_t{h.header} | uint64_t{h.ct_state} << 8 | uint64_t{h.cpu} << 16};
    static_assert(sizeof(words) / sizeof(words[0]) == BN_RECORD_HOP_WORDS, "proto's PacketRecord.hops layout");
    for (uint64_t w : words) PutVarint(hops_, w);
  }
  if (!hops_.empty()) PutBytes(body_, kRecHops, hops_.data(), hops_.size());
  PutMessage(out_, kRecordBatchRecords, body_);
  record_count_++;
}

std::vector<uint8_t> RecordEncoder::Finish(uint64_t lost, uint64_t sequence) {
  PutUint(out_, kRecordBatchLost, lost);
  PutUint(out_, kRecordBatchSequence, sequence);
  std::vector<uint8_t> done;
  done.swap(out_);
  record_count_ = 0;
  return done;
}

std::vector<uint8_t> BatchEncoder::Finish(uint64_t lost, uint64_t sequence) {
  PutUint(out_, kBatchLost, lost);
  PutUint(out_, kBatchSequence, sequence);
  std::vector<uint8_t> done;
  done.swap(out_);
  event_count_ = 0;
  return done;
}
