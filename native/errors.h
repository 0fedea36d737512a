// Errors that cross into JS carry a stable `code` (see src/errors.ts).
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

struct TraceError {
  std::string code;
  std::string message;
};

inline std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  return std::string(strerror(err)) + " (errno " + std::to_string(err) + ")";
}
