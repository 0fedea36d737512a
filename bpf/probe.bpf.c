// SPDX-License-Identifier: GPL-2.0
/* Minimal programs that `doctor` and backend selection load one at a time to
 * learn, by really trying, what this kernel allows. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/nf_hook_slow")
int BPF_PROG(probe_fentry_nf_hook_slow)
{
	return 0;
}

SEC("fentry/br_handle_frame")
int BPF_PROG(probe_fentry_br_handle_frame)
{
	return 0;
}

SEC("kprobe/nf_hook_slow")
int BPF_KPROBE(probe_kprobe_nf_hook_slow)
{
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(probe_tp_btf, struct sk_buff *skb)
{
	return 0;
}

SEC("netfilter")
int probe_netfilter(struct bpf_nf_ctx *ctx)
{
	return 1; /* NF_ACCEPT */
}

SEC("tc")
int probe_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
