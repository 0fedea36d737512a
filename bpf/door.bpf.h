/* The door: a packet that enters the traced netns by a device that is neither
 * the bridge, a port nor an uplink (a second NIC, a published port reached
 * there) meets the bridge only after routing. Its first hops (RX on that
 * device, the PREROUTING probes with their DNAT) are kept per CPU until it
 * does, then sent ahead of the hop that starts its traversal; a packet that
 * never reaches the bridge is simply replaced by the next one.
 * RX -> PREROUTING -> routing -> FORWARD runs in one softirq on one CPU, so one
 * packet per CPU is enough. Bounded: DOOR_HOPS events per CPU; a packet of the
 * netns that never meets the bridge costs one header read per RX and probe. */
#ifndef BPFTRACE_NET_DOOR_BPF_H
#define BPFTRACE_NET_DOOR_BPF_H

#include "emit.bpf.h"

#define DOOR_HOPS 8

/* The hooks backend keeps a door (bpf/hooks.bpf.c defines BN_DOOR); the
 * function-tracing backends start at the first hook that shows a watched
 * device, and their programs have no stack to spare for it. */
#ifdef BN_DOOR

/* Room for the bytes after each event, as everywhere an event is built: the
 * assembly reads them when has_snap says so (a kept hop never has any). */
struct door_hop {
	struct bn_event event;
	struct bn_snap snap;
};

struct door {
	__u64 skb;
	__u32 n;
	__u32 _pad;
	struct door_hop hops[DOOR_HOPS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct door);
} door SEC(".maps");

/* A hop of an unfollowed packet, kept at the door. `first`: a packet arrives
 * (RX by a device other than the bridge): the door starts over, even when the
 * skb is the one it holds (freed and reused: another packet); later hops only
 * add to the packet already there. */
static __always_inline struct bn_event *door_hop(struct sk_buff *skb, __u8 kind, bool first)
{
	__u32 zero = 0;
	struct door *d = bpf_map_lookup_elem(&door, &zero);
	struct bn_event *e;

	if (!d)
		return NULL;
	if (first) {
		d->skb = (__u64)skb;
		d->n = 0;
	} else if (d->skb != (__u64)skb) {
		return NULL;
	}
	if (d->n >= DOOR_HOPS)
		return NULL;
	e = &d->hops[slot_index(d->n, DOOR_HOPS)].event;
	d->n++;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->skb = (__u64)skb;
	e->kind = kind;
	e->cpu = bpf_get_smp_processor_id();
	e->mark = R(skb, mark);
	return e;
}

/* Sends kept hop i as the packet's next one, from where it is kept. No context
 * on the stack and no copy: the callback shares the program's 512 bytes. */
static long door_send_one(__u32 i, void *unused)
{
	__u32 zero = 0;
	struct door *d = bpf_map_lookup_elem(&door, &zero);
	struct tracked_skb *t;
	struct bn_event *h;

	if (!d || i >= DOOR_HOPS)
		return 1;
	t = tracked_lookup(d->skb);
	if (!t)
		return 1;
	h = &d->hops[slot_index(i, DOOR_HOPS)].event;
	h->packet_id = t->packet_id;
	h->seq = t->seq++;
	h->has_snap = 0;
	if (capture_mode != BN_MODE_EVENTS) {
		record_hop(h);
		return 0;
	}
	if (bpf_ringbuf_output(&events, h, sizeof(*h), wakeup_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + sizeof(*h), sizeof(*h))))
		count_lost();
	else
		t->delivered = 1;
	return 0;
}

/* The packet just started its traversal (call only then: t->seq == 0): what it met before comes first. */
static __always_inline void door_send(struct sk_buff *skb, struct tracked_skb *t)
{
	__u32 zero = 0;
	struct door *d = bpf_map_lookup_elem(&door, &zero);

	if (!d || d->skb != (__u64)skb)
		return;
	bpf_loop(d->n < DOOR_HOPS ? d->n : DOOR_HOPS, door_send_one, NULL, 0);
	d->skb = 0;
}
#else
static __always_inline struct bn_event *door_hop(struct sk_buff *skb, __u8 kind, bool first)
{
	return NULL;
}

static __always_inline void door_send(struct sk_buff *skb, struct tracked_skb *t)
{
}
#endif

#endif
