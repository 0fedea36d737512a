// BPF netfilter links (Linux 6.4+). Debian 12's libbpf (1.1) has no helper for
// them, so the link is created with a raw bpf(BPF_LINK_CREATE); it attaches in
// the netns of the calling thread and is released when its fd closes.
#pragma once

#include <cstdint>

constexpr int kBpfProgTypeNetfilter = 32;
constexpr int kBpfAttachNetfilter = 45;

// Returns the link fd, or -errno.
int CreateNetfilterLink(int prog_fd, uint32_t pf, uint32_t hook, int32_t priority);
