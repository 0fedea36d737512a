/* Shared by every backend object: maps, settings, packet identity, event
 * reservation and header parsing. Included once per *.bpf.c. */
#ifndef BPFTRACE_NET_COMMON_BPF_H
#define BPFTRACE_NET_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_ACCEPT 1
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define MAC_HEADER_UNSET 0xffff
#define IPPROTO_ICMPV6 58

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

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized before load */
} events SEC(".maps");

/* Ring-buffer reservations that failed, per CPU: never silent loss. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
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

/* ---- configuration (rodata, set before load) ----------------------------- */

const volatile struct bn_config bn_config = {};
#define target_netns (bn_config.target_netns)
#define bridge_ifindex (bn_config.bridge_ifindex)
#define filter_len (bn_config.filter_len)
#define mark_value (bn_config.mark_value)
#define mark_mask (bn_config.mark_mask)
#define capture_mode (bn_config.mode)
#define sample_every (bn_config.sample_every)
#define snaplen (bn_config.snaplen)
#define wakeup_bytes (bn_config.wakeup_bytes)
#define floor_only (bn_config.floor)

__u64 next_packet_id = 0;

/* ---- helpers ------------------------------------------------------------- */

/* One field of a kernel pointer. Where every pointer is one the verifier has
 * typed from BTF (tp_btf arguments, netfilter contexts and what they point to:
 * the hooks backend), a plain CO-RE-relocated load; elsewhere (kprobes, and
 * pointers fentry programs read out of other structures) bpf_probe_read_kernel,
 * several times slower on a path taken ~20 times per packet. */
#ifdef BN_BTF_POINTERS
#define R(p, field) ((p)->field)
#define R2(p, a, b) ((p)->a->b)
#else
#define R(p, field) BPF_CORE_READ(p, field)
#define R2(p, a, b) BPF_CORE_READ(p, a, b)
#endif

/* 6.1 kernels keep the physical in-port as a pointer, 6.8+ as an ifindex. */
struct nf_bridge_info___pointer {
	struct net_device *physindev;
} __attribute__((preserve_access_index));

static __always_inline __u32 dev_ifindex(struct net_device *dev)
{
	return dev ? R(dev, ifindex) : 0;
}

static __always_inline __u32 dev_netns(struct net_device *dev)
{
	return dev ? R2(dev, nd_net.net, ns.inum) : 0;
}

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

#include "filter.bpf.h"

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost_events, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
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

#include "assembly.bpf.h"

/* Where a packet's headers are: at RX the network header is skb->data,
 * elsewhere the recorded network header (at TX skb->data is the Ethernet
 * header). `eth` says the MAC header sits right before it. */
struct frame_view {
	unsigned char *head;
	unsigned char *data;
	unsigned char *l3;
	__u16 mac;
	bool eth;
};

static __always_inline void view_frame(struct sk_buff *skb, bool at_rx, struct frame_view *v)
{
	v->head = R(skb, head);
	v->data = R(skb, data);
	v->l3 = at_rx ? v->data : v->head + R(skb, network_header);
	v->mac = R(skb, mac_header);
	v->eth = v->mac != MAC_HEADER_UNSET && v->head + v->mac + ETH_HLEN == v->l3;
}

/* The filters that decide whether a packet is followed at all: mark, then the
 * pcap expression. */
static __always_inline bool packet_matches(struct sk_buff *skb, bool at_rx)
{
	struct frame_view v;
	struct cbpf_ctx c;
	struct cbpf_state *s;
	__u32 skb_len, before, zero = 0, level, *depth;
	__u16 proto;
	bool matched;

	if (mark_mask && (R(skb, mark) & mark_mask) != mark_value)
		return false;
	if (!filter_len)
		return true;
	depth = bpf_map_lookup_elem(&filter_depth, &zero);
	if (!depth || *depth >= FILTER_LEVELS)
		return false;
	level = *depth;
	s = bpf_map_lookup_elem(&filter_state, &level);
	if (!s)
		return false;
	*depth = level + 1;
	__builtin_memset(s, 0, __builtin_offsetof(struct cbpf_state, l3buf));
	view_frame(skb, at_rx, &v);
	s->l3 = v.l3;
	skb_len = R(skb, len);
	before = v.l3 > v.data ? v.l3 - v.data : 0;
	s->len = ETH_HLEN + (skb_len > before ? skb_len - before : 0);
	if (!v.eth || bpf_probe_read_kernel(s->eth, ETH_HLEN, v.head + v.mac)) {
		/* No Ethernet header (locally generated): zero MACs and the protocol. */
		proto = R(skb, protocol);
		__builtin_memcpy(&s->eth[12], &proto, 2);
	}
	/* One copy of the first bytes serves nearly every load the program makes. */
	{
		__u32 n = s->len > ETH_HLEN ? s->len - ETH_HLEN : 0;

		if (n > sizeof(s->l3buf))
			n = sizeof(s->l3buf);
		/* A no-op after the clamp; the verifier keeps this bound, not the compare's. */
		n &= 0xff;
		if (n > sizeof(s->l3buf))
			n = sizeof(s->l3buf);
		s->cached = bpf_probe_read_kernel(s->l3buf, n, v.l3) ? 0 : n;
	}
	c.s = s;
	bpf_loop(filter_len, cbpf_step, &c, 0);
	matched = s->result != 0;
	*depth = level;
	return matched;
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

/* The L4 bytes read: ports, ICMP's first 8, TCP's flags at 13. */
#define L4_BYTES 14

/* Ports and TCP flags (or ICMP type, code, id, sequence) from the start of L4. */
static __always_inline void parse_l4(struct bn_packet *p, const __u8 *l4)
{
	if (p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP) {
		p->sport = (l4[0] << 8) | l4[1];
		p->dport = (l4[2] << 8) | l4[3];
		if (p->l4proto == IPPROTO_TCP)
			p->tcp_flags = l4[13];
	} else if (p->l4proto == IPPROTO_ICMP || p->l4proto == IPPROTO_ICMPV6) {
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		p->sport = (l4[4] << 8) | l4[5];
		p->dport = (l4[6] << 8) | l4[7];
	}
}

/* Ethernet + IPv6 + L4_BYTES (68, rounded up to 8), or Ethernet + IPv4 + L4_BYTES: one read covers both. */
#define HEADER_BYTES 72

/* The headers are copied in one read (they are the hot path's main cost); only
 * IPv4 options or a detached MAC header take a second. */
static __always_inline void read_packet(struct sk_buff *skb, struct bn_packet *p, const struct frame_view *v)
{
	unsigned char *head = v->head, *l3 = v->l3;
	__u16 mac = v->mac;
	/* Two bytes ahead of the Ethernet header put the network header on an
	 * 8-byte boundary: the verifier refuses misaligned stack loads. */
	__u8 raw[HEADER_BYTES + 2] __attribute__((aligned(8))) = {};
	__u8 *buf = raw + 2;
	__u8 *net = raw + 2 + ETH_HLEN;

	p->ethertype = bpf_ntohs(R(skb, protocol));
	/* skb->_nfct: the conntrack entry with ip_conntrack_info in its low 3 bits. */
	if (bpf_core_field_exists(skb->_nfct)) {
		unsigned long nfct = R(skb, _nfct);

		if (nfct)
			p->ct_state = (nfct & 7) + 1;
	}
	if (v->eth) {
		if (bpf_probe_read_kernel(buf, HEADER_BYTES, head + mac))
			return;
		p->has_mac = 1;
	} else {
		if (mac != MAC_HEADER_UNSET && bpf_probe_read_kernel(buf, ETH_HLEN, head + mac) == 0)
			p->has_mac = 1;
		if (bpf_probe_read_kernel(net, HEADER_BYTES - ETH_HLEN, l3))
			return;
	}
	if (p->has_mac) {
		__builtin_memcpy(p->dmac, buf, 6);
		__builtin_memcpy(p->smac, buf + 6, 6);
	}

	if (p->ethertype == ETH_P_IP) {
		struct iphdr *ip = (struct iphdr *)net;

		p->ip_version = 4;
		p->l4proto = ip->protocol;
		p->ttl = ip->ttl;
		p->ip_len = bpf_ntohs(ip->tot_len);
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		if (ip->frag_off & bpf_htons(0x1fff))
			return;
		if (ip->ihl == 5) {
			parse_l4(p, net + sizeof(struct iphdr));
		} else {
			__u8 l4[L4_BYTES];

			if (bpf_probe_read_kernel(l4, sizeof(l4), l3 + ip->ihl * 4) == 0)
				parse_l4(p, l4);
		}
	} else if (p->ethertype == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)net;

		p->ip_version = 6;
		p->l4proto = ip6->nexthdr;
		p->ttl = ip6->hop_limit;
		p->ip_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		parse_l4(p, net + sizeof(struct ipv6hdr));
	} else if (p->ethertype == ETH_P_ARP) {
		p->l4proto = net[7]; /* opcode, low byte */
		__builtin_memcpy(p->saddr, net + 14, 4);
		__builtin_memcpy(p->daddr, net + 24, 4);
	}
}

/* The packet's bytes from its Ethernet header (or its network header when it
 * has none), as far as the linear data goes. */
static __always_inline void read_snap(struct sk_buff *skb, struct bn_snap *snap, const struct frame_view *v)
{
	unsigned char *start = v->eth ? v->head + v->mac : v->l3, *end = v->head + R(skb, tail);
	unsigned char *data = v->data;
	__u32 len = R(skb, len), n;

	snap->from_mac = v->eth;
	snap->wire_len = start <= data ? len + (data - start) : len - (start - data);
	n = end > start ? end - start : 0;
	if (n > snaplen)
		n = snaplen;
	if (n > BN_SNAP_MAX)
		n = BN_SNAP_MAX;
	/* Hide the bound from the compiler so the mask survives for the verifier. */
	asm volatile("" : "+r"(n));
	n &= 2 * BN_SNAP_MAX - 1;
	if (n > BN_SNAP_MAX)
		n = BN_SNAP_MAX;
	if (bpf_probe_read_kernel(snap->bytes, n, start))
		n = 0;
	snap->len = n;
}

/* Headers only (a door hop has no room for bytes). */
static __always_inline void read_headers_only(struct sk_buff *skb, struct bn_event *e, bool at_rx)
{
	struct frame_view v;

	view_frame(skb, at_rx, &v);
	read_packet(skb, &e->pkt, &v);
}

/* Headers always; bytes too when a snaplen was asked for. */
static __always_inline void read_headers(struct sk_buff *skb, struct bn_event *e, bool at_rx)
{
	struct frame_view v;

	view_frame(skb, at_rx, &v);
	read_packet(skb, &e->pkt, &v);
	if (snaplen && e->has_snap)
		read_snap(skb, (struct bn_snap *)(e + 1), &v);
}

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
		if (capture_mode == BN_MODE_EVENTS)
			count_packet_lost(t->packet_id);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->has_snap = snaplen != 0;
	e->ts = bpf_ktime_get_ns();
	t->last_ts = e->ts;
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

/* The packet leaves the traced bridge (or dies): its record is complete. */
static __always_inline void finish(struct sk_buff *skb)
{
	finish_record(skb);
	untrack(skb);
}

static __always_inline void read_bridge_ports(struct sk_buff *skb, __u32 *physin, __u32 *physout)
{
	int ext_id = bpf_core_enum_value(enum skb_ext_id, SKB_EXT_BRIDGE_NF);
	struct skb_ext *ext;
	void *info;
	__u8 off;

	if (!(R(skb, active_extensions) & (1 << ext_id)))
		return;
	ext = BPF_CORE_READ(skb, extensions);
	if (!ext || bpf_probe_read_kernel(&off, 1, &ext->offset[ext_id & 3]))
		return;
	info = (void *)ext + ((__u32)off << 3);
	if (bpf_core_field_exists(struct nf_bridge_info, physinif)) {
		*physin = BPF_CORE_READ((struct nf_bridge_info *)info, physinif);
	} else {
		struct nf_bridge_info___pointer *old = info;

		*physin = BPF_CORE_READ(old, physindev, ifindex);
	}
	*physout = BPF_CORE_READ((struct nf_bridge_info *)info, physoutdev, ifindex);
}

#include "door.bpf.h"

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
	struct tracked_skb *known = bpf_map_lookup_elem(&tracked, &key);
	__u32 netns, in_if, out_if, physin = 0, physout = 0;
	struct tracked_skb *t;
	struct bn_event *e;
	bool watched = false;

	/* The hot path for packets the filters turned away: one lookup, nothing read. */
	if (known && known->rejected && bpf_ktime_get_ns() - known->last_ts < STALE_NS)
		return NULL;
	netns = R2(state, net, ns.inum);
	if (netns != target_netns)
		return NULL;
	in_if = dev_ifindex(R(state, in));
	out_if = dev_ifindex(R(state, out));
	read_bridge_ports(skb, &physin, &physout);
	if (!known && may_start)
		watched = ifindex_watched(in_if) || ifindex_watched(out_if) ||
			  ifindex_watched(physin) || ifindex_watched(physout);
	t = track_found(skb, known, watched && may_start, false);
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
	struct table_call *c = bpf_map_lookup_elem(&table_calls, &zero);

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
