// Packets and top modes: one kernel bn_record per packet (or per full record)
// is unfolded back into the bn_events the events mode would have sent, so
// every mode feeds one encoder and one model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

extern "C" {
#include "events.h"
}

using HopSink = std::function<void(const bn_event& event, const bn_snap* snap, uint64_t signature)>;

// A record as the kernel sends it (BN_WIRE_RECORD in bpf/events.h) back into a
// whole struct; false when the bytes are not a whole record.
bool ExpandRecord(const void* data, size_t size, bn_record* record);

// The other way: a record read from a map (at stop) as the kernel would send it.
void CompactRecord(const bn_record& record, std::vector<uint8_t>* out);

// Its hops as the events the events mode would have sent.
void UnfoldRecord(const bn_record& record, const HopSink& sink);
