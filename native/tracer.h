// One lifecycle for every backend: open -> configure -> load -> attach ->
// poll -> destroy, on the session's reader thread (the netns's thread). Two reads
// also come from the JS thread, under the session's tracer mutex: ReadPaths (top)
// and SetWatched (ports that come and go), both plain map operations. Backends
// differ only in which BPF object is opened and how its programs attach.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend_object.h"
#include "errors.h"
#include "packet_filter.h"

extern "C" {
#include "events.h"
}

struct bpf_object;
struct bpf_program;
struct bpf_link;
struct ring_buffer;

struct NetfilterAttachment {
  uint32_t family;    // NFPROTO_*
  uint32_t hook;      // NF_INET_*
  uint32_t slot;      // which probe of the pool (< BN_PROBE_POOL)
  int32_t priority;
  int32_t last_priority;  // when another program holds `priority`, the latest it may move to
};

struct TracerConfig {
  Backend backend = Backend::kHooks;
  std::string netns_path;  // "" = the netns of the process
  uint32_t netns_inode = 0;
  uint32_t bridge_ifindex = 0;
  std::vector<uint32_t> watched_ifindexes;
  std::vector<NetfilterAttachment> netfilter;  // hooks backend only
  uint32_t ring_bytes = 8u << 20;
  uint32_t max_tracked = 65536;
  std::vector<sock_filter> filter;  // empty: every packet
  uint32_t mark_value = 0, mark_mask = 0;
  uint32_t mode = BN_MODE_EVENTS;   // enum bn_capture_mode
  uint32_t sample_every = 1;
  uint32_t snaplen = 0;
  uint32_t max_assembling = 4096;   // packets and top modes: packets in flight at once
  int trace_fd = -1;                // batches are written to (a dup of) this file, its header already written
  bool deliver_batches = true;      // false: only to the file (record), JS gets stats
  uint32_t max_packets = 0;         // > 0: keep only the first this many packets (record --count)
  bool floor = false;               // the bench's floor: programs at the same places that return at once
};

struct PathCount {
  uint64_t signature;
  uint64_t packets;
  uint64_t bytes;
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
  // Packets not followed because the ring was nearly full (their losses are in the above).
  uint64_t PacketsShed() const;
  // Per packet: events the ring could not take since the last call (and forgets them).
  std::vector<std::pair<uint64_t, uint32_t>> TakePacketLosses();
  // Packets and top modes: hands on_event each record still being assembled
  // (packets that had not ended), marked unfinished. Call after detaching.
  void DrainAssembling();
  // The ruleset changed: attach the probes in `wanted` that are not attached yet
  // and release those no longer wanted. Call from the thread that attached them
  // (it is inside the traced netns).
  bool SetNetfilter(const std::vector<NetfilterAttachment>& wanted, TraceError* error);
  // Ports come and go while tracing: devices whose packets start a traversal.
  bool SetWatched(const std::vector<uint32_t>& add, const std::vector<uint32_t>& remove);
  // Top mode: packets and bytes per path signature, summed over CPUs.
  std::vector<PathCount> ReadPaths() const;
  int paths_fd() const { return paths_fd_; }
  // Releases every attachment; maps and the ring stay readable until Destroy.
  void Detach();
  void Destroy();

  // Returns 0 to continue, or a negative value to end this poll early.
  std::function<int(const void* event, size_t size)> on_event;
  // Programs left out because this kernel lacks their function: one line each.
  std::vector<std::string> notices;

 private:
  std::vector<uint64_t> LostPerCpu(uint32_t what) const;
  bool Fail(TraceError* error, const std::string& code, const std::string& message);
  bool Open(TraceError* error);
  bool Configure(TraceError* error);
  bool SetRodataConfig(TraceError* error);
  bool LeaveOutUntraceable(TraceError* error);
  bool AttachPrograms(TraceError* error);
  bool AttachNetfilter(TraceError* error);
  int AttachProbe(const NetfilterAttachment& a, std::string* error);

  TracerConfig config_;
  BackendObject bpf_;
  std::vector<bpf_link*> links_;
  struct ProbeLink {
    NetfilterAttachment at;
    int fd;
  };
  std::vector<ProbeLink> probe_links_;
  ring_buffer* ring_ = nullptr;
  int lost_map_fd_ = -1;
  int lost_by_packet_fd_ = -1;
  int paths_fd_ = -1;
  int assembly_fd_ = -1;
  int record_here_fd_ = -1;
  int watched_fd_ = -1;
  int compiled_filter_fd_ = -1;  // the raw tracepoint holding the compiled filter
};
