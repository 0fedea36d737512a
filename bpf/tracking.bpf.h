/* Which packets are followed: a packet starts being followed at a watched
 * device if the filters take it, and keeps its identity (id, hop sequence)
 * per skb until it leaves. */
#ifndef BPFTRACE_NET_TRACKING_BPF_H
#define BPFTRACE_NET_TRACKING_BPF_H

#include "base.bpf.h"
#include "filter.bpf.h"
#include "nesting.bpf.h"
#include "assembly.bpf.h"

/* ---- per-packet state ---------------------------------------------------- */

struct tracked_skb {
	__u64 packet_id;
	__u64 last_ts;  /* followed: the time of its latest hop */
	__u64 judged;   /* rejected: jiffies when the filters said no */
	__u16 seq;
	__u8 rejected;  /* REJECTED_BY_FILTER or SHED: remembered so it is judged once per packet */
	__u8 delivered; /* events mode: one of its events reached the ring, so user space knows it */
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

/* skb address -> packet identity, for packets followed that are not the one
 * their CPU is working on (bpf/nesting.bpf.h): those that went on later or elsewhere. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tracked_skb);
} tracked SEC(".maps");

/* Entries put in `tracked`, less those taken out (evictions go uncounted, so it
 * only ever over-counts). While it is 0, which is most of the time, an skb not
 * in this CPU's slot (every skb the kernel frees, every packet's first hop)
 * costs no hash lookup. Counted before the entry goes in, after it comes out. */
__u64 tracked_stored = 0;

static __always_inline void tracked_store(__u64 *key, struct tracked_skb *t)
{
	__sync_fetch_and_add(&tracked_stored, 1);
	if (bpf_map_update_elem(&tracked, key, t, BPF_ANY))
		__sync_fetch_and_add(&tracked_stored, -1);
}

/* The identity of the packet this CPU is working on, authoritative while here:
 * a new packet starts in the slot and, if another replaces it before it ends,
 * goes to `tracked`. */
struct tracked_slot {
	__u64 skb;  /* 0: empty */
	struct tracked_skb t;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tracked_slot);
} tracked_here SEC(".maps");

static __always_inline struct tracked_slot *tracked_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tracked_here, &zero);
}

static __always_inline struct tracked_skb *tracked_lookup(__u64 key)
{
	struct tracked_slot *s = tracked_slot();

	if (s && s->skb == key)
		return &s->t;
	return tracked_stored ? bpf_map_lookup_elem(&tracked, &key) : NULL;
}

static __always_inline struct tracked_skb *tracked_insert(__u64 key, struct tracked_skb *fresh)
{
	struct tracked_slot *s = tracked_slot();

	if (s && nest_outermost()) {
		/* The packet this CPU was on goes on later (a queue), or never: keep it findable. */
		if (s->skb && s->skb != key)
			tracked_store(&s->skb, &s->t);
		s->skb = key;
		s->t = *fresh;
		return &s->t;
	}
	tracked_store(&key, fresh);
	return bpf_map_lookup_elem(&tracked, &key);
}

static __always_inline void tracked_delete(__u64 key)
{
	struct tracked_slot *s = tracked_slot();

	/* A packet in the slot never went to the map. */
	if (s && s->skb == key) {
		s->skb = 0;
		return;
	}
	if (tracked_stored && bpf_map_delete_elem(&tracked, &key) == 0)
		__sync_fetch_and_add(&tracked_stored, -1);
}

/* If this CPU's slot holds the packet, it is done with it (nothing kept elsewhere). */
static __always_inline void tracked_forget(__u64 key)
{
	struct tracked_slot *s = tracked_slot();

	if (s && s->skb == key)
		s->skb = 0;
}

/* The packet may go on on another CPU (a queue another CPU empties): make its
 * identity findable there. */
static __always_inline void tracked_publish(__u64 key)
{
	struct tracked_slot *s = tracked_slot();

	if (s && s->skb == key) {
		tracked_store(&key, &s->t);
		s->skb = 0;
	}
}

/* Why a packet is not followed. */
#define REJECTED_BY_FILTER 1
/* The ring was too full when it came (events and packets modes): not followed, counted lost. */
#define SHED 2

/* Whether a hop of a packet not followed is an event lost: one of a shed packet in events
 * mode (in packets mode its record was counted lost once, when it was shed). */
static __always_inline bool shed_event(struct tracked_skb *t)
{
	return capture_mode == BN_MODE_EVENTS && t->rejected == SHED;
}

static __always_inline void unfollowed_hop(struct tracked_skb *t)
{
	if (shed_event(t))
		count_lost();
}

/* Whether a new packet would find room: past shed_above, the rest of the ring is kept for the
 * packets under way, and a new one is shed whole rather than followed into a ring that would
 * take only part of it (at a flood the reader cannot keep up with, following it cost all its
 * hops' work for nothing). Top mode sends only exemplars and never sheds. */
static __always_inline bool ring_has_room(void)
{
	return capture_mode == BN_MODE_TOP || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) <= shed_above;
}

/* How long the filters' "no" holds: 0.1 to 1 s by the kernel's HZ. In jiffies,
 * not the clock: a packet turned away crosses its hooks without reading the
 * clock, which is the costliest thing on that path (read_tsc, in a VM). */
#define REJECTION_JIFFIES 100

static __always_inline bool rejection_fresh(struct tracked_skb *t)
{
	return bpf_jiffies64() - t->judged < REJECTION_JIFFIES;
}

/* The hot path for packets the filters turned away (or shed), before anything else runs:
 * this CPU's slot holds the skb, lately rejected; its state, else NULL. */
static __always_inline struct tracked_skb *turned_away_skb(struct sk_buff *skb)
{
	struct tracked_slot *s = tracked_slot();

	return s && s->skb == (__u64)skb && s->t.rejected && rejection_fresh(&s->t) ? &s->t : NULL;
}

/* As turned_away_skb, counting the hop where it is an event lost. */
static __always_inline bool turned_away(struct sk_buff *skb)
{
	struct tracked_skb *t = turned_away_skb(skb);

	if (!t)
		return false;
	unfollowed_hop(t);
	return true;
}

/* The hop's time, given what `tracked` holds for the skb: none needed for a packet turned away. */
static __always_inline __u64 hop_time(struct tracked_skb *known)
{
	return known && known->rejected && rejection_fresh(known) ? 0 : bpf_ktime_get_ns();
}

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
	tracked_delete((__u64)skb);
}

/* What `tracked` holds for the skb (t, possibly NULL) still describes the packet
 * in it: silence longer than STALE_NS means the memory holds another one. */
static __always_inline bool tracked_fresh(struct tracked_skb *t, __u64 now)
{
	if (!t)
		return false;
	if (t->rejected)
		return rejection_fresh(t);
	return now - t->last_ts < STALE_NS;
}

/* The packet's identity if it is followed, given what `tracked` holds for the
 * skb (t, possibly NULL) at `now`. `start`: this event may begin following it
 * (a watched device); the filters run then, once. */
static __always_inline struct tracked_skb *track_found(struct sk_buff *skb, struct tracked_skb *t, bool start,
						       bool at_rx, __u64 now)
{
	__u64 key = (__u64)skb;
	struct tracked_skb fresh = {};

	if (tracked_fresh(t, now)) {
		if (t->rejected) {
			unfollowed_hop(t);
			return NULL;
		}
		/* The hop's time: reserve() stamps the event with it (one clock read per hop). */
		t->last_ts = now;
		return t;
	}
	if (t) {
		abandon_record(key);
		tracked_delete(key);
	}
	if (!start)
		return NULL;
	fresh.last_ts = now;
	if (!packet_matches(skb, at_rx) || (sample_every > 1 && bpf_get_prandom_u32() % sample_every))
		fresh.rejected = REJECTED_BY_FILTER;
	else if (!ring_has_room())
		fresh.rejected = SHED;
	if (fresh.rejected) {
		if (fresh.rejected == SHED) {
			count_lost(); /* its record, or this hop's event */
			count_lost_as(BN_LOST_SHED);
		}
		fresh.judged = bpf_jiffies64();
		tracked_insert(key, &fresh);
		return NULL;
	}
	fresh.packet_id = __sync_fetch_and_add(&next_packet_id, 1) + 1;
	return tracked_insert(key, &fresh);
}

static __always_inline struct tracked_skb *track_at(struct sk_buff *skb, bool start, bool at_rx)
{
	struct tracked_skb *known = tracked_lookup((__u64)skb);

	return track_found(skb, known, start, at_rx, hop_time(known));
}

static __always_inline struct tracked_skb *track(struct sk_buff *skb, bool start)
{
	return track_at(skb, start, false);
}

#endif
