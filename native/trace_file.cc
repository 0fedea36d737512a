#include "trace_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "protobuf_wire.h"

TraceFileWriter::~TraceFileWriter() { Close(); }

std::string TraceFileWriter::Adopt(int fd) {
  fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) return std::string("cannot use the trace file: ") + strerror(errno);
  return "";
}

void TraceFileWriter::Switch(int fd) {
  Close();
  fd_ = fd;
}

bool TraceFileWriter::WriteAll(const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      last_errno_ = n < 0 ? errno : EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  bytes_written_ += bytes.size();
  return true;
}

bool TraceFileWriter::WriteFrame(TraceFrameField field, const std::vector<uint8_t>& body) {
  if (fd_ < 0) return false;
  std::vector<uint8_t> frame;
  frame.reserve(body.size() + 16);
  wire::PutBytes(frame, field, body.data(), body.size());
  std::vector<uint8_t> out;
  out.reserve(frame.size() + 8);
  wire::PutVarint(out, frame.size());
  out.insert(out.end(), frame.begin(), frame.end());
  return WriteAll(out);
}

bool TraceFileWriter::WriteEncodedFrame(const std::vector<uint8_t>& frame) {
  if (fd_ < 0) return false;
  std::vector<uint8_t> out;
  wire::PutVarint(out, frame.size());
  out.insert(out.end(), frame.begin(), frame.end());
  return WriteAll(out);
}

void TraceFileWriter::Close() {
  if (fd_ >= 0) {
    fsync(fd_);
    close(fd_);
  }
  fd_ = -1;
}

std::vector<uint8_t> TraceFileWriter::LossCounters(uint64_t lost, const std::vector<uint64_t>& per_cpu,
                                                   uint64_t at_unix_ns) {
  std::vector<uint8_t> body, packed;
  wire::PutUint(body, 1, lost);
  for (uint64_t n : per_cpu) wire::PutVarint(packed, n);
  if (!packed.empty()) wire::PutBytes(body, 2, packed.data(), packed.size());
  wire::PutUint(body, 3, at_unix_ns);
  return body;
}
