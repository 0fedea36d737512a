/* Device events, the same in every backend: where a packet came in (and
 * which rx_handler took it), where it left, where it was freed and why. */
#ifndef BPFTRACE_NET_DEVICES_BPF_H
#define BPFTRACE_NET_DEVICES_BPF_H

#include "netfilter.bpf.h"

/* The qdisc the packet is being queued to holds it (a real queue, emptied
 * perhaps by another CPU), or sends it at once (noqueue: veths, bridges). */
static __always_inline bool queued_for_later(struct sk_buff *skb, struct net_device *dev)
{
	__u16 queue = R(skb, queue_mapping);
	struct netdev_queue *txq;
	struct Qdisc *q;

	txq = (void *)R(dev, _tx) + (__u64)queue * bpf_core_type_size(struct netdev_queue);
	q = BPF_CORE_READ(txq, qdisc);
	return q && BPF_CORE_READ(q, enqueue);
}

static __always_inline void dev_event(struct sk_buff *skb, struct net_device *dev, __u8 kind)
{
	struct tracked_skb *known, *t;
	struct bn_event *e;
	bool watched;
	__u64 now;

	/* Elsewhere (a container's side of its veth, the far end of the uplink): a packet
	 * that left the traced netns was unfollowed at its TX, so nothing to look up. */
	if (dev_netns(dev) != target_netns)
		return;
	ports_seen_forget();
	known = tracked_lookup((__u64)skb);
	now = hop_time(known);
	/* A packet already followed, or turned away, needs no device lookup. */
	watched = tracked_fresh(known, now) || is_watched(dev);
	t = track_found(skb, known, watched, kind == BN_EV_RX, now);
	if (!t) {
		/* Came in by another device of the netns: kept at the door. */
		if (kind == BN_EV_RX && !watched && (e = door_hop(skb, kind, dev_ifindex(dev) != bridge_ifindex))) {
			e->ifindex = dev_ifindex(dev);
			e->netns = target_netns;
			e->aux = (__u64)R(dev, rx_handler);
			read_headers_only(skb, e, true);
		}
		/* A packet the filters turned away leaves: this CPU's slot is free for the next. */
		if (kind == BN_EV_TX && dev_ifindex(dev) != bridge_ifindex)
			tracked_forget((__u64)skb);
		return;
	}
	/* First seen leaving by a watched device: what it met before comes first (an RX is a new arrival). */
	if (!t->seq && kind != BN_EV_RX)
		door_send(skb, t);
	e = reserve(skb, t, kind);
	if (e) {
		e->ifindex = dev_ifindex(dev);
		e->netns = dev_netns(dev);
		if (kind == BN_EV_RX)
			e->aux = (__u64)R(dev, rx_handler);
		read_headers(skb, e, kind == BN_EV_RX);
		submit(e);
	}
	/* Handed to a port or uplink: the packet leaves the traced bridge here. */
	if (kind == BN_EV_TX && dev_ifindex(dev) != bridge_ifindex)
		finish(skb);
	else if (kind == BN_EV_TX_QUEUE)
		publish(skb);
}

static __always_inline void on_dev_event(struct sk_buff *skb, struct net_device *dev, __u8 kind)
{
	struct tracked_skb *away;

	if (floor_only)
		return;
	/* Its leaving still frees this CPU's slot (dev_event). A queue hop (below) is one only
	 * on a device with a qdisc, so is an event lost of a packet shed only there. */
	if (kind != BN_EV_TX && (away = turned_away_skb(skb))) {
		if (shed_event(away) && (kind != BN_EV_TX_QUEUE || queued_for_later(skb, dev)))
			count_lost();
		return;
	}
	/* Queued to a device without a qdisc (veths, bridges): the kernel transmits it at once,
	 * and the TX hop that follows has the same device and headers; this one is no hop. A
	 * real queue keeps it: the packet may wait, be dropped there or go on on another CPU. */
	if (kind == BN_EV_TX_QUEUE && !queued_for_later(skb, dev))
		return;
	nest_enter();
	dev_event(skb, dev, kind);
	nest_leave();
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(on_rx, struct sk_buff *skb)
{
	on_dev_event(skb, R(skb, dev), BN_EV_RX);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(on_tx_queue, struct sk_buff *skb)
{
	on_dev_event(skb, R(skb, dev), BN_EV_TX_QUEUE);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(on_tx, struct sk_buff *skb, struct net_device *dev)
{
	on_dev_event(skb, dev, BN_EV_TX);
	return 0;
}

/* ---- end of life --------------------------------------------------------- */

static __always_inline void freed(struct sk_buff *skb, __u64 location, __u32 reason, __u8 kind)
{
	__u64 key = (__u64)skb, now;
	struct tracked_skb *t;
	struct bn_event *e;

	t = tracked_lookup(key);
	if (!t)
		return;
	/* A filtered-out (or long silent) packet is forgotten, so that the next skb in
	 * its memory is judged anew. */
	now = t->rejected ? 0 : bpf_ktime_get_ns();
	if (t->rejected && rejection_fresh(t))
		unfollowed_hop(t);
	if (t->rejected || now - t->last_ts >= STALE_NS) {
		abandon_record(key);
		untrack(skb);
		return;
	}
	t->last_ts = now;
	e = reserve(skb, t, kind);
	if (e) {
		struct net_device *dev = R(skb, dev);

		e->aux = location;
		e->reason = reason;
		if (kind == BN_EV_DROP)
			attribute_to_table(skb, e);
		e->ifindex = dev_ifindex(dev);
		e->netns = dev_netns(dev);
		read_headers(skb, e, false);
		submit(e);
	}
	finish(skb);
}

static __always_inline void on_free(struct sk_buff *skb, __u64 location, __u32 reason, __u8 kind)
{
	if (floor_only)
		return;
	nest_enter();
	freed(skb, location, reason, kind);
	nest_leave();
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	on_free(skb, (__u64)location, reason, BN_EV_DROP);
	return 0;
}

/* Only the skb: Linux 6.1's consume_skb tracepoint has no location argument. */
SEC("tp_btf/consume_skb")
int BPF_PROG(on_consume_skb, struct sk_buff *skb)
{
	on_free(skb, 0, 0, BN_EV_CONSUME);
	return 0;
}

#endif
