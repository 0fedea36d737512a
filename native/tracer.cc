#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_set>

#include "filter_compiler.h"
#include "kernel_functions.h"
#include "libbpf_log.h"
#include "netfilter_link.h"
#include "records.h"

namespace {

const char kNetfilterSection[] = "netfilter";
// Probes sit one above an occupied priority; a taken one moves a little later.
constexpr int32_t kPriorityRetries = 16;
// Without this one a function-tracing backend sees no hook at all.
const char kRequiredFunction[] = "nf_hook_slow";

// "fexit/nft_do_chain" -> "nft_do_chain"; "" for sections that name no function.
std::string TracedFunction(const char* section) {
  static const char* const kPrefixes[] = {"fentry/", "fexit/", "kprobe/", "kretprobe/"};
  for (const char* prefix : kPrefixes) {
    size_t n = strlen(prefix);
    if (strncmp(section, prefix, n) == 0) return section + n;
  }
  return "";
}

}  // namespace

Tracer::Tracer(TracerConfig config) : config_(std::move(config)) { InstallLibbpfLog(); }

Tracer::~Tracer() { Destroy(); }

bool Tracer::Fail(TraceError* error, const std::string& code, const std::string& message) {
  std::string detail = LastLibbpfWarning();
  error->code = code;
  error->message = detail.empty() ? message : message + " [libbpf: " + detail + "]";
  Destroy();
  return false;
}

bool Tracer::Start(TraceError* error) {
  ClearLibbpfWarning();
  if (!Open(error) || !Configure(error)) return false;
  int err = bpf_object__load(bpf_.obj);
  if (err) return Fail(error, "BPF_LOAD", "the kernel refused the BPF programs: " + ErrnoText(err));

  watched_fd_ = bpf_map__fd(bpf_.watched_ifindex);
  if (!SetWatched(config_.watched_ifindexes, {}))
    return Fail(error, "BPF_MAP", "cannot fill the interface filter: " + ErrnoText(errno));
  lost_map_fd_ = bpf_map__fd(bpf_.lost_events);
  lost_by_packet_fd_ = bpf_map__fd(bpf_.lost_by_packet);
  paths_fd_ = bpf_map__fd(bpf_.paths);
  assembly_fd_ = bpf_map__fd(bpf_.assembly);
  record_here_fd_ = bpf_map__fd(bpf_.record_here);
  int filter_fd = bpf_map__fd(bpf_.filter_insns);
  for (uint32_t i = 0; i < config_.filter.size(); i++) {
    if (bpf_map_update_elem(filter_fd, &i, &config_.filter[i], BPF_ANY))
      return Fail(error, "BPF_MAP", "cannot load the packet filter: " + ErrnoText(errno));
  }

  // The filter compiled to eBPF goes first on netif_receive_skb, so that on_rx finds its verdict.
  if (!config_.filter.empty() && !getenv("BPFTRACE_NET_FILTER_INTERPRETED")) {
    std::string why;
    compiled_filter_fd_ =
        AttachCompiledFilter(config_.filter, bpf_map__fd(bpf_.filter_verdicts), bpf_map__fd(bpf_.tracked_here),
                             config_.netns_inode, &why);
    if (compiled_filter_fd_ < 0) notices.push_back("the packet filter is interpreted at every packet's start: " + why);
  }

  // The hooks backend's probes tail-call one body (bpf/hooks.bpf.c).
  if (bpf_.nf_body_prog) {
    uint32_t zero = 0;
    int fd = bpf_program__fd(bpf_.nf_body);
    if (bpf_map__update_elem(bpf_.nf_body_prog, &zero, sizeof(zero), &fd, sizeof(fd), BPF_ANY))
      return Fail(error, "BPF_MAP", "cannot link the netfilter probes to their body: " + ErrnoText(errno));
  }
  if (!AttachPrograms(error) || !AttachNetfilter(error)) return false;

  ring_ = ring_buffer__new(
      bpf_map__fd(bpf_.events),
      [](void* self, void* data, size_t size) { return static_cast<Tracer*>(self)->on_event(data, size); }, this,
      nullptr);
  if (!ring_) return Fail(error, "BPF_RINGBUF", "cannot map the ring buffer: " + ErrnoText(errno));
  return true;
}

bool Tracer::Open(TraceError* error) {
  int err = bpf_.Open(config_.backend);
  if (err) return Fail(error, "BPF_OPEN", "cannot open the BPF object: " + ErrnoText(err));
  return true;
}

bool Tracer::Configure(TraceError* error) {
  if (!SetRodataConfig(error)) return false;
  bool assembling = config_.mode != BN_MODE_EVENTS;
  // Maps a mode does not use keep one entry: their memory is preallocated.
  if (bpf_map__set_max_entries(bpf_.events, config_.ring_bytes) ||
      bpf_map__set_max_entries(bpf_.tracked, config_.max_tracked) ||
      bpf_map__set_max_entries(bpf_.assembly, assembling ? config_.max_assembling : 1) ||
      bpf_map__set_max_entries(bpf_.paths, config_.mode == BN_MODE_TOP ? 16384 : 1))
    return Fail(error, "BPF_CONFIG", "invalid ring buffer or tracking size: " + ErrnoText(errno));

  bpf_program* prog;
  bpf_object__for_each_program(prog, bpf_.obj) {
    if (strcmp(bpf_program__section_name(prog), kNetfilterSection) == 0) {
      // libbpf < 1.2 does not know SEC("netfilter"): say what it is.
      bpf_program__set_type(prog, static_cast<bpf_prog_type>(kBpfProgTypeNetfilter));
      bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kBpfAttachNetfilter));
    }
  }
  return LeaveOutUntraceable(error);
}

// The settings live in `const volatile struct bn_config bn_config` (.rodata),
// writable through the skeleton until load.
bool Tracer::SetRodataConfig(TraceError* error) {
  bn_config config = {};
  config.target_netns = config_.netns_inode;
  config.bridge_ifindex = config_.bridge_ifindex;
  config.filter_len = static_cast<uint32_t>(config_.filter.size());
  config.mark_value = config_.mark_value;
  config.mark_mask = config_.mark_mask;
  config.mode = config_.mode;
  config.sample_every = config_.sample_every;
  config.floor = config_.floor ? 1 : 0;
  config.snaplen = config_.snaplen < BN_SNAP_MAX ? config_.snaplen : BN_SNAP_MAX;
  // A wakeup per eighth of the ring: batches for the reader, room to spare for the kernel.
  config.wakeup_bytes = config_.ring_bytes / 8;
  // A new packet is shed whole (counted lost) rather than followed into a ring without room
  // for all of it: the room kept is a packet's worth for those under way (32 events, or two
  // of the largest records), at most a quarter of a small ring.
  uint32_t event_bytes = sizeof(bn_event) + (config.snaplen ? sizeof(bn_snap) : 0) + 8;
  uint32_t kept = config_.mode == BN_MODE_EVENTS ? 32 * event_bytes : 2 * (sizeof(bn_record) + 8);
  if (kept > config_.ring_bytes / 4) kept = config_.ring_bytes / 4;
  config.shed_above = config_.ring_bytes - kept;
  if (!bpf_.config) return Fail(error, "BPF_CONFIG", "the BPF object has no bn_config in .rodata");
  *bpf_.config = config;
  return true;
}

// A function may be inlined, renamed or in a module not loaded here: its
// program is left out with a notice instead of failing the whole run.
bool Tracer::LeaveOutUntraceable(TraceError* error) {
  if (config_.backend == Backend::kHooks) return true;
  const std::unordered_set<std::string> traceable =
      config_.backend == Backend::kFentry ? BtfFunctions() : KallsymsFunctions();
  const char* where = config_.backend == Backend::kFentry ? "BTF" : "/proc/kallsyms";
  std::unordered_set<std::string> reported;
  bpf_program* prog;
  bpf_object__for_each_program(prog, bpf_.obj) {
    std::string function = TracedFunction(bpf_program__section_name(prog));
    if (function.empty() || traceable.count(function)) continue;
    if (function == kRequiredFunction)
      return Fail(error, "KERNEL_FEATURE", function + " is not in this kernel's " + where + ": cannot trace netfilter");
    bpf_program__set_autoload(prog, false);
    if (reported.insert(function).second)
      notices.push_back(function + " is not in this kernel's " + where + " (inlined, renamed or its module not loaded): its events are left out");
  }
  return true;
}

bool Tracer::AttachPrograms(TraceError* error) {
  bpf_program* prog;
  bpf_object__for_each_program(prog, bpf_.obj) {
    if (!bpf_program__autoload(prog) || strcmp(bpf_program__section_name(prog), kNetfilterSection) == 0) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      return Fail(error, "BPF_ATTACH",
                  std::string("cannot attach ") + bpf_program__section_name(prog) + ": " + ErrnoText(errno));
    links_.push_back(link);
  }
  return true;
}

bool Tracer::AttachNetfilter(TraceError* error) {
  // The hooks backend's thread stays in the traced netns: probes move there when the ruleset changes.
  if (config_.backend != Backend::kHooks) return true;
  if (!config_.netns_path.empty()) {
    int ns = open(config_.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return Fail(error, "NETNS", "cannot open netns " + config_.netns_path + ": " + ErrnoText(errno));
    int rc = setns(ns, CLONE_NEWNET);
    int err = errno;
    close(ns);
    if (rc) return Fail(error, "NETNS", "cannot enter netns " + config_.netns_path + ": " + ErrnoText(err));
  }
  for (const NetfilterAttachment& a : config_.netfilter) {
    std::string why;
    int fd = AttachProbe(a, &why);
    if (fd < 0) return Fail(error, fd == -EINVAL ? "INVALID_ARGUMENT" : "NETFILTER_LINK", why);
    probe_links_.push_back({a, fd});
  }
  return true;
}

int Tracer::AttachProbe(const NetfilterAttachment& a, std::string* error) {
  bpf_program* prog = a.slot < BN_PROBE_POOL ? bpf_.nf_probes[a.slot] : nullptr;
  if (!prog) {
    *error = "no netfilter probe " + std::to_string(a.slot) + " (the pool has " + std::to_string(BN_PROBE_POOL) + ")";
    return -EINVAL;
  }
  // The kernel allows one entry per hook and priority: a priority taken by
  // another program (a second tracer) moves this probe a little later, never
  // past the next chain.
  int fd = -EBUSY;
  int32_t last = a.last_priority > a.priority ? a.last_priority : a.priority;
  for (int32_t p = a.priority; p <= last && p - a.priority < kPriorityRetries && fd == -EBUSY; p++)
    fd = CreateNetfilterLink(bpf_program__fd(prog), a.family, a.hook, p);
  if (fd < 0)
    *error = "cannot attach a BPF netfilter link (family " + std::to_string(a.family) + ", hook " + std::to_string(a.hook) +
             ", priority " + std::to_string(a.priority) + "): " + ErrnoText(fd);
  return fd;
}

bool Tracer::SetNetfilter(const std::vector<NetfilterAttachment>& wanted, TraceError* error) {
  auto same = [](const NetfilterAttachment& x, const NetfilterAttachment& y) {
    return x.family == y.family && x.hook == y.hook && x.slot == y.slot && x.priority == y.priority;
  };
  // New probes first, then the old ones go: no moment without a probe.
  std::vector<ProbeLink> kept;
  for (const NetfilterAttachment& a : wanted) {
    auto it = std::find_if(probe_links_.begin(), probe_links_.end(), [&](const ProbeLink& l) { return same(l.at, a); });
    if (it != probe_links_.end()) {
      kept.push_back(*it);
      probe_links_.erase(it);
      continue;
    }
    std::string why;
    int fd = AttachProbe(a, &why);
    if (fd < 0) {
      error->code = "NETFILTER_LINK";
      error->message = why;
      continue;  // the others still go where they belong
    }
    kept.push_back({a, fd});
  }
  for (const ProbeLink& l : probe_links_) close(l.fd);
  probe_links_ = std::move(kept);
  return error->code.empty();
}

// The kernel wakes the reader only once an eighth of the ring is queued, so
// a quiet period ends in a timeout: consume what is there anyway.
int Tracer::Poll(int timeout_ms) {
  if (!ring_) return -EINVAL;
  int n = ring_buffer__poll(ring_, timeout_ms);
  if (n != 0) return n;
  return ring_buffer__consume(ring_);
}

bool Tracer::SetWatched(const std::vector<uint32_t>& add, const std::vector<uint32_t>& remove) {
  if (watched_fd_ < 0) return false;
  uint8_t one = 1;
  for (uint32_t ifindex : add)
    if (bpf_map_update_elem(watched_fd_, &ifindex, &one, BPF_ANY)) return false;
  for (uint32_t ifindex : remove) bpf_map_delete_elem(watched_fd_, &ifindex);
  return true;
}

void Tracer::DrainAssembling() {
  if (assembly_fd_ < 0 || config_.mode != BN_MODE_PACKETS) return;
  std::vector<uint64_t> keys;
  uint64_t key = 0, next = 0;
  uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(assembly_fd_, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  // Sent as the kernel sends records, so that one reader reads both.
  std::vector<uint8_t> wire;
  auto send = [&](bn_record& record) {
    record.flags |= BN_REC_UNFINISHED;
    CompactRecord(record, &wire);
    on_event(wire.data(), wire.size());
  };
  auto record = std::make_unique<bn_record>();
  for (uint64_t k : keys) {
    if (bpf_map_lookup_elem(assembly_fd_, &k, record.get()) == 0) send(*record);
  }
  // And the record each CPU was working on (bpf/assembly.bpf.h's record_here).
  int cpus = libbpf_num_possible_cpus();
  if (record_here_fd_ < 0 || cpus <= 0) return;
  const size_t stride = (sizeof(bn_record_slot) + 7) & ~size_t{7};
  std::vector<uint8_t> values(stride * static_cast<size_t>(cpus));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(record_here_fd_, &zero, values.data())) return;
  for (int cpu = 0; cpu < cpus; cpu++) {
    bn_record_slot slot;
    memcpy(&slot, values.data() + stride * static_cast<size_t>(cpu), sizeof(slot));
    if (slot.skb) send(slot.r);
  }
}

std::vector<PathCount> Tracer::ReadPaths() const {
  std::vector<PathCount> out;
  int cpus = libbpf_num_possible_cpus();
  if (paths_fd_ < 0 || cpus <= 0) return out;
  std::vector<bn_path_count> per_cpu(static_cast<size_t>(cpus));
  uint64_t key = 0, next = 0;
  uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(paths_fd_, prev, &next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map_lookup_elem(paths_fd_, &key, per_cpu.data())) continue;
    PathCount c{key, 0, 0};
    for (const bn_path_count& p : per_cpu) {
      c.packets += p.packets;
      c.bytes += p.bytes;
    }
    out.push_back(c);
  }
  return out;
}

std::vector<uint64_t> Tracer::LostPerCpu(uint32_t what) const {
  int cpus = libbpf_num_possible_cpus();
  if (lost_map_fd_ < 0 || cpus <= 0) return {};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(lost_map_fd_, &what, per_cpu.data())) return {};
  return per_cpu;
}

std::vector<uint64_t> Tracer::LostEventsPerCpu() const { return LostPerCpu(BN_LOST_EVENTS); }

uint64_t Tracer::PacketsShed() const {
  uint64_t total = 0;
  for (uint64_t n : LostPerCpu(BN_LOST_SHED)) total += n;
  return total;
}

std::vector<std::pair<uint64_t, uint32_t>> Tracer::TakePacketLosses() {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  if (lost_by_packet_fd_ < 0) return out;
  uint64_t key, next;
  uint64_t* prev = nullptr;
  std::vector<uint64_t> keys;
  while (keys.size() < 8192 && bpf_map_get_next_key(lost_by_packet_fd_, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint64_t k : keys) {
    uint32_t n = 0;
    // Read, then delete: a loss counted in between is missed for that packet only (the
    // global count and its sequence gap still have it).
    if (bpf_map_lookup_elem(lost_by_packet_fd_, &k, &n) == 0 && n) out.emplace_back(k, n);
    bpf_map_delete_elem(lost_by_packet_fd_, &k);
  }
  return out;
}

void Tracer::Detach() {
  for (const ProbeLink& l : probe_links_) close(l.fd);
  probe_links_.clear();
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
  if (compiled_filter_fd_ >= 0) close(compiled_filter_fd_);
  compiled_filter_fd_ = -1;
}

void Tracer::Destroy() {
  // Links first, so nothing fires into a half-torn-down object.
  Detach();
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  bpf_.Close();
  lost_map_fd_ = paths_fd_ = assembly_fd_ = record_here_fd_ = watched_fd_ = -1;
}
