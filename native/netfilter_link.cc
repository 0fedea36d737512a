#include "netfilter_link.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {

// bpf_attr.link_create as of Linux 6.4; the installed uapi header may predate it.
struct LinkCreateNetfilterAttr {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint32_t pf;
  uint32_t hooknum;
  int32_t priority;
  uint32_t netfilter_flags;
  uint8_t rest_of_bpf_attr[112];
};

}  // namespace

int CreateNetfilterLink(int prog_fd, uint32_t pf, uint32_t hook, int32_t priority) {
  LinkCreateNetfilterAttr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = kBpfAttachNetfilter;
  attr.pf = pf;
  attr.hooknum = hook;
  attr.priority = priority;
  long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
  return fd < 0 ? -errno : static_cast<int>(fd);
}
