/* Events at netfilter hooks: the hook's devices, the packet's first hook in the
 * traced netns, and the table running when a packet died. */
#ifndef BPFTRACE_NET_NETFILTER_BPF_H
#define BPFTRACE_NET_NETFILTER_BPF_H

#include "emit.bpf.h"
#include "door.bpf.h"

/* The table (or nftables chain) running on this CPU, if any: a drop inside it
 * (nftables frees the skb itself) is then attributed to it. Function-tracing
 * backends set it around each table; in the hooks backend it stays empty. */
struct table_call {
	__u64 skb;
	const struct nf_hook_state *state;
	const char *table;
	const char *chain;
	__u8 worker;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct table_call);
} table_calls SEC(".maps");

/* br_netfilter's ports of the hook run in progress on this CPU: a hook's probes
 * (and a function backend's table events) all see the same ones, read once.
 * A device event in between clears it (ports_seen_forget), so a later run of
 * the same hook whose state lands at the same stack address reads anew. */
struct ports_seen {
	__u64 skb;
	const struct nf_hook_state *state;
	__u32 hook;  /* family << 8 | hook */
	__u32 physin;
	__u32 physout;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ports_seen);
} ports_seen SEC(".maps");

static __always_inline void hook_ports(struct sk_buff *skb, const struct nf_hook_state *state, __u32 hook,
				       __u32 *physin, __u32 *physout)
{
	__u32 zero = 0;
	struct ports_seen *p = bpf_map_lookup_elem(&ports_seen, &zero);

	if (p && p->skb == (__u64)skb && p->state == state && p->hook == hook) {
		*physin = p->physin;
		*physout = p->physout;
		return;
	}
	read_bridge_ports(skb, physin, physout);
	if (p) {
		p->skb = (__u64)skb;
		p->state = state;
		p->hook = hook;
		p->physin = *physin;
		p->physout = *physout;
	}
}

static __always_inline void ports_seen_forget(void)
{
	__u32 zero = 0;
	struct ports_seen *p = bpf_map_lookup_elem(&ports_seen, &zero);

	if (p)
		p->skb = 0;
}

/* Devices (and headers, unless kept at the door) of a netfilter event. */
static __always_inline void fill_nf_devices(struct bn_event *e, const struct nf_hook_state *state, __u32 netns,
					    __u32 in_if, __u32 out_if, __u32 physin, __u32 physout)
{
	e->netns = netns;
	e->nf_family = R(state, pf);
	e->nf_hook = R(state, hook);
	e->in_ifindex = in_if;
	e->out_ifindex = out_if;
	e->physin_ifindex = physin;
	e->physout_ifindex = physout;
}

/* An event at a netfilter hook of the traced netns, with its devices and
 * headers filled in; NULL when the packet is not followed or the ring is full.
 * A packet is followed from the first hook where a watched device shows; an
 * unfollowed one that came in by another device is kept at the door (as hop
 * `door_slot` of kind BN_EV_NF) in case it reaches the bridge later. */
static __always_inline struct bn_event *nf_event(struct sk_buff *skb, const struct nf_hook_state *state, __u8 kind,
						  bool may_start, int door_slot)
{
	__u64 key = (__u64)skb;
	struct tracked_skb *known = tracked_lookup(key);
	__u32 netns, in_if, out_if, physin = 0, physout = 0;
	__u64 now = hop_time(known);
	bool fresh = tracked_fresh(known, now);
	struct tracked_skb *t;
	struct bn_event *e;
	bool watched = false;

	/* The hot path for packets the filters turned away: one lookup, nothing read. */
	if (fresh && known->rejected) {
		unfollowed_hop(known);
		return NULL;
	}
	netns = R2(state, net, ns.inum);
	if (netns != target_netns)
		return NULL;
	in_if = dev_ifindex(R(state, in));
	out_if = dev_ifindex(R(state, out));
	hook_ports(skb, state, (__u32)R(state, pf) << 8 | R(state, hook), &physin, &physout);
	if (!fresh && may_start)
		watched = ifindex_watched(in_if) || ifindex_watched(out_if) ||
			  ifindex_watched(physin) || ifindex_watched(physout);
	t = track_found(skb, known, watched && may_start, false, now);
	if (!t) {
		if (!known && door_slot >= 0 && (e = door_hop(skb, kind, false))) {
			fill_nf_devices(e, state, netns, in_if, out_if, physin, physout);
			read_headers_only(skb, e, false);
			e->nf_slot = door_slot;
		}
		return NULL;
	}
	if (!t->seq)
		door_send(skb, t);
	e = reserve(skb, t, kind);
	if (!e)
		return NULL;
	fill_nf_devices(e, state, netns, in_if, out_if, physin, physout);
	read_headers(skb, e, false);
	return e;
}

static __always_inline void table_call_begin(struct sk_buff *skb, const struct nf_hook_state *state, __u8 worker,
					     const char *table, const char *chain)
{
	__u32 zero = 0;
	struct table_call *c = floor_only ? NULL : bpf_map_lookup_elem(&table_calls, &zero);

	/* Nested tables (a REJECT sending its reply) keep the outer one. */
	if (c && !c->skb) {
		c->skb = (__u64)skb;
		c->state = state;
		c->table = table;
		c->chain = chain;
		c->worker = worker;
	}
}

static __always_inline void table_call_end(struct sk_buff *skb)
{
	__u32 zero = 0;
	struct table_call *c = bpf_map_lookup_elem(&table_calls, &zero);

	if (c && c->skb == (__u64)skb)
		c->skb = 0;
}

/* Fills a drop event with the table running when the skb was freed, if any. */
static __always_inline void attribute_to_table(struct sk_buff *skb, struct bn_event *e)
{
	__u32 zero = 0;
	struct table_call *c = bpf_map_lookup_elem(&table_calls, &zero);
	const struct nf_hook_state *state;

	if (!c || c->skb != (__u64)skb)
		return;
	/* A plain load: table_call is ours, not the kernel's, so no CO-RE here. */
	state = c->state;
	e->detail = c->worker;
	e->nf_family = BPF_CORE_READ(state, pf);
	e->nf_hook = BPF_CORE_READ(state, hook);
	e->in_ifindex = BPF_CORE_READ(state, in, ifindex);
	e->out_ifindex = BPF_CORE_READ(state, out, ifindex);
	read_bridge_ports(skb, &e->physin_ifindex, &e->physout_ifindex);
	if (c->table)
		bpf_probe_read_kernel_str(e->table, sizeof(e->table), c->table);
	if (c->chain)
		bpf_probe_read_kernel_str(e->chain, sizeof(e->chain), c->chain);
}

#endif
