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
