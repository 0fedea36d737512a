/* The ring buffer events leave by, and the count of what it could not take:
 * never silent loss. */
#ifndef BPFTRACE_NET_RING_BPF_H
#define BPFTRACE_NET_RING_BPF_H

#include "base.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized before load */
} events SEC(".maps");

/* Per CPU, never silent loss: [BN_LOST_EVENTS] events (records in packets mode) the ring
 * could not take, [BN_LOST_SHED] packets shed whole because it was nearly full (their events
 * or records are in the first count too). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/* Events lost per packet (packet id -> count), drained by the reader thread into
 * BN_EV_LOST events: a packet whose last events were lost says so too. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} lost_by_packet SEC(".maps");

static __always_inline void count_lost_as(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&lost_events, &what);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void count_lost(void)
{
	count_lost_as(BN_LOST_EVENTS);
}

static __always_inline void count_packet_lost(__u64 packet_id)
{
	__u32 one = 1, *n = bpf_map_lookup_elem(&lost_by_packet, &packet_id);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&lost_by_packet, &packet_id, &one, BPF_NOEXIST);
}

/* Wakes the reader once, for the record that makes the queue cross
 * wakeup_bytes; its timer picks up anything less within its poll interval.
 * Never on every record past that point: while the reader is behind, a wakeup
 * per record (an irq_work each) slowed the traced packets several times over.
 * `queued` counts this record. */
static __always_inline __u64 wakeup_flags(__u64 queued, __u64 size)
{
	/* + 8: the ring's own header of each record. */
	return queued >= wakeup_bytes && queued < wakeup_bytes + size + 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#endif
