// Limits shared by the two halves of TraceSession: the JS class
// (trace_session.cc) and its reader thread (session_reader.cc).
#pragma once

#include <chrono>
#include <cstddef>

namespace session_limits {

// The kernel batches wakeups; this is the longest a lone packet waits.
constexpr int kPollTimeoutMs = 50;
constexpr size_t kMaxEventsPerBatch = 4096;
constexpr int kBatchFull = -1000;  // returned by the ring callback to end a wakeup early
constexpr size_t kQueuedBatches = 16;
constexpr auto kLostReadInterval = std::chrono::milliseconds(100);

}  // namespace session_limits
