// The reader thread's side of a trace file (proto/bpftrace_net.proto,
// TraceFrame): batches and loss counters are appended as they come, with no
// per-event work in JavaScript. JS creates each file (safely, see
// src/output/outputFile.ts) and writes its header before the reader gets it, and
// writes the trailer of the last file after stop; the other frames JS queues.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

// The frame kinds the reader writes itself; JS writes the others (proto/bpftrace_net.proto, TraceFrame).
enum TraceFrameField { kFrameBatch = 2, kFrameLoss = 3, kFrameRecords = 10 };

class TraceFileWriter {
 public:
  ~TraceFileWriter();
  // Writes to a dup of fd (a file JS created, its header written). Returns "" or why not.
  std::string Adopt(int fd);
  // Closes the current file (synced) and goes on in fd, which it now owns.
  void Switch(int fd);
  bool is_open() const { return fd_ >= 0; }
  // One length-prefixed TraceFrame holding `body` as field `field`.
  bool WriteFrame(TraceFrameField field, const std::vector<uint8_t>& body);
  // A TraceFrame already encoded by JS, written as is with its length prefix.
  bool WriteEncodedFrame(const std::vector<uint8_t>& frame);
  // Frames already length-prefixed, as they are.
  bool WriteRaw(const std::vector<uint8_t>& bytes) { return fd_ >= 0 && WriteAll(bytes); }
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
