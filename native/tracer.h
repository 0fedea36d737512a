// One lifecycle for the `hooks` backend: open -> configure -> load -> attach ->
// poll -> destroy, all on the tracer's own thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "errors.h"

extern "C" {
#include "events.h"
}

struct hooks_bpf;
struct bpf_link;
struct ring_buffer;
struct bpf_program;

struct NetfilterAttachment {
  uint32_t family;    // NFPROTO_*
  uint32_t hook;      // NF_INET_*
  uint32_t slot;      // enum bn_nf_slot: which program
  int32_t priority;
};

struct TracerConfig {
  std::string netns_path;  // "" = the netns of the process
  uint32_t netns_inode = 0;
  uint32_t bridge_ifindex = 0;
  std::vector<uint32_t> watched_ifindexes;
  std::vector<NetfilterAttachment> netfilter;
  uint32_t ring_bytes = 8u << 20;
  uint32_t max_tracked = 65536;
};

class Tracer {
 public:
  explicit Tracer(TracerConfig config);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Open, configure, load and attach. On failure returns false and fills *error;
  // everything attached so far is released.
  bool Start(TraceError* error);
  // Waits up to timeout_ms for events, hands each to on_event; returns the
  // number consumed or -errno.
  int Poll(int timeout_ms);
  // Ring-buffer reservations that failed, per possible CPU.
  std::vector<uint64_t> LostEventsPerCpu() const;
  void Destroy();

  // Returns 0 to continue, or a negative value to end this poll early.
  std::function<int(const void* event, size_t size)> on_event;

 private:
  bool Fail(TraceError* error, const std::string& code, const std::string& message);
  bool Configure(TraceError* error);
  bool AttachTracepoints(TraceError* error);
  bool AttachNetfilter(TraceError* error);
  std::array<bpf_program*, BN_SLOT_COUNT> SlotPrograms() const;

  TracerConfig config_;
  hooks_bpf* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  std::vector<int> netfilter_link_fds_;
  ring_buffer* ring_ = nullptr;
  int lost_map_fd_ = -1;
};
