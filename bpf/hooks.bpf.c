// SPDX-License-Identifier: GPL-2.0
/* The `hooks` backend: for kernels without function tracing.
 * rx/tx/drop come from BTF tracepoints, netfilter hooks from BPF netfilter
 * links placed just after each standard table priority, so the slots a packet
 * reaches tell which tables it passed and where it stopped. */
/* Every kernel pointer here comes typed from BTF: read fields with plain loads. */
#define BN_BTF_POINTERS
#include "common.bpf.h"
#include "devices.bpf.h"

/* ---- netfilter slots ----------------------------------------------------- */

static __always_inline int on_nf(struct bpf_nf_ctx *ctx, __u8 slot)
{
	struct bn_event *e = nf_event(ctx->skb, ctx->state, BN_EV_NF, true);

	if (e) {
		e->nf_slot = slot;
		submit(e);
	}
	return NF_ACCEPT;
}

#define NF_SLOT_PROG(name, slot)                        \
	SEC("netfilter")                                \
	int nf_##name(struct bpf_nf_ctx *ctx)           \
	{                                               \
		return on_nf(ctx, slot);                \
	}

NF_SLOT_PROG(entry, BN_SLOT_ENTRY)
NF_SLOT_PROG(raw, BN_SLOT_RAW)
NF_SLOT_PROG(conntrack, BN_SLOT_CONNTRACK)
NF_SLOT_PROG(mangle, BN_SLOT_MANGLE)
NF_SLOT_PROG(nat_dst, BN_SLOT_NAT_DST)
NF_SLOT_PROG(filter, BN_SLOT_FILTER)
NF_SLOT_PROG(security, BN_SLOT_SECURITY)
NF_SLOT_PROG(nat_src, BN_SLOT_NAT_SRC)
