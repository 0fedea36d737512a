// SPDX-License-Identifier: GPL-2.0
/* The `hooks` backend: for kernels without function tracing.
 * rx/tx/drop come from BTF tracepoints, netfilter hooks from BPF netfilter
 * links placed where the traced netns's ruleset has its chains: the probes a
 * packet reaches tell which chains it passed and where it stopped. */
/* Every kernel pointer here comes typed from BTF: read fields with plain loads. */
#define BN_BTF_POINTERS
#include "common.bpf.h"
#include "devices.bpf.h"

/* ---- netfilter probes ---------------------------------------------------- */

static __always_inline int on_nf(struct bpf_nf_ctx *ctx, __u8 slot)
{
	struct bn_event *e = nf_event(ctx->skb, ctx->state, BN_EV_NF, true);

	if (e) {
		e->nf_slot = slot;
		submit(e);
	}
	return NF_ACCEPT;
}

/* A netfilter program cannot tell at which priority it runs: each probe of a
 * hook is a different program of this pool (see BN_PROBE_POOL). */
#define NF_PROBE(i)                                     \
	SEC("netfilter")                                \
	int nf_probe_##i(struct bpf_nf_ctx *ctx)        \
	{                                               \
		return on_nf(ctx, i);                   \
	}

NF_PROBE(0) NF_PROBE(1) NF_PROBE(2) NF_PROBE(3) NF_PROBE(4) NF_PROBE(5) NF_PROBE(6) NF_PROBE(7)
NF_PROBE(8) NF_PROBE(9) NF_PROBE(10) NF_PROBE(11) NF_PROBE(12) NF_PROBE(13) NF_PROBE(14) NF_PROBE(15)
_Static_assert(BN_PROBE_POOL == 16, "one NF_PROBE per pool slot");
