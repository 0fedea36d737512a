#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

thread_local std::string last_warning;

// BPFTRACE_NET_DEBUG=1 passes libbpf's own log (verifier output included) to stderr.
const bool kDebug = getenv("BPFTRACE_NET_DEBUG") != nullptr;

int KeepWarnings(enum libbpf_print_level level, const char* format, va_list args) {
  if (kDebug) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, format, copy);
    va_end(copy);
  }
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const std::string prefix = "libbpf: ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  if (!text.empty()) last_warning = text;
  return 0;
}

}  // namespace

void InstallLibbpfLog() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(KeepWarnings); });
}

std::string LastLibbpfWarning() { return last_warning; }
void ClearLibbpfWarning() { last_warning.clear(); }
