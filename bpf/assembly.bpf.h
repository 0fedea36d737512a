/* Packets and top modes: hops are assembled per skb in the kernel and leave
 * as one bn_record when the packet ends (or fills a record), instead of one
 * ring record per hop. In top mode records only count toward their path
 * signature; the first packet of each new path is sent as its exemplar. */
#ifndef BPFTRACE_NET_ASSEMBLY_BPF_H
#define BPFTRACE_NET_ASSEMBLY_BPF_H

#include "ring.bpf.h"
#include "nesting.bpf.h"
#include "headers.bpf.h"

/* ---- maps ---------------------------------------------------------------- */

/* skb address -> the record of a packet under assembly that is not the one
 * its CPU is working on (bpf/nesting.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096); /* resized before load; 1 in events mode */
	__type(key, __u64);
	__type(value, struct bn_record);
} assembly SEC(".maps");

/* The record of the packet this CPU is working on: a new packet's record starts
 * here and goes to `assembly` only if another packet replaces it before it ends.
 * User space reads these too when it stops (records of packets in flight). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bn_record_slot);
} record_here SEC(".maps");

/* A blank record to start from (map values may be copied into maps, the
 * stack is too small for one). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bn_record);
} record_blank SEC(".maps");

/* top mode: path signature -> packets, bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct bn_path_count);
} paths SEC(".maps");

/* Where a hop is built before it is folded into its record: one event (and
 * where its bytes are) per nesting level, since a softirq may interrupt a
 * program mid-hop. */
#define SCRATCH_LEVELS 4
struct scratch_event {
	struct bn_event event;
	struct frame_view bytes_at;  /* read into the record only if the headers changed */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_LEVELS);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scratch_depth SEC(".maps");

/* An index into one of a record's arrays (power-of-two sized). The compiler
 * drops a mask it can prove redundant, and some verifiers (6.1's, 6.12's) then
 * lose the bound across a spill; hidden from the compiler, the mask stays. */
static __always_inline __u32 slot_index(__u32 i, __u32 size)
{
	asm volatile("" : "+r"(i));
	return i & (size - 1);
}

/* As tracked_stored (bpf/tracking.bpf.h), for `assembly`: while 0, a new packet's
 * first hop and every end of one not in the slot cost no hash lookup. */
__u64 assembly_stored = 0;

/* 0 when stored; else the map's error. */
static __always_inline long assembly_store(__u64 *key, struct bn_record *r)
{
	long err;

	__sync_fetch_and_add(&assembly_stored, 1);
	err = bpf_map_update_elem(&assembly, key, r, BPF_ANY);
	if (err)
		__sync_fetch_and_add(&assembly_stored, -1);
	return err;
}

static __always_inline struct bn_record *assembly_lookup(__u64 *key)
{
	return assembly_stored ? bpf_map_lookup_elem(&assembly, key) : NULL;
}

static __always_inline void assembly_delete(__u64 *key)
{
	if (bpf_map_delete_elem(&assembly, key) == 0)
		__sync_fetch_and_add(&assembly_stored, -1);
}

/* ---- scratch ------------------------------------------------------------- */

static __always_inline struct bn_event *scratch_take(void)
{
	__u32 zero = 0, level;
	__u32 *depth = bpf_map_lookup_elem(&scratch_depth, &zero);
	struct scratch_event *s;

	if (!depth || *depth >= SCRATCH_LEVELS)
		return NULL;
	level = *depth;
	s = bpf_map_lookup_elem(&scratch, &level);
	if (!s)
		return NULL;
	*depth = level + 1;
	return &s->event;
}

static __always_inline void scratch_give_back(void)
{
	__u32 zero = 0;
	__u32 *depth = bpf_map_lookup_elem(&scratch_depth, &zero);

	if (depth && *depth)
		*depth -= 1;
}

/* ---- records ------------------------------------------------------------- */

/* A count bounded for the verifier, the bound hidden from the compiler so it stays. */
static __always_inline __u64 at_most(__u64 n, __u64 max)
{
	asm volatile("" : "+r"(n));
	if (n > max)
		n = max;
	asm volatile("" : "+r"(n));
	return n;
}

/* Sends the record compactly (BN_WIRE_RECORD in bpf/events.h): the headers it
 * uses with the bytes they hold, its names and hops, nothing of the rest. */
static __always_inline void emit_record(struct bn_record *r, __u8 flags)
{
	__u32 n_headers = at_most(r->n_headers, BN_MAX_HEADERS), n_names = at_most(r->n_names, BN_MAX_NAMES);
	__u32 n_hops = at_most(r->n_hops, BN_MAX_HOPS), header_size[BN_MAX_HEADERS] = {}, size, off;
	struct bpf_dynptr out;
	__u64 queued;

	size = BN_WIRE_RECORD + n_names * BN_NAME_SIZE + n_hops * sizeof(struct bn_hop);
	for (int i = 0; i < BN_MAX_HEADERS; i++) {
		if (i >= n_headers)
			break;
		header_size[i] = BN_WIRE_HEADER + BN_WIRE_PAD8(at_most(r->headers[i].snap.len, BN_SNAP_MAX));
		size += header_size[i];
	}
	r->flags = flags;
	/* What was queued before this record: the wakeup decision counts it once. */
	queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size;
	if (bpf_ringbuf_reserve_dynptr(&events, size, 0, &out)) {
		bpf_ringbuf_discard_dynptr(&out, 0);
		count_lost();
		return;
	}
	bpf_dynptr_write(&out, 0, r, BN_WIRE_RECORD, 0);
	off = BN_WIRE_RECORD;
	for (int i = 0; i < BN_MAX_HEADERS; i++) {
		if (i >= n_headers)
			break;
		bpf_dynptr_write(&out, off, &r->headers[i], at_most(header_size[i], sizeof(r->headers[i])), 0);
		off += header_size[i];
	}
	if (n_names) {
		bpf_dynptr_write(&out, off, r->names, at_most(n_names * BN_NAME_SIZE, sizeof(r->names)), 0);
		off += n_names * BN_NAME_SIZE;
	}
	bpf_dynptr_write(&out, off, r->hops, at_most(n_hops * sizeof(struct bn_hop), sizeof(r->hops)), 0);
	bpf_ringbuf_submit_dynptr(&out, wakeup_flags(queued, size));
}

/* Starts the next record of the same packet after a full one was sent. */
static __always_inline void restart_record(struct bn_record *r, struct bn_event *e)
{
	if (r->n_headers) {
		__u32 last = slot_index(r->n_headers - 1, BN_MAX_HEADERS);

		if (last)
			__builtin_memcpy(&r->headers[0], &r->headers[last], sizeof(r->headers[0]));
		r->n_headers = 1;
	}
	r->n_hops = 0;
	r->n_names = 0;
	r->start_ts = e->ts;
	r->first_seq = e->seq;
}

static __always_inline struct bn_record_slot *record_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&record_here, &zero);
}

static __always_inline void start_record(struct bn_record *r, struct bn_event *e)
{
	r->packet_id = e->packet_id;
	r->skb = e->skb;
	r->start_ts = e->ts;
	r->first_seq = e->seq;
	r->netns = e->netns;
	r->signature = 0;
	r->n_hops = r->n_headers = r->n_names = r->flags = 0;
}

static __always_inline struct bn_record *record_for(struct bn_event *e)
{
	__u64 key = e->skb;
	__u32 zero = 0;
	struct bn_record_slot *s = record_slot();
	struct bn_record *r;

	if (s && s->skb == key && s->r.packet_id == e->packet_id)
		return &s->r;
	r = assembly_lookup(&key);
	if (r && r->packet_id == e->packet_id)
		return r;
	if (s && nest_outermost()) {
		/* The packet this CPU was on goes on later (a queue), or never: keep its record. */
		if (s->skb && s->skb != key && assembly_store(&s->skb, &s->r))
			count_lost();
		s->skb = key;
		start_record(&s->r, e);
		return &s->r;
	}
	r = bpf_map_lookup_elem(&record_blank, &zero);
	if (!r)
		return NULL;
	start_record(r, e);
	if (assembly_store(&key, r))
		return NULL;
	return bpf_map_lookup_elem(&assembly, &key);
}

/* Same headers (and mark) as the record's latest, ignoring conntrack state. */
static __always_inline bool same_header(struct bn_header *h, struct bn_event *e)
{
	__u64 *a = (__u64 *)&h->pkt, *b = (__u64 *)&e->pkt;

	if (h->mark != e->mark)
		return false;
	/* Everything before icmp_code in 8-byte words, then icmp_code and has_mac. */
	for (int i = 0; i < 7; i++)
		if (a[i] != b[i])
			return false;
	return h->pkt.icmp_code == e->pkt.icmp_code && h->pkt.has_mac == e->pkt.has_mac;
}

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* What makes two packets take "the same path": where and how each hop went,
 * not when, not on which CPU, not with which addresses. */
static __always_inline __u64 hop_signature(__u64 h, struct bn_hop *hop, struct bn_event *e)
{
	h = mix(h, (__u64)hop->kind | (__u64)hop->nf_family << 8 | (__u64)hop->nf_hook << 16 |
			   (__u64)hop->nf_slot << 24 | (__u64)hop->detail << 32 | (__u64)hop->ct_state << 40);
	h = mix(h, (__u64)hop->ifindex | (__u64)hop->in_ifindex << 32);
	h = mix(h, (__u64)hop->out_ifindex | (__u64)hop->physin_ifindex << 32);
	h = mix(h, (__u64)hop->physout_ifindex | (__u64)(__u32)hop->verdict << 32);
	h = mix(h, (__u64)hop->reason);
	if (hop->kind == BN_EV_NF_TABLE) {
		__u32 *name = (__u32 *)e->table;

		for (int i = 0; i < BN_NAME_SIZE / 4; i++)
			h = mix(h, name[i]);
	}
	return h;
}

/* Folds one built event into its packet's record. */
static __always_inline void record_hop(struct bn_event *e)
{
	struct bn_record *r = record_for(e);
	bool named = e->kind == BN_EV_NF_TABLE || e->kind == BN_EV_NF_HOOK_ENTER;
	struct bn_hop *hop;
	__u32 header = 0;
	bool new_header;

	if (!r) {
		count_lost();
		return;
	}
	new_header = !r->n_headers || !same_header(&r->headers[slot_index(r->n_headers - 1, BN_MAX_HEADERS)], e);
	if (r->n_hops >= BN_MAX_HOPS || (named && r->n_names >= BN_MAX_NAMES) ||
	    (new_header && r->n_headers >= BN_MAX_HEADERS)) {
		if (capture_mode == BN_MODE_PACKETS)
			emit_record(r, BN_REC_PARTIAL);
		restart_record(r, e);
		new_header = !r->n_headers || !same_header(&r->headers[0], e);
	}
	if (new_header) {
		struct bn_header *h = &r->headers[slot_index(r->n_headers, BN_MAX_HEADERS)];

		__builtin_memcpy(&h->pkt, &e->pkt, sizeof(h->pkt));
		h->mark = e->mark;
		if (e->has_snap)
			read_snap(&h->snap, (struct frame_view *)(e + 1));
		else
			h->snap.len = 0;
		r->n_headers++;
	}
	header = slot_index(r->n_headers - 1, BN_MAX_HEADERS);
	hop = &r->hops[slot_index(r->n_hops, BN_MAX_HOPS)];
	hop->ts_delta = e->ts - r->start_ts > 0xffffffffULL ? 0xffffffff : e->ts - r->start_ts;
	hop->ifindex = e->ifindex;
	hop->in_ifindex = e->in_ifindex;
	hop->out_ifindex = e->out_ifindex;
	hop->physin_ifindex = e->physin_ifindex;
	hop->physout_ifindex = e->physout_ifindex;
	hop->verdict = e->verdict;
	hop->reason = e->reason;
	hop->aux = e->aux;
	hop->kind = e->kind;
	hop->nf_family = e->nf_family;
	hop->nf_hook = e->nf_hook;
	hop->nf_slot = e->nf_slot;
	hop->detail = e->detail;
	hop->header = header;
	hop->ct_state = e->pkt.ct_state;
	hop->cpu = e->cpu;
	if (named) {
		__u32 n = slot_index(r->n_names, BN_MAX_NAMES);

		__builtin_memcpy(r->names[n], e->table, BN_NAME_SIZE);
		hop->aux = n;
		r->n_names++;
	}
	if (capture_mode == BN_MODE_TOP)
		r->signature = hop_signature(r->signature, hop, e);
	r->n_hops++;
}

/* top mode: the finished packet counts toward its path; a path never seen
 * before sends this packet as its exemplar. */
static __always_inline void count_path(struct bn_record *r, struct sk_buff *skb)
{
	struct bn_path_count *c = bpf_map_lookup_elem(&paths, &r->signature);
	struct bn_path_count first = {};

	if (!c) {
		first.packets = 1;
		first.bytes = R(skb, len);
		if (bpf_map_update_elem(&paths, &r->signature, &first, BPF_NOEXIST) == 0)
			emit_record(r, BN_REC_EXEMPLAR);
		else if (!(c = bpf_map_lookup_elem(&paths, &r->signature)))
			count_lost(); /* the path table is full */
	}
	if (c) {
		c->packets++;
		c->bytes += R(skb, len);
	}
}

/* The packet ended (left, was dropped or consumed): send or count its record. */
static __always_inline void finish_record(struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	struct bn_record_slot *s;
	struct bn_record *r;

	if (capture_mode == BN_MODE_EVENTS)
		return;
	s = record_slot();
	if (s && s->skb == key) {
		if (capture_mode == BN_MODE_PACKETS)
			emit_record(&s->r, 0);
		else
			count_path(&s->r, skb);
		s->skb = 0;
		return;
	}
	r = assembly_lookup(&key);
	if (!r) {
		/* Its hops were folded into a record the LRU map since evicted: not silent. */
		count_lost();
		return;
	}
	if (capture_mode == BN_MODE_PACKETS)
		emit_record(r, 0);
	else
		count_path(r, skb);
	assembly_delete(&key);
}

/* The skb's memory now holds another packet: send what the old one had. */
static __always_inline void abandon_record(__u64 key)
{
	struct bn_record_slot *s;
	struct bn_record *r;

	if (capture_mode != BN_MODE_PACKETS)
		return;
	s = record_slot();
	if (s && s->skb == key) {
		emit_record(&s->r, BN_REC_UNFINISHED);
		s->skb = 0;
		return;
	}
	r = assembly_lookup(&key);
	if (!r)
		return;
	emit_record(r, BN_REC_UNFINISHED);
	assembly_delete(&key);
}

/* The packet may go on on another CPU (a queue another CPU empties): its record
 * moves where that CPU finds it. */
static __always_inline void record_publish(__u64 key)
{
	struct bn_record_slot *s;

	if (capture_mode == BN_MODE_EVENTS)
		return;
	s = record_slot();
	if (s && s->skb == key) {
		if (assembly_store(&key, &s->r))
			count_lost();
		s->skb = 0;
	}
}

#endif
