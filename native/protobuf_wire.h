// Protocol-buffer wire format, the few primitives the native side writes by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wire {

enum WireType { kVarint = 0, kLengthDelimited = 2 };

inline void PutVarint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

inline void PutTag(std::vector<uint8_t>& out, int field, WireType type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | type);
}

// proto3: a zero scalar is the default and is not written.
inline void PutUint(std::vector<uint8_t>& out, int field, uint64_t v) {
  if (v == 0) return;
  PutTag(out, field, kVarint);
  PutVarint(out, v);
}

inline void PutBytes(std::vector<uint8_t>& out, int field, const uint8_t* data, size_t len) {
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, len);
  out.insert(out.end(), data, data + len);
}

}  // namespace wire
