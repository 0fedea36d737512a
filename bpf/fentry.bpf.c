// SPDX-License-Identifier: GPL-2.0
/* The `fentry` backend: BPF trampolines on the functions that run netfilter
 * hooks, tables and the bridge, for kernels that allow them (stock
 * distribution kernels). Device events come from the same tracepoints as in
 * every backend. Programs whose function this kernel lacks are not loaded. */
#include "devices.bpf.h"
#include "functions.bpf.h"

SEC("fentry/nf_hook_slow")
int BPF_PROG(fentry_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state, const struct nf_hook_entries *entries,
	     unsigned int start)
{
	emit_hook_enter(skb, state, entries, start);
	return 0;
}

SEC("fexit/nf_hook_slow")
int BPF_PROG(fexit_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state, const struct nf_hook_entries *entries,
	     unsigned int s, int ret)
{
	emit_hook_exit(skb, state, ret);
	return 0;
}

/* nftables, and iptables-nft / ebtables-nft, which are nftables underneath. */
SEC("fentry/nft_do_chain")
int BPF_PROG(fentry_nft_do_chain, struct nft_pktinfo___bn *pkt, void *priv)
{
	begin_nft_chain(pkt, priv);
	return 0;
}

SEC("fexit/nft_do_chain")
int BPF_PROG(fexit_nft_do_chain, struct nft_pktinfo___bn *pkt, void *priv, unsigned int ret)
{
	emit_nft_chain(pkt, priv, ret);
	return 0;
}

#define XT_TABLE_WORKER(func, worker, table_type)                                                              \
	SEC("fentry/" #func)                                                                                    \
	int BPF_PROG(fentry_##func, void *priv, struct sk_buff *skb, const struct nf_hook_state *state)          \
	{                                                                                                       \
		table_call_begin(skb, state, worker, ((struct table_type *)priv)->name, NULL);                  \
		return 0;                                                                                       \
	}                                                                                                       \
	SEC("fexit/" #func)                                                                                     \
	int BPF_PROG(fexit_##func, void *priv, struct sk_buff *skb, const struct nf_hook_state *state,           \
		     unsigned int ret)                                                                          \
	{                                                                                                       \
		table_call_end(skb);                                                                            \
		emit_table(skb, state, worker, ((struct table_type *)priv)->name, NULL, ret);                   \
		return 0;                                                                                       \
	}

/* Legacy x_tables and ebtables (priv is the table since Linux 5.19). */
XT_TABLE_WORKER(ipt_do_table, BN_WORKER_IPT, xt_table___bn)
XT_TABLE_WORKER(ip6t_do_table, BN_WORKER_IP6T, xt_table___bn)
XT_TABLE_WORKER(arpt_do_table, BN_WORKER_ARPT, xt_table___bn)
XT_TABLE_WORKER(ebt_do_table, BN_WORKER_EBT, ebt_table___bn)

/* The verifier does not type a `struct sk_buff **` argument: read it raw. */
SEC("fexit/br_handle_frame")
int fexit_br_handle_frame(__u64 *ctx)
{
	struct sk_buff *skb = NULL;
	__u64 pskb = 0, ret = 0;

	if (bpf_get_func_arg(ctx, 0, &pskb) || bpf_get_func_ret(ctx, &ret))
		return 0;
	bpf_probe_read_kernel(&skb, sizeof(skb), (void *)pskb);
	emit_rx_handler(skb, (int)ret);
	return 0;
}

SEC("fentry/br_forward")
int BPF_PROG(fentry_br_forward, const struct net_bridge_port___bn *to, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_FORWARD, dev_ifindex(BPF_CORE_READ(to, dev)));
	return 0;
}

SEC("fentry/br_flood")
int BPF_PROG(fentry_br_flood, void *br, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_FLOOD, 0);
	return 0;
}

SEC("fentry/br_pass_frame_up")
int BPF_PROG(fentry_br_pass_frame_up, struct sk_buff *skb)
{
	emit_bridge_decision(skb, BN_BR_LOCAL, 0);
	return 0;
}

#define ROUTE_PROG(func, decision)                  \
	SEC("fentry/" #func)                        \
	int BPF_PROG(fentry_##func, struct sk_buff *skb) \
	{                                           \
		emit_route(skb, decision);          \
		return 0;                           \
	}

ROUTE_PROG(ip_forward, BN_ROUTE_FORWARD)
ROUTE_PROG(ip6_forward, BN_ROUTE_FORWARD)
ROUTE_PROG(ip_local_deliver, BN_ROUTE_LOCAL)
ROUTE_PROG(ip6_input, BN_ROUTE_LOCAL)
