// The pcap filter compiled from classic BPF to eBPF, as its own program on
// netif_receive_skb, attached ahead of on_rx: it leaves its verdict on the
// arriving skb in bn_filter_verdict, so the interpreter of bpf/filter.bpf.h
// (verified in every program, ~20 ns an instruction) runs only where this
// one could not decide: loads past the bytes it copies, packets that start
// at a netfilter hook.
#pragma once

#include <linux/bpf.h>
#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

// Where the program reads the kernel's structures: byte offsets from BTF.
struct SkbLayout {
  uint32_t skb_dev, skb_head, skb_data, skb_len, skb_mac_header, skb_protocol;
  uint32_t dev_nd_net;  // net_device.nd_net.net
  uint32_t net_ns_inum;  // net.ns.inum
};

struct btf;

// The running kernel's layout, from its BTF; false (with why) when a field is missing.
bool ReadSkbLayout(const btf* kernel_btf, SkbLayout* layout, std::string* error);

// The program's instructions: skbs of other netns, and the one in the tracked_here slot
// (slot_map_fd: followed or turned away already), are left alone; verdict_map_fd is the
// filter_verdicts map. Empty when the classic program holds an instruction it does not know.
std::vector<bpf_insn> CompileFilter(const std::vector<sock_filter>& filter, const SkbLayout& layout,
                                    int verdict_map_fd, int slot_map_fd, uint32_t target_netns);

// Loads and attaches it; returns the raw tracepoint fd that holds it there (closing it
// detaches), or -1 with why.
int AttachCompiledFilter(const std::vector<sock_filter>& filter, int verdict_map_fd, int slot_map_fd,
                         uint32_t target_netns, std::string* error);
