#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "hooks.skel.h"
#include "libbpf_log.h"
#include "netfilter_link.h"

Tracer::Tracer(TracerConfig config) : config_(std::move(config)) { InstallLibbpfLog(); }

Tracer::~Tracer() { Destroy(); }

bool Tracer::Fail(TraceError* error, const std::string& code, const std::string& message) {
  std::string detail = LastLibbpfWarning();
  error->code = code;
  error->message = detail.empty() ? message : message + " [libbpf: " + detail + "]";
  Destroy();
  return false;
}

// Indexed by enum bn_nf_slot.
std::array<bpf_program*, BN_SLOT_COUNT> Tracer::SlotPrograms() const {
  return {skel_->progs.nf_entry,  skel_->progs.nf_raw,     skel_->progs.nf_conntrack, skel_->progs.nf_mangle,
          skel_->progs.nf_nat_dst, skel_->progs.nf_filter, skel_->progs.nf_security,  skel_->progs.nf_nat_src};
}

bool Tracer::Start(TraceError* error) {
  ClearLibbpfWarning();
  skel_ = hooks_bpf__open();
  if (!skel_) return Fail(error, "BPF_OPEN", "cannot open the BPF object: " + ErrnoText(errno));
  if (!Configure(error)) return false;
  int err = hooks_bpf__load(skel_);
  if (err) return Fail(error, "BPF_LOAD", "the kernel refused the BPF programs: " + ErrnoText(err));

  uint8_t one = 1;
  int watched_fd = bpf_map__fd(skel_->maps.watched_ifindex);
  for (uint32_t ifindex : config_.watched_ifindexes) {
    if (bpf_map_update_elem(watched_fd, &ifindex, &one, BPF_ANY))
      return Fail(error, "BPF_MAP", "cannot fill the interface filter: " + ErrnoText(errno));
  }
  lost_map_fd_ = bpf_map__fd(skel_->maps.lost_events);

  if (!AttachTracepoints(error) || !AttachNetfilter(error)) return false;

  ring_ = ring_buffer__new(
      bpf_map__fd(skel_->maps.events),
      [](void* self, void* data, size_t size) {
        return static_cast<Tracer*>(self)->on_event(data, size);
      },
      this, nullptr);
  if (!ring_) return Fail(error, "BPF_RINGBUF", "cannot map the ring buffer: " + ErrnoText(errno));
  return true;
}

bool Tracer::Configure(TraceError* error) {
  skel_->rodata->target_netns = config_.netns_inode;
  skel_->rodata->bridge_ifindex = config_.bridge_ifindex;
  if (bpf_map__set_max_entries(skel_->maps.events, config_.ring_bytes) ||
      bpf_map__set_max_entries(skel_->maps.tracked, config_.max_tracked))
    return Fail(error, "BPF_CONFIG", "invalid ring buffer or tracking size: " + ErrnoText(errno));

  for (bpf_program* prog : SlotPrograms()) {
    bpf_program__set_type(prog, static_cast<bpf_prog_type>(kBpfProgTypeNetfilter));
    bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kBpfAttachNetfilter));
  }
  return true;
}

bool Tracer::AttachTracepoints(TraceError* error) {
  bpf_program* progs[] = {skel_->progs.on_rx, skel_->progs.on_tx_queue, skel_->progs.on_tx,
                          skel_->progs.on_kfree_skb, skel_->progs.on_consume_skb};
  for (bpf_program* prog : progs) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link)
      return Fail(error, "BPF_ATTACH",
                  std::string("cannot attach ") + bpf_program__section_name(prog) + ": " + ErrnoText(errno));
    links_.push_back(link);
  }
  return true;
}

bool Tracer::AttachNetfilter(TraceError* error) {
  if (!config_.netns_path.empty()) {
    int ns = open(config_.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return Fail(error, "NETNS", "cannot open netns " + config_.netns_path + ": " + ErrnoText(errno));
    int rc = setns(ns, CLONE_NEWNET);
    int err = errno;
    close(ns);
    if (rc) return Fail(error, "NETNS", "cannot enter netns " + config_.netns_path + ": " + ErrnoText(err));
  }
  const std::array<bpf_program*, BN_SLOT_COUNT> slots = SlotPrograms();
  for (const NetfilterAttachment& a : config_.netfilter) {
    if (a.slot >= slots.size()) return Fail(error, "INVALID_ARGUMENT", "unknown netfilter slot " + std::to_string(a.slot));
    int fd = CreateNetfilterLink(bpf_program__fd(slots[a.slot]), a.family, a.hook, a.priority);
    if (fd < 0)
      return Fail(error, "NETFILTER_LINK",
                  "cannot attach a BPF netfilter link (family " + std::to_string(a.family) + ", hook " +
                      std::to_string(a.hook) + ", priority " + std::to_string(a.priority) + "): " + ErrnoText(fd));
    netfilter_link_fds_.push_back(fd);
  }
  return true;
}

int Tracer::Poll(int timeout_ms) { return ring_ ? ring_buffer__poll(ring_, timeout_ms) : -EINVAL; }

std::vector<uint64_t> Tracer::LostEventsPerCpu() const {
  int cpus = libbpf_num_possible_cpus();
  if (lost_map_fd_ < 0 || cpus <= 0) return {};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(lost_map_fd_, &zero, per_cpu.data())) return {};
  return per_cpu;
}

void Tracer::Destroy() {
  // Links first, so nothing fires into a half-torn-down object.
  for (int fd : netfilter_link_fds_) close(fd);
  netfilter_link_fds_.clear();
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  if (skel_) hooks_bpf__destroy(skel_);
  skel_ = nullptr;
  lost_map_fd_ = -1;
}
