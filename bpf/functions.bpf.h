/* Event bodies for the function-tracing backends (fentry.bpf.c and
 * kprobe.bpf.c): they differ only in how they reach the arguments. */
#ifndef BPFTRACE_NET_FUNCTIONS_BPF_H
#define BPFTRACE_NET_FUNCTIONS_BPF_H

#include "netfilter.bpf.h"

#define NF_VERDICT_MASK 0xff

/* Types of modules (nf_tables, x_tables, ebtables, bridge) that a vmlinux.h
 * made on another kernel may lack: CO-RE matches them by name, without the
 * ___bn suffix, against the running kernel's module BTF. */
struct nft_table___bn {
	char *name;
} __attribute__((preserve_access_index));

struct nft_chain___bn {
	struct nft_table___bn *table;
	char *name;
} __attribute__((preserve_access_index));

struct nft_pktinfo___bn {
	struct sk_buff *skb;
	const struct nf_hook_state *state;
} __attribute__((preserve_access_index));

struct xt_table___bn {
	char name[32];
} __attribute__((preserve_access_index));

struct ebt_table___bn {
	char name[32];
} __attribute__((preserve_access_index));

struct net_bridge_port___bn {
	struct net_device *dev;
} __attribute__((preserve_access_index));

/* nf_hook_slow entry: the hook is about to run its entries, from index
 * `start`. Their priorities sit in the nf_hook_ops array right after the
 * entries (nf_hook_entries_get_hook_ops). */
static __always_inline void emit_hook_enter_body(struct sk_buff *skb, const struct nf_hook_state *state,
					    const struct nf_hook_entries *entries, unsigned int start)
{
	struct bn_event *e = nf_event(skb, state, BN_EV_NF_HOOK_ENTER, true, -1);
	struct nf_hook_ops **ops;
	__u32 n;

	if (!e)
		return;
	/* Bounded for the verifier's pointer arithmetic; real hooks have a handful. */
	n = BPF_CORE_READ(entries, num_hook_entries) & 0xff;
	e->detail = n;
	e->nf_slot = start > 255 ? 255 : start;
	/* The mask restores the bound that 6.1's verifier loses across the multiply. */
	ops = (struct nf_hook_ops **)((void *)entries + bpf_core_field_offset(struct nf_hook_entries, hooks) +
				      (((__u64)n * bpf_core_type_size(struct nf_hook_entry)) & 0xffff));
	for (int i = 0; i < BN_MAX_PRIORITIES; i++) {
		struct nf_hook_ops *op = NULL;

		if (i >= n || bpf_probe_read_kernel(&op, sizeof(op), &ops[i]) || !op)
			break;
		e->priorities[i] = BPF_CORE_READ(op, priority);
	}
	submit(e);
}

static __always_inline void emit_hook_enter(struct sk_buff *skb, const struct nf_hook_state *state,
					    const struct nf_hook_entries *entries, unsigned int start)
{
	if (floor_only)
		return;
	nest_enter();
	emit_hook_enter_body(skb, state, entries, start);
	nest_leave();
}

/* nf_hook_slow return: 1 accepted, 0 stolen or queued, < 0 dropped (errno).
 * A dropped skb was already freed (and unfollowed) by then: never start here. */
static __always_inline void emit_hook_exit_body(struct sk_buff *skb, const struct nf_hook_state *state, int ret)
{
	struct bn_event *e = nf_event(skb, state, BN_EV_NF_HOOK_EXIT, false, -1);

	if (e) {
		e->verdict = ret;
		submit(e);
	}
}

static __always_inline void emit_hook_exit(struct sk_buff *skb, const struct nf_hook_state *state, int ret)
{
	if (floor_only)
		return;
	nest_enter();
	emit_hook_exit_body(skb, state, ret);
	nest_leave();
}

/* A table (or nftables base chain) ran on the packet and returned a verdict.
 * Its hook's entry already started following the packet; a table that freed
 * the skb itself (nftables' drop) finds it unfollowed and says nothing more. */
static __always_inline void emit_table_body(struct sk_buff *skb, const struct nf_hook_state *state, __u8 worker,
				       const char *table, const char *chain, unsigned int verdict)
{
	struct bn_event *e = nf_event(skb, state, BN_EV_NF_TABLE, false, -1);

	if (!e)
		return;
	e->detail = worker;
	e->verdict = verdict & NF_VERDICT_MASK;
	if (table)
		bpf_probe_read_kernel_str(e->table, sizeof(e->table), table);
	if (chain)
		bpf_probe_read_kernel_str(e->chain, sizeof(e->chain), chain);
	submit(e);
}

static __always_inline void emit_table(struct sk_buff *skb, const struct nf_hook_state *state, __u8 worker,
				       const char *table, const char *chain, unsigned int verdict)
{
	if (floor_only)
		return;
	nest_enter();
	emit_table_body(skb, state, worker, table, chain, verdict);
	nest_leave();
}

/* br_handle_frame return: enum rx_handler_result (CONSUMED 0, ANOTHER 1, EXACT 2, PASS 3). */
static __always_inline void emit_rx_handler_body(struct sk_buff *skb, int ret)
{
	struct bn_event *e = followed_event(skb, BN_EV_RX_HANDLER);

	if (e) {
		e->verdict = ret;
		submit(e);
	}
}

static __always_inline void emit_rx_handler(struct sk_buff *skb, int ret)
{
	if (floor_only)
		return;
	nest_enter();
	emit_rx_handler_body(skb, ret);
	nest_leave();
}

static __always_inline void emit_bridge_decision_body(struct sk_buff *skb, __u8 decision, __u32 port_ifindex)
{
	struct bn_event *e = followed_event(skb, BN_EV_BR_DECISION);

	if (e) {
		e->detail = decision;
		if (port_ifindex)
			e->out_ifindex = port_ifindex;
		submit(e);
	}
}

static __always_inline void emit_bridge_decision(struct sk_buff *skb, __u8 decision, __u32 port_ifindex)
{
	if (floor_only)
		return;
	nest_enter();
	emit_bridge_decision_body(skb, decision, port_ifindex);
	nest_leave();
}

static __always_inline void emit_route_body(struct sk_buff *skb, __u8 decision)
{
	struct bn_event *e = followed_event(skb, BN_EV_ROUTE);

	if (e) {
		e->detail = decision;
		submit(e);
	}
}

static __always_inline void emit_route(struct sk_buff *skb, __u8 decision)
{
	if (floor_only)
		return;
	nest_enter();
	emit_route_body(skb, decision);
	nest_leave();
}

static __always_inline void begin_nft_chain(struct nft_pktinfo___bn *pkt, struct nft_chain___bn *chain)
{
	table_call_begin(BPF_CORE_READ(pkt, skb), BPF_CORE_READ(pkt, state), BN_WORKER_NFT,
			 BPF_CORE_READ(chain, table, name), BPF_CORE_READ(chain, name));
}

static __always_inline void emit_nft_chain(struct nft_pktinfo___bn *pkt, struct nft_chain___bn *chain, unsigned int ret)
{
	struct sk_buff *skb = BPF_CORE_READ(pkt, skb);

	table_call_end(skb);
	emit_table(skb, BPF_CORE_READ(pkt, state), BN_WORKER_NFT, BPF_CORE_READ(chain, table, name),
		   BPF_CORE_READ(chain, name), ret);
}

#endif
