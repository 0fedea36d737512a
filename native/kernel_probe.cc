#include "kernel_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "errors.h"
#include "libbpf_log.h"
#include "netfilter_link.h"
#include "probe.skel.h"

namespace {

constexpr uint32_t kNfprotoIpv4 = 2;
constexpr uint32_t kNfInetPreRouting = 0;

std::string Failure(const std::string& step, int err) {
  std::string text = step + ": " + ErrnoText(err);
  std::string libbpf = LastLibbpfWarning();
  return libbpf.empty() ? text : text + " [libbpf: " + libbpf + "]";
}

// Loads exactly one program of the probe object, then runs `attach` on it.
ProbeResult TryProgram(const std::string& name, const char* program,
                       const std::function<int(bpf_program*)>& attach, int prog_type = 0,
                       int attach_type = -1) {
  ProbeResult result{name, false, ""};
  ClearLibbpfWarning();
  probe_bpf* skel = probe_bpf__open();
  if (!skel) {
    result.detail = Failure("open", errno);
    return result;
  }
  bpf_program* target = bpf_object__find_program_by_name(skel->obj, program);
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, prog == target);
  if (prog_type) bpf_program__set_type(target, static_cast<bpf_prog_type>(prog_type));
  if (attach_type >= 0) bpf_program__set_expected_attach_type(target, static_cast<bpf_attach_type>(attach_type));
  int err = probe_bpf__load(skel);
  if (err) {
    result.detail = Failure("load", err);
  } else {
    err = attach(target);
    result.ok = err == 0;
    result.detail = result.ok ? "loaded and attached" : Failure("attach", err);
  }
  probe_bpf__destroy(skel);
  return result;
}

int AttachAndRelease(bpf_program* prog) {
  bpf_link* link = bpf_program__attach(prog);
  if (!link) return -errno;
  bpf_link__destroy(link);
  return 0;
}

// Runs fn in a thread of its own inside a fresh, empty netns, so probing an
// attachment never touches the netns the user lives in.
int InScratchNetns(const std::function<int()>& fn) {
  int result = 0;
  std::thread worker([&] {
    if (unshare(CLONE_NEWNET)) {
      result = -errno;
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

int AttachNetfilterInScratchNetns(bpf_program* prog) {
  return InScratchNetns([prog] {
    int fd = CreateNetfilterLink(bpf_program__fd(prog), kNfprotoIpv4, kNfInetPreRouting, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
  });
}

int AttachTcInScratchNetns(bpf_program* prog) {
  return InScratchNetns([prog] {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(if_nametoindex("lo")), .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog));
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) return err;
    err = bpf_tc_attach(&hook, &opts);
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
    return err;
  });
}

ProbeResult ProbeBtf() {
  ProbeResult result{"btf", false, ""};
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) {
    result.detail = Failure("/sys/kernel/btf/vmlinux", errno);
    return result;
  }
  result.ok = true;
  result.detail = std::to_string(btf__type_cnt(vmlinux)) + " types in /sys/kernel/btf/vmlinux";
  btf__free(vmlinux);
  return result;
}

ProbeResult ProbeRingbuf() {
  ProbeResult result{"ringbuf", false, ""};
  int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "probe_ringbuf", 0, 0, 4096, nullptr);
  result.ok = fd >= 0;
  result.detail = result.ok ? "created a 4 KiB ring buffer" : Failure("create", errno);
  if (fd >= 0) close(fd);
  return result;
}

}  // namespace

std::vector<ProbeResult> ProbeKernel() {
  InstallLibbpfLog();
  std::vector<ProbeResult> results;
  results.push_back(ProbeBtf());
  results.push_back(ProbeRingbuf());
  results.push_back(TryProgram("tp_btf", "probe_tp_btf", AttachAndRelease));
  results.push_back(TryProgram("fentry", "probe_fentry_nf_hook_slow", AttachAndRelease));
  results.push_back(TryProgram("fentry_bridge", "probe_fentry_br_handle_frame", AttachAndRelease));
  results.push_back(TryProgram("kprobe", "probe_kprobe_nf_hook_slow", AttachAndRelease));
  results.push_back(TryProgram("netfilter_link", "probe_netfilter", AttachNetfilterInScratchNetns,
                               kBpfProgTypeNetfilter, kBpfAttachNetfilter));
  results.push_back(TryProgram("tc", "probe_tc", AttachTcInScratchNetns));
  return results;
}

std::vector<std::string> KernelDropReasons() {
  std::vector<std::string> names;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return names;
  int id = btf__find_by_name_kind(vmlinux, "skb_drop_reason", BTF_KIND_ENUM);
  if (id > 0) {
    const btf_type* type = btf__type_by_id(vmlinux, id);
    const struct btf_enum* values = btf_enum(type);
    for (int i = 0; i < btf_vlen(type); i++) {
      uint32_t value = static_cast<uint32_t>(values[i].val);
      if (value > 4096) continue;
      if (names.size() <= value) names.resize(value + 1);
      names[value] = btf__name_by_offset(vmlinux, values[i].name_off);
    }
  }
  btf__free(vmlinux);
  return names;
}
