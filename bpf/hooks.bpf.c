// SPDX-License-Identifier: GPL-2.0
/* The `hooks` backend: for kernels without function tracing.
 * rx/tx/drop come from BTF tracepoints, netfilter hooks from BPF netfilter
 * links placed where the traced netns's ruleset has its chains: the probes a
 * packet reaches tell which chains it passed and where it stopped. */
/* Every kernel pointer here comes typed from BTF: read fields with plain loads. */
#define BN_BTF_POINTERS
/* Packets that come in by another device are kept until they meet the bridge: bpf/door.bpf.h. */
#define BN_DOOR
#include "netfilter.bpf.h"
#include "devices.bpf.h"

/* ---- netfilter probes ---------------------------------------------------- */

/* A netfilter program cannot tell at which priority it runs, so each probe of
 * a hook is a different program of a pool (BN_PROBE_POOL). Each is a stub that
 * notes its number and tail-calls one body: the body, the packet filter
 * included, is verified once instead of once per probe. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nf_body_prog SEC(".maps");

/* The probe number, per CPU, for the body. A hook interrupted by a softirq's
 * hook on the same CPU runs again inside it: the depth keeps each its own
 * entry (incremented before the store, read before the decrement, so every
 * interleaving leaves each reader its own value). */
struct probe_stack {
	__u32 depth;
	__u32 slot[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_stack);
} nf_probe_stack SEC(".maps");

SEC("netfilter")
int nf_body(struct bpf_nf_ctx *ctx)
{
	__u32 zero = 0;
	struct probe_stack *st = bpf_map_lookup_elem(&nf_probe_stack, &zero);
	struct bn_event *e;
	__u32 slot;

	if (!st)
		return NF_ACCEPT;
	slot = st->slot[st->depth & 3];
	st->depth--;
	nest_enter();
	e = nf_event(ctx->skb, ctx->state, BN_EV_NF, true, slot);
	if (e) {
		e->nf_slot = slot;
		submit(e);
	}
	nest_leave();
	return NF_ACCEPT;
}

#define NF_PROBE(i)                                                             \
	SEC("netfilter")                                                        \
	int nf_probe_##i(struct bpf_nf_ctx *ctx)                                \
	{                                                                       \
		__u32 zero = 0;                                                 \
		struct probe_stack *st;                                         \
		if (floor_only || turned_away(ctx->skb))                        \
			return NF_ACCEPT;                                       \
		st = bpf_map_lookup_elem(&nf_probe_stack, &zero);               \
		if (!st)                                                        \
			return NF_ACCEPT;                                       \
		st->depth++;                                                    \
		st->slot[st->depth & 3] = i;                                    \
		bpf_tail_call(ctx, &nf_body_prog, 0);                           \
		st->depth--; /* no body: nothing to record */                   \
		return NF_ACCEPT;                                               \
	}

NF_PROBE(0) NF_PROBE(1) NF_PROBE(2) NF_PROBE(3) NF_PROBE(4) NF_PROBE(5) NF_PROBE(6) NF_PROBE(7)
NF_PROBE(8) NF_PROBE(9) NF_PROBE(10) NF_PROBE(11) NF_PROBE(12) NF_PROBE(13) NF_PROBE(14) NF_PROBE(15)
_Static_assert(BN_PROBE_POOL == 16, "one NF_PROBE per pool slot");
