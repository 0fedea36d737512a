// The reader thread's side of a trace file (proto/bpftrace_net.proto,
// TraceFrame): batches and loss counters are appended as they come, with no
// per-event work in JavaScript. The header and trailer are written by JS
// before start and after stop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

enum TraceFrameField { kFrameHeader = 1, kFrameBatch = 2, kFrameLoss = 3, kFrameSymbols = 4, kFrameTrailer = 5 };

class TraceFileWriter {
 public:
  ~TraceFileWriter();
  // Appends to an existing file (its header already written). Returns "" or why not.
  std::string Open(const std::string& path);
  bool is_open() const { return fd_ >= 0; }
  // One length-prefixed TraceFrame holding `body` as field `field`.
  bool WriteFrame(TraceFrameField field, const std::vector<uint8_t>& body);
  // A TraceFrame already encoded by JS, written as is with its length prefix.
  bool WriteEncodedFrame(const std::vector<uint8_t>& frame);
  void Close();
  uint64_t bytes_written() const { return bytes_written_; }
  int last_errno() const { return last_errno_; }

  static std::vector<uint8_t> LossCounters(uint64_t lost, const std::vector<uint64_t>& per_cpu, uint64_t at_unix_ns);

 private:
  bool WriteAll(const std::vector<uint8_t>& bytes);
  int fd_ = -1;
  uint64_t bytes_written_ = 0;
  int last_errno_ = 0;
};
