// A backend's BPF object through its generated skeleton: the maps, programs
// and settings the tracer uses, by names the compiler checks, in one shape for
// the three backends.
#pragma once

#include <array>

extern "C" {
#include "events.h"
}

struct bpf_object;
struct bpf_map;
struct bpf_program;

enum class Backend { kHooks, kFentry, kKprobe };

struct BackendParts {
  bpf_object* obj = nullptr;
  bn_config* config = nullptr;  // in .rodata: written between open and load
  bpf_map* events = nullptr;
  bpf_map* tracked = nullptr;
  bpf_map* tracked_here = nullptr;  // per CPU: the packet each CPU is working on (bpf/tracking.bpf.h)
  bpf_map* assembly = nullptr;
  bpf_map* record_here = nullptr;  // per CPU: the record of the packet each CPU is working on
  bpf_map* paths = nullptr;
  bpf_map* lost_events = nullptr;
  bpf_map* lost_by_packet = nullptr;
  bpf_map* filter_insns = nullptr;
  bpf_map* filter_verdicts = nullptr;  // what the compiled filter decided (native/filter_compiler.h)
  bpf_map* watched_ifindex = nullptr;
  // The hooks backend's netfilter probes and the body they tail-call; null elsewhere.
  bpf_map* nf_body_prog = nullptr;
  bpf_program* nf_body = nullptr;
  std::array<bpf_program*, BN_PROBE_POOL> nf_probes{};
};

class BackendObject : public BackendParts {
 public:
  BackendObject() = default;
  BackendObject(const BackendObject&) = delete;
  BackendObject& operator=(const BackendObject&) = delete;
  ~BackendObject() { Close(); }

  // Opens the backend's object (not loaded). Returns 0 or -errno.
  int Open(Backend backend);
  // Frees the object and everything loaded from it; links are the caller's.
  void Close();

 private:
  void* skeleton_ = nullptr;
  void (*destroy_)(void*) = nullptr;
};
