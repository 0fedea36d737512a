/* A packet's headers and bytes, read where the skb says they are. */
#ifndef BPFTRACE_NET_HEADERS_BPF_H
#define BPFTRACE_NET_HEADERS_BPF_H

#include "base.bpf.h"

/* Where a packet's headers are: at RX the network header is skb->data,
 * elsewhere the recorded network header (at TX skb->data is the Ethernet
 * header). `eth` says the MAC header sits right before it. */
struct frame_view {
	unsigned char *head;
	unsigned char *data;
	unsigned char *l3;
	unsigned char *tail;
	__u32 len;
	__u16 mac;
	bool eth;
};

static __always_inline void view_frame(struct sk_buff *skb, bool at_rx, struct frame_view *v)
{
	v->head = R(skb, head);
	v->data = R(skb, data);
	v->l3 = at_rx ? v->data : v->head + R(skb, network_header);
	v->tail = v->head + R(skb, tail);
	v->len = R(skb, len);
	v->mac = R(skb, mac_header);
	v->eth = v->mac != MAC_HEADER_UNSET && v->head + v->mac + ETH_HLEN == v->l3;
}

#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_HLEN 4

/* Before 6.2 a bit says the kernel holds a tag beside the packet; since, a non-zero vlan_all. */
struct sk_buff___vlan_present {
	__u8 vlan_present:1;
} __attribute__((preserve_access_index));

/* The VLAN tag the kernel holds beside the packet (hardware-accelerated, or
 * moved there at RX), if any. */
static __always_inline void read_vlan_tag(struct sk_buff *skb, struct bn_packet *p)
{
	__u16 proto = R(skb, vlan_proto);
	bool present;

	if (bpf_core_field_exists(struct sk_buff___vlan_present, vlan_present))
		present = BPF_CORE_READ_BITFIELD_PROBED((struct sk_buff___vlan_present *)skb, vlan_present);
	else
		present = proto != 0;
	if (!present)
		return;
	p->vlan_proto = bpf_ntohs(proto);
	p->vlan_tci = R(skb, vlan_tci);
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
	if (p->ethertype == ETH_P_8021Q || p->ethertype == ETH_P_8021AD) {
		/* Tagged in band (at RX, before the kernel moves the tag beside the
		 * packet): the network header is 4 bytes on. */
		p->vlan_proto = p->ethertype;
		p->vlan_tci = (net[0] << 8) | net[1];
		p->ethertype = (net[2] << 8) | net[3];
		l3 += VLAN_HLEN;
		if (bpf_probe_read_kernel(net, HEADER_BYTES - ETH_HLEN, l3))
			return;
	} else {
		read_vlan_tag(skb, p);
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
static __always_inline void read_snap(struct bn_snap *snap, const struct frame_view *v)
{
	unsigned char *start = v->eth ? v->head + v->mac : v->l3, *end = v->tail;
	unsigned char *data = v->data;
	__u32 len = v->len, n;

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

/* Headers always; bytes too when a snaplen was asked for. An event folded into
 * a record keeps where the bytes are instead (struct frame_view after it): the
 * record reads them only when the headers changed, which few hops do. */
static __always_inline void read_headers(struct sk_buff *skb, struct bn_event *e, bool at_rx)
{
	struct frame_view v;

	view_frame(skb, at_rx, &v);
	read_packet(skb, &e->pkt, &v);
	if (!snaplen || !e->has_snap)
		return;
	if (capture_mode == BN_MODE_EVENTS)
		read_snap((struct bn_snap *)(e + 1), &v);
	else
		__builtin_memcpy(e + 1, &v, sizeof(v));
}

#endif
