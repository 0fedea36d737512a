// Packets and top modes: one kernel bn_record per packet (or per full record)
// is unfolded back into the bn_events the events mode would have sent, so
// every mode feeds one encoder and one model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

extern "C" {
#include "events.h"
}

using HopSink = std::function<void(const bn_event& event, const bn_snap* snap, uint64_t signature)>;

// The bytes hold a whole record: its fixed part and every hop it names.
bool RecordComplete(const void* data, size_t size);

// Returns false when the bytes are not a whole record (nothing is emitted then).
bool UnfoldRecord(const void* data, size_t size, const HopSink& sink);
