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
using wire::PutTag;
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

// The fields of `p` that differ from `prev` (the record's previous header): those
// that became zero are named in the returned bitmask (bit = field number) instead.
uint32_t EncodePacketDelta(std::vector<uint8_t>& out, const bn_packet& p, const bn_packet& prev) {
  uint32_t cleared = 0;
  auto scalar = [&](int field, uint32_t now, uint32_t before) {
    if (now == before) return;
    if (now) PutUint(out, field, now);
    else cleared |= 1u << field;
  };
  scalar(kEthertype, p.ethertype, prev.ethertype);
  scalar(kIpVersion, p.ip_version, prev.ip_version);
  bool has = p.ip_version != 0 || p.ethertype == 0x0806;
  bool had = prev.ip_version != 0 || prev.ethertype == 0x0806;
  size_t len = p.ip_version == 6 ? kIPv6Len : kIPv4Len;
  size_t was = prev.ip_version == 6 ? kIPv6Len : kIPv4Len;
  if (has && (!had || len != was || memcmp(p.saddr, prev.saddr, len))) PutBytes(out, kSaddr, p.saddr, len);
  if (has && (!had || len != was || memcmp(p.daddr, prev.daddr, len))) PutBytes(out, kDaddr, p.daddr, len);
  if (!has && had) cleared |= 1u << kSaddr | 1u << kDaddr;
  scalar(kL4proto, p.l4proto, prev.l4proto);
  scalar(kSport, p.sport, prev.sport);
  scalar(kDport, p.dport, prev.dport);
  scalar(kTtl, p.ttl, prev.ttl);
  scalar(kIpLen, p.ip_len, prev.ip_len);
  scalar(kIcmpType, p.icmp_type, prev.icmp_type);
  scalar(kIcmpCode, p.icmp_code, prev.icmp_code);
  scalar(kTcpFlags, p.tcp_flags, prev.tcp_flags);
  scalar(kVlanProto, p.vlan_proto, prev.vlan_proto);
  scalar(kVlanTci, p.vlan_tci, prev.vlan_tci);
  if (p.has_mac && (!prev.has_mac || memcmp(p.smac, prev.smac, kMacLen) || memcmp(p.dmac, prev.dmac, kMacLen))) {
    PutBytes(out, kSmac, p.smac, kMacLen);
    PutBytes(out, kDmac, p.dmac, kMacLen);
  }
  if (!p.has_mac && prev.has_mac) cleared |= 1u << kSmac | 1u << kDmac;
  return cleared;
}

// Runs of bytes that differ, as (offset, length, bytes)...: a NAT or a TTL rewrite
// changes a few bytes of the packet. Runs closer than a run's own cost merge.
void PutByteDiff(std::vector<uint8_t>& out, const uint8_t* now, const uint8_t* before, size_t n) {
  constexpr size_t kMergeGap = 3;
  size_t i = 0;
  while (i < n) {
    // Most of the bytes are the same: skip them a word at a time.
    uint64_t a, b;
    if (i + 8 <= n && (memcpy(&a, now + i, 8), memcpy(&b, before + i, 8), a == b)) {
      i += 8;
      continue;
    }
    if (now[i] == before[i]) {
      i++;
      continue;
    }
    size_t end = i + 1, same = 0;
    for (size_t j = end; j < n; j++) {
      if (now[j] != before[j]) {
        end = j + 1;
        same = 0;
      } else if (++same > kMergeGap) {
        break;
      }
    }
    PutVarint(out, i);
    PutVarint(out, end - i);
    out.insert(out.end(), now + i, now + end);
    i = end;
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
  kRecPacketId = 1, kRecSkb, kRecStartTs, kRecNetns, kRecFirstSeq, kRecFlags, kRecSignature, kRecHeaders, kRecNames, kRecHops,
  kRecStartTsDelta, kRecPacketIdDelta, kRecSkbDelta, kRecBase
};
enum RecordHeaderField { kHdrPacket = 1, kHdrMark, kHdrData, kHdrWireLen, kHdrDataFromMac, kHdrCleared, kHdrDataDiff, kHdrOwnBase };
enum RecordBatchField { kRecordBatchRecords = 1, kRecordBatchLost = 2, kRecordBatchSequence = 3 };

int64_t Signed(uint64_t a, uint64_t b) { return static_cast<int64_t>(a - b); }
uint64_t ZigZag64(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
}  // namespace

// One RecordHeader as what changed since `base`.
void RecordEncoder::EncodeHeader(std::vector<uint8_t>& out, const bn_header& h, const bn_header& base, bool own_base) {
  out.clear();
  packet_.clear();
  bn_packet p = h.pkt, before = base.pkt;
  p.ct_state = before.ct_state = 0;
  uint32_t cleared = EncodePacketDelta(packet_, p, before);
  if (!packet_.empty()) PutMessage(out, kHdrPacket, packet_);
  PutUint(out, kHdrCleared, cleared);
  PutUint(out, kHdrMark, h.mark);
  PutUint(out, kHdrOwnBase, own_base);
  if (!h.snap.wire_len) return;
  size_t len = h.snap.len < BN_SNAP_MAX ? h.snap.len : BN_SNAP_MAX;
  if (base.snap.wire_len == h.snap.wire_len && base.snap.len == h.snap.len && base.snap.from_mac == h.snap.from_mac) {
    // Only what changed since the base's bytes.
    packet_.clear();
    PutByteDiff(packet_, h.snap.bytes, base.snap.bytes, len);
    PutBytes(out, kHdrDataDiff, packet_.data(), packet_.size());
  } else {
    if (len) PutBytes(out, kHdrData, h.snap.bytes, len);
    PutUint(out, kHdrWireLen, h.snap.wire_len);
    PutUint(out, kHdrDataFromMac, h.snap.from_mac);
  }
}

void RecordEncoder::Append(const bn_record& r) {
  body_.clear();
  // After a batch's first record: identity, time and netns relative to the record before.
  bool first = record_count_ == 0;
  auto put_delta = [&](int absolute, int delta, uint64_t now, uint64_t before) {
    if (first) {
      PutUint(body_, absolute, now);
    } else if (now != before) {
      PutTag(body_, delta, wire::kVarint);
      PutVarint(body_, ZigZag64(Signed(now, before)));
    }
  };
  put_delta(kRecPacketId, kRecPacketIdDelta, r.packet_id, last_packet_id_);
  put_delta(kRecSkb, kRecSkbDelta, r.skb, last_skb_);
  put_delta(kRecStartTs, kRecStartTsDelta, r.start_ts, last_start_ts_);
  if (first || r.netns != last_netns_) PutUint(body_, kRecNetns, r.netns);
  PutUint(body_, kRecFirstSeq, r.first_seq);
  PutUint(body_, kRecFlags, r.flags);
  PutUint(body_, kRecSignature, (r.flags & BN_REC_EXEMPLAR) ? r.signature : 0);

  uint32_t headers = r.n_headers < BN_MAX_HEADERS ? r.n_headers : BN_MAX_HEADERS;
  uint32_t hops = r.n_hops < BN_MAX_HOPS ? r.n_hops : BN_MAX_HOPS;
  uint64_t way = hops ? (uint64_t{r.hops[0].kind} << 48 | uint64_t{hops} << 40 | r.hops[0].ifindex) + 1 : 0;
  // The latest record that came the same way, as a distance back (1: the one before).
  const Base* like = nullptr;
  // Not the oldest slot: this record's words go there.
  size_t kept = record_count_ < kBases - 1 ? record_count_ : kBases - 1;
  for (size_t back = 1; back <= kept && way; back++) {
    const Base& b = bases_[(next_base_ + kBases - back) % kBases];
    if (b.way == way) {
      like = &b;
      PutUint(body_, kRecBase, back);
      break;
    }
  }
  static const bn_header kNone = {};
  constexpr size_t kSmallHeader = 16;
  for (uint32_t i = 0; i < headers; i++) {
    const bn_header& h = r.headers[i];
    // Two bases to choose from, the smaller wins: the same header of the record that came the
    // same way (another packet of the flow), and this packet's previous header (a NAT or TTL
    // rewrite of it).
    const bn_header* same_place = like && i < like->headers ? &like->header[i] : nullptr;
    const bn_header* own = i ? &r.headers[i - 1] : nullptr;
    EncodeHeader(part_, h, same_place ? *same_place : own ? *own : kNone, false);
    // A change of a few bytes (the next packet of a flow) is as small as the other base could make it.
    if (same_place && own && part_.size() > kSmallHeader) {
      EncodeHeader(alt_, h, *own, true);
      if (alt_.size() < part_.size()) part_.swap(alt_);
    }
    PutMessage(body_, kRecHeaders, part_);
  }
  uint32_t names = r.n_names < BN_MAX_NAMES ? r.n_names : BN_MAX_NAMES;
  for (uint32_t i = 0; i < names; i++) {
    size_t len = BN_NAME_SIZE;
    while (len && r.names[i][len - 1] == 0) len--;
    PutBytes(body_, kRecNames, reinterpret_cast<const uint8_t*>(r.names[i]), len);
  }
  // Each hop: a mask of the words that differ from its base's, then those words. Word 0
  // (time since the previous hop) is always there.
  hops_.clear();
  Base& mine = bases_[next_base_];
  uint64_t (*words)[BN_RECORD_HOP_WORDS] = mine.words;
  static const uint64_t kZeros[BN_RECORD_HOP_WORDS] = {};
  uint32_t prev_ts = 0;
  for (uint32_t i = 0; i < hops; i++) {
    const bn_hop& h = r.hops[i];
    const uint64_t w[] = {
        uint64_t{static_cast<uint32_t>(h.ts_delta - prev_ts)},
        uint64_t{h.kind} | uint64_t{h.nf_family} << 8 | uint64_t{h.nf_hook} << 16 | uint64_t{h.nf_slot} << 24 | uint64_t{h.detail} << 32,
        uint64_t{h.header} | uint64_t{h.ct_state} << 8 | uint64_t{h.cpu} << 16,
        h.ifindex, h.in_ifindex, h.out_ifindex, h.physin_ifindex, h.physout_ifindex, ZigZag(h.verdict), h.reason, h.aux};
    static_assert(sizeof(w) / sizeof(w[0]) == BN_RECORD_HOP_WORDS, "proto's PacketRecord.hops layout");
    memcpy(words[i], w, sizeof(w));
    prev_ts = h.ts_delta;
    const uint64_t* base = like && i < like->hops ? like->words[i] : i ? words[i - 1] : kZeros;
    uint32_t mask = 1;
    for (size_t k = 1; k < BN_RECORD_HOP_WORDS; k++)
      if (w[k] != base[k]) mask |= 1u << k;
    PutVarint(hops_, mask);
    for (size_t k = 0; k < BN_RECORD_HOP_WORDS; k++)
      if (mask & (1u << k)) PutVarint(hops_, w[k]);
  }
  if (!hops_.empty()) PutBytes(body_, kRecHops, hops_.data(), hops_.size());
  PutMessage(out_, kRecordBatchRecords, body_);

  record_count_++;
  last_packet_id_ = r.packet_id;
  last_skb_ = r.skb;
  last_start_ts_ = r.start_ts;
  last_netns_ = r.netns;
  mine.way = way;
  mine.headers = headers;
  memcpy(mine.header, r.headers, sizeof(bn_header) * headers);
  mine.hops = hops;
  next_base_ = (next_base_ + 1) % kBases;
}

namespace {
// A Batch and a RecordBatch end alike: the loss count and sequence (fields 2 and 3), then
// the bytes are handed over and the encoder starts empty.
std::vector<uint8_t> TakeBatch(std::vector<uint8_t>& out, uint64_t lost, uint64_t sequence) {
  static_assert(int{kBatchLost} == int{kRecordBatchLost} && int{kBatchSequence} == int{kRecordBatchSequence}, "one trailer for both");
  PutUint(out, kBatchLost, lost);
  PutUint(out, kBatchSequence, sequence);
  std::vector<uint8_t> done;
  done.swap(out);
  return done;
}
}  // namespace

std::vector<uint8_t> RecordEncoder::Finish(uint64_t lost, uint64_t sequence) {
  record_count_ = 0;
  next_base_ = 0;
  return TakeBatch(out_, lost, sequence);
}

std::vector<uint8_t> BatchEncoder::Finish(uint64_t lost, uint64_t sequence) {
  event_count_ = 0;
  return TakeBatch(out_, lost, sequence);
}
