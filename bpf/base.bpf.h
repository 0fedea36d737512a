/* What every backend object starts from: kernel types, the settings user
 * space writes into .rodata before load, and reads of kernel structures. */
#ifndef BPFTRACE_NET_BASE_BPF_H
#define BPFTRACE_NET_BASE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_ACCEPT 1
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define MAC_HEADER_UNSET 0xffff
#define IPPROTO_ICMPV6 58
#define ETH_HLEN 14

/* ---- configuration (rodata, set before load) ----------------------------- */

const volatile struct bn_config bn_config = {};
#define target_netns (bn_config.target_netns)
#define bridge_ifindex (bn_config.bridge_ifindex)
#define filter_len (bn_config.filter_len)
#define mark_value (bn_config.mark_value)
#define mark_mask (bn_config.mark_mask)
#define capture_mode (bn_config.mode)
#define sample_every (bn_config.sample_every)
#define snaplen (bn_config.snaplen)
#define wakeup_bytes (bn_config.wakeup_bytes)
#define floor_only (bn_config.floor)
#define shed_above (bn_config.shed_above)

/* ---- reading kernel structures -------------------------------------------- */

/* One field of a kernel pointer. Where every pointer is one the verifier has
 * typed from BTF (tp_btf arguments, netfilter contexts and what they point to:
 * the hooks backend), a plain CO-RE-relocated load; elsewhere (kprobes, and
 * pointers fentry programs read out of other structures) bpf_probe_read_kernel,
 * several times slower on a path taken ~20 times per packet. */
#ifdef BN_BTF_POINTERS
#define R(p, field) ((p)->field)
#define R2(p, a, b) ((p)->a->b)
#else
#define R(p, field) BPF_CORE_READ(p, field)
#define R2(p, a, b) BPF_CORE_READ(p, a, b)
#endif

/* 6.1 kernels keep the physical in-port as a pointer, 6.8+ as an ifindex. */
struct nf_bridge_info___pointer {
	struct net_device *physindev;
} __attribute__((preserve_access_index));

static __always_inline __u32 dev_ifindex(struct net_device *dev)
{
	return dev ? R(dev, ifindex) : 0;
}

static __always_inline __u32 dev_netns(struct net_device *dev)
{
	return dev ? R2(dev, nd_net.net, ns.inum) : 0;
}

/* Room for a copy of struct nf_bridge_info (about 40 bytes on 6.x). Offsets into
 * the copy are masked to keep the verifier sure of its bounds: an int field's is
 * a multiple of 4, a pointer's of 8, so the masks change nothing. */
#define BRIDGE_INFO_COPY 64

/* br_netfilter's physical in and out ports. Read at every netfilter hop of a
 * bridged packet: its nf_bridge_info is copied in one read, not field by field. */
static __always_inline void read_bridge_ports(struct sk_buff *skb, __u32 *physin, __u32 *physout)
{
	int ext_id = bpf_core_enum_value(enum skb_ext_id, SKB_EXT_BRIDGE_NF);
	__u8 info[BRIDGE_INFO_COPY] __attribute__((aligned(8)));
	__u32 size = bpf_core_type_size(struct nf_bridge_info);
	struct net_device *dev;
	struct skb_ext *ext;
	__u8 off;

	if (!(R(skb, active_extensions) & (1 << ext_id)))
		return;
	ext = R(skb, extensions);
	if (!ext || bpf_probe_read_kernel(&off, 1, &ext->offset[ext_id & 3]))
		return;
	if (bpf_probe_read_kernel(info, size < sizeof(info) ? size : sizeof(info), (void *)ext + ((__u32)off << 3)))
		return;
	if (bpf_core_field_exists(struct nf_bridge_info, physinif)) {
		*physin = *(int *)(info + (bpf_core_field_offset(struct nf_bridge_info, physinif) & (BRIDGE_INFO_COPY - 4)));
	} else {
		dev = *(struct net_device **)(info + (bpf_core_field_offset(struct nf_bridge_info___pointer, physindev) & (BRIDGE_INFO_COPY - 8)));
		*physin = dev ? BPF_CORE_READ(dev, ifindex) : 0;
	}
	dev = *(struct net_device **)(info + (bpf_core_field_offset(struct nf_bridge_info, physoutdev) & (BRIDGE_INFO_COPY - 8)));
	*physout = dev ? BPF_CORE_READ(dev, ifindex) : 0;
}

#endif
