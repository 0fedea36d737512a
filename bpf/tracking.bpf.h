/* Which packets are followed: a packet starts being followed at a watched
 * device if the filters take it, and keeps its identity (id, hop sequence)
 * per skb until it leaves. */
#ifndef BPFTRACE_NET_TRACKING_BPF_H
#define BPFTRACE_NET_TRACKING_BPF_H

#include "base.bpf.h"
#include "filter.bpf.h"
#include "assembly.bpf.h"

/* ---- per-packet state ---------------------------------------------------- */

struct tracked_skb {
	__u64 packet_id;
	__u64 last_ts;
	__u16 seq;
	__u8 rejected;  /* the filter said no: remembered so it runs once per packet */
};

/* An skb can be freed where no tracepoint sees it (GRO merges, partial frees)
 * and its memory reused: silence this long means a new packet. */
#define STALE_NS 1000000000ULL

/* Devices of the traced netns whose packets start a traversal: the bridge,
 * its ports and the uplinks. Filled by user space before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched_ifindex SEC(".maps");

/* skb address -> packet identity, for every packet being followed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tracked_skb);
} tracked SEC(".maps");

__u64 next_packet_id = 0;

static __always_inline bool is_watched(struct net_device *dev)
{
	__u32 ifindex;

	if (!dev || dev_netns(dev) != target_netns)
		return false;
	ifindex = dev_ifindex(dev);
	return bpf_map_lookup_elem(&watched_ifindex, &ifindex) != NULL;
}

static __always_inline bool ifindex_watched(__u32 ifindex)
{
	return ifindex && bpf_map_lookup_elem(&watched_ifindex, &ifindex) != NULL;
}

static __always_inline void untrack(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;

	bpf_map_delete_elem(&tracked, &key);
}

/* The packet's identity if it is followed, given what `tracked` holds for the
 * skb (t, possibly NULL). `start`: this event may begin following it (a
 * watched device); the filters run then, once. */
static __always_inline struct tracked_skb *track_found(struct sk_buff *skb, struct tracked_skb *t, bool start,
						       bool at_rx)
{
	__u64 key = (__u64)skb;
	struct tracked_skb fresh = {};
	__u64 now = bpf_ktime_get_ns();

	if (t && now - t->last_ts < STALE_NS)
		return t->rejected ? NULL : t;
	if (t) {
		abandon_record(key);
		bpf_map_delete_elem(&tracked, &key);
	}
	if (!start)
		return NULL;
	fresh.last_ts = now;
	if (!packet_matches(skb, at_rx) || (sample_every > 1 && bpf_get_prandom_u32() % sample_every)) {
		fresh.rejected = 1;
		bpf_map_update_elem(&tracked, &key, &fresh, BPF_ANY);
		return NULL;
	}
	fresh.packet_id = __sync_fetch_and_add(&next_packet_id, 1) + 1;
	bpf_map_update_elem(&tracked, &key, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&tracked, &key);
}

static __always_inline struct tracked_skb *track_at(struct sk_buff *skb, bool start, bool at_rx)
{
	__u64 key = (__u64)skb;

	return track_found(skb, bpf_map_lookup_elem(&tracked, &key), start, at_rx);
}

static __always_inline struct tracked_skb *track(struct sk_buff *skb, bool start)
{
	return track_at(skb, start, false);
}

#endif
