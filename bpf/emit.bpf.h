/* Building an event: reserved (a ring slot, or a scratch slot folded into the
 * packet's record), filled, submitted. */
#ifndef BPFTRACE_NET_EMIT_BPF_H
#define BPFTRACE_NET_EMIT_BPF_H

#include "ring.bpf.h"
#include "headers.bpf.h"
#include "tracking.bpf.h"
#include "assembly.bpf.h"

/* An event under construction: a ring-buffer slot in events mode, a scratch
 * slot folded into the packet's record otherwise. Always ends in submit(). */
static __always_inline struct bn_event *reserve(struct sk_buff *skb, struct tracked_skb *t, __u8 kind)
{
	struct bn_event *e;

	if (capture_mode != BN_MODE_EVENTS)
		e = scratch_take();
	else if (snaplen)
		e = bpf_ringbuf_reserve(&events, sizeof(*e) + sizeof(struct bn_snap), 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		/* The packet's numbering goes on: the gap is how its traversal knows a hop is missing. */
		t->seq++;
		/* Its own count only once user space knows the packet (its end may be what is lost,
		 * which no later number shows). One it never saw is in the capture's count alone, as
		 * user space would drop its report: at a flood that filled the ring, an LRU insert per
		 * such packet made every packet cost about a quarter more. */
		if (capture_mode == BN_MODE_EVENTS && t->delivered)
			count_packet_lost(t->packet_id);
		return NULL;
	}
	t->delivered = 1;
	__builtin_memset(e, 0, sizeof(*e));
	e->has_snap = snaplen != 0;
	e->ts = t->last_ts; /* read when the hop found its packet (track_found) */
	e->packet_id = t->packet_id;
	e->seq = t->seq++;
	e->skb = (__u64)skb;
	e->kind = kind;
	e->cpu = bpf_get_smp_processor_id();
	e->mark = R(skb, mark);
	return e;
}

/* Submits an event built in place. */
static __always_inline void submit(struct bn_event *e)
{
	if (capture_mode == BN_MODE_EVENTS) {
		/* The reservation already counts as queued. */
		__u64 size = snaplen ? sizeof(*e) + sizeof(struct bn_snap) : sizeof(*e);

		bpf_ringbuf_submit(e, wakeup_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), size));
		return;
	}
	record_hop(e);
	scratch_give_back();
}

/* The packet waits in a queue another CPU may empty: its state moves where any CPU finds it. */
static __always_inline void publish(struct sk_buff *skb)
{
	record_publish((__u64)skb);
	tracked_publish((__u64)skb);
}

/* The packet leaves the traced bridge (or dies): its record is complete. */
static __always_inline void finish(struct sk_buff *skb)
{
	finish_record(skb);
	untrack(skb);
}

/* An event about a packet already followed (never starts one), on its
 * current device. */
static __always_inline struct bn_event *followed_event(struct sk_buff *skb, __u8 kind)
{
	struct tracked_skb *t = track(skb, false);
	struct net_device *dev;
	struct bn_event *e;

	if (!t)
		return NULL;
	e = reserve(skb, t, kind);
	if (!e)
		return NULL;
	dev = R(skb, dev);
	e->ifindex = dev_ifindex(dev);
	e->netns = dev_netns(dev);
	read_headers(skb, e, false);
	return e;
}

#endif
