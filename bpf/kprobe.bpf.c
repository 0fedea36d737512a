// SPDX-License-Identifier: GPL-2.0
/* The `kprobe` backend: the same events as fentry.bpf.c through kprobes and
 * kretprobes, for kernels without BPF trampolines. A kretprobe does not see
 * the arguments, so each entry pushes them on a per-CPU stack that its return
 * pops: hooks nest (br_netfilter runs IPv4 hooks inside bridge hooks), and
 * softirqs that interrupt a hook finish before it resumes. */
#include "devices.bpf.h"
#include "functions.bpf.h"

#define MAX_DEPTH 8

struct call_frame {
	__u64 arg[3];
};

struct call_stack {
	__u32 depth;
	__u32 _pad;
	struct call_frame frames[MAX_DEPTH];
};

enum stack_id { STACK_HOOK, STACK_TABLE, STACK_RX_HANDLER, STACK_COUNT };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STACK_COUNT);
	__type(key, __u32);
	__type(value, struct call_stack);
} call_stacks SEC(".maps");

static __always_inline void push(__u32 id, __u64 a, __u64 b, __u64 c)
{
	struct call_stack *s = bpf_map_lookup_elem(&call_stacks, &id);
	__u32 d;

	if (floor_only || !s)
		return;
	d = s->depth;
	/* Past the bound the frame is not kept, but the depth still counts so
	 * that returns stay paired with their calls. */
	if (d < MAX_DEPTH) {
		s->frames[d].arg[0] = a;
		s->frames[d].arg[1] = b;
		s->frames[d].arg[2] = c;
	}
	s->depth = d + 1;
}

static __always_inline struct call_frame *pop(__u32 id)
{
	struct call_stack *s = bpf_map_lookup_elem(&call_stacks, &id);
	__u32 d;

	if (floor_only || !s || s->depth == 0)
		return NULL;
	d = --s->depth;
	return d < MAX_DEPTH ? &s->frames[d] : NULL;
}

SEC("kprobe/nf_hook_slow")
int BPF_KPROBE(kprobe_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state,
	       const struct nf_hook_entries *entries, unsigned int start)
{
	emit_hook_enter(skb, state, entries, start);
	push(STACK_HOOK, (__u64)skb, (__u64)state, 0);
	return 0;
}

SEC("kretprobe/nf_hook_slow")
int BPF_KRETPROBE(kretprobe_nf_hook_slow, int ret)
{
	struct call_frame *f = pop(STACK_HOOK);

	if (f)
		emit_hook_exit((struct sk_buff *)f->arg[0], (const struct nf_hook_state *)f->arg[1], ret);
	return 0;
}

SEC("kprobe/nft_do_chain")
int BPF_KPROBE(kprobe_nft_do_chain, struct nft_pktinfo___bn *pkt, void *priv)
{
	begin_nft_chain(pkt, priv);
	push(STACK_TABLE, (__u64)pkt, (__u64)priv, 0);
	return 0;
}

SEC("kretprobe/nft_do_chain")
int BPF_KRETPROBE(kretprobe_nft_do_chain, unsigned int ret)
{
	struct call_frame *f = pop(STACK_TABLE);

	if (f)
		emit_nft_chain((struct nft_pktinfo___bn *)f->arg[0], (struct nft_chain___bn *)f->arg[1], ret);
	return 0;
}

#define XT_TABLE_WORKER(func, worker, table_type)                                                          \
	SEC("kprobe/" #func)                                                                                \
	int BPF_KPROBE(kprobe_##func, void *priv, struct sk_buff *skb, const struct nf_hook_state *state)   \
	{                                                                                                   \
		table_call_begin(skb, state, worker, ((struct table_type *)priv)->name, NULL);              \
		push(STACK_TABLE, (__u64)priv, (__u64)skb, (__u64)state);                                   \
		return 0;                                                                                   \
	}                                                                                                   \
	SEC("kretprobe/" #func)                                                                             \
	int BPF_KRETPROBE(kretprobe_##func, unsigned int ret)                                               \
	{                                                                                                   \
		struct call_frame *f = pop(STACK_TABLE);                                                    \
		if (!f)                                                                                     \
			return 0;                                                                           \
		table_call_end((struct sk_buff *)f->arg[1]);                                                \
		emit_table((struct sk_buff *)f->arg[1], (const struct nf_hook_state *)f->arg[2], worker,    \
			   ((struct table_type *)f->arg[0])->name, NULL, ret);                              \
		return 0;                                                                                   \
	}

XT_TABLE_WORKER(ipt_do_table, BN_WORKER_IPT, xt_table___bn)
XT_TABLE_WORKER(ip6t_do_table, BN_WORKER_IP6T, xt_table___bn)
XT_TABLE_WORKER(arpt_do_table, BN_WORKER_ARPT, xt_table___bn)
XT_TABLE_WORKER(ebt_do_table, BN_WORKER_EBT, ebt_table___bn)

SEC("kprobe/br_handle_frame")
int BPF_KPROBE(kprobe_br_handle_frame, struct sk_buff **pskb)
{
	push(STACK_RX_HANDLER, (__u64)pskb, 0, 0);
	return 0;
}

SEC("kretprobe/br_handle_frame")
int BPF_KRETPROBE(kretprobe_br_handle_frame, int ret)
{
	struct call_frame *f = pop(STACK_RX_HANDLER);
	struct sk_buff *skb = NULL;

	if (!f)
		return 0;
	bpf_probe_read_kernel(&skb, sizeof(skb), (void *)f->arg[0]);
	emit_rx_handler(skb, ret);
	return 0;
}

SEC("kprobe/br_forward")
int BPF_KPROBE(kprobe_br_forward, const struct net_bridge_port___bn *to, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_FORWARD, dev_ifindex(BPF_CORE_READ(to, dev)));
	return 0;
}

SEC("kprobe/br_flood")
int BPF_KPROBE(kprobe_br_flood, void *br, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_FLOOD, 0);
	return 0;
}

SEC("kprobe/br_pass_frame_up")
int BPF_KPROBE(kprobe_br_pass_frame_up, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_LOCAL, 0);
	return 0;
}

#define ROUTE_PROG(func, decision)                      \
	SEC("kprobe/" #func)                            \
	int BPF_KPROBE(kprobe_##func, struct sk_buff *skb) \
	{                                               \
		emit_route(skb, decision);              \
		return 0;                               \
	}

ROUTE_PROG(ip_forward, BN_ROUTE_FORWARD)
ROUTE_PROG(ip6_forward, BN_ROUTE_FORWARD)
ROUTE_PROG(ip_local_deliver, BN_ROUTE_LOCAL)
ROUTE_PROG(ip6_input, BN_ROUTE_LOCAL)
