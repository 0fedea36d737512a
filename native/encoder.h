// Kernel events -> protobuf Batch bytes (proto/bpftrace_net.proto), written by
// hand into one growing buffer per batch: no message objects per event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" {
#include "events.h"
}

static_assert(sizeof(struct bn_event) == BN_EVENT_SIZE, "bn_event layout changed: update events.h");

// Numbers per hop in PacketRecord.hops (proto/bpftrace_net.proto).
constexpr size_t BN_RECORD_HOP_WORDS = 11;

// Packets mode, for trace files: each kernel record as a PacketRecord, headers once
// and hops as packed words, instead of an Event per hop.
class RecordEncoder {
 public:
  // A whole record as UnfoldRecord accepts it (flags as they should be written).
  void Append(const bn_record& record);
  std::vector<uint8_t> Finish(uint64_t lost, uint64_t sequence);
  size_t record_count() const { return record_count_; }

 private:
  void EncodeHeader(std::vector<uint8_t>& out, const bn_header& h, const bn_header& base, bool own_base);

  std::vector<uint8_t> out_;
  std::vector<uint8_t> body_;
  std::vector<uint8_t> part_;
  std::vector<uint8_t> alt_;
  std::vector<uint8_t> packet_;
  std::vector<uint8_t> hops_;
  size_t record_count_ = 0;
  uint64_t last_packet_id_ = 0, last_skb_ = 0, last_start_ts_ = 0;
  uint32_t last_netns_ = 0;
  // The batch's last records: a record's headers and hops are written as what changed from
  // those in the same place of the latest one that came the same way (its first hop and hop
  // count: a flow's packets take the same path, its replies another), else from the ones
  // before them in their own record.
  static constexpr size_t kBases = 8;
  struct Base {
    uint64_t way = 0;  // first hop's kind and ifindex, hop count; 0: none
    uint32_t headers = 0, hops = 0;
    bn_header header[BN_MAX_HEADERS];
    uint64_t words[BN_MAX_HOPS][BN_RECORD_HOP_WORDS];
  };
  Base bases_[kBases];
  size_t next_base_ = 0;  // bases_[next_base_ - 1] is the latest record (mod kBases)
};

class BatchEncoder {
 public:
  // snap: the packet's bytes at this hop, if captured; signature: top mode's path.
  void Append(const bn_event& event, const bn_snap* snap = nullptr, uint64_t signature = 0);
  // Finishes the batch with its trailer fields and hands over the bytes.
  std::vector<uint8_t> Finish(uint64_t lost, uint64_t sequence);
  size_t event_count() const { return event_count_; }

 private:
  std::vector<uint8_t> out_;
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> packet_scratch_;
  size_t event_count_ = 0;
};
