/* The kernel -> native event layout. Included by every *.bpf.c and by native/.
 * Fixed-width fields, explicit padding: the native side static_asserts the size. */
#ifndef BPFTRACE_NET_EVENTS_H
#define BPFTRACE_NET_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* What produced an event. Mirrored by EventKind in proto/bpftrace_net.proto. */
enum bn_event_kind {
	BN_EV_RX = 1,        /* tp_btf/netif_receive_skb */
	BN_EV_TX_QUEUE = 2,  /* tp_btf/net_dev_queue */
	BN_EV_TX = 3,        /* tp_btf/net_dev_start_xmit */
	BN_EV_NF = 4,        /* netfilter link at one priority slot */
	BN_EV_DROP = 5,      /* tp_btf/kfree_skb */
	BN_EV_CONSUME = 6,   /* tp_btf/consume_skb */
	/* Function tracing (fentry/fexit, kprobe/kretprobe) only: */
	BN_EV_NF_HOOK_ENTER = 7, /* nf_hook_slow entry: a hook with tables to run */
	BN_EV_NF_HOOK_EXIT = 8,  /* nf_hook_slow return: verdict = its result */
	BN_EV_NF_TABLE = 9,      /* *_do_table / nft_do_chain return: table, chain, verdict */
	BN_EV_RX_HANDLER = 10,   /* br_handle_frame return: verdict = rx_handler_result */
	BN_EV_BR_DECISION = 11,  /* the bridge's forwarding decision: detail, ifindex */
	BN_EV_ROUTE = 12,        /* the IP routing decision: detail */
	/* Made by the reader thread from lost_by_packet, never by a program: aux = how many
	 * events of the packet the ring could not take (its end included, which no later
	 * event's sequence number could show). */
	BN_EV_LOST = 13,
};

/* BN_EV_BR_DECISION detail */
enum bn_bridge_decision {
	BN_BR_FORWARD = 1,   /* br_forward: the FDB names one port (ifindex) */
	BN_BR_FLOOD = 2,     /* br_flood: unknown or broadcast destination */
	BN_BR_LOCAL = 3,     /* br_pass_frame_up: addressed to the bridge itself */
};

/* BN_EV_ROUTE detail */
enum bn_route_decision {
	BN_ROUTE_FORWARD = 1,  /* ip_forward / ip6_forward */
	BN_ROUTE_LOCAL = 2,    /* ip_local_deliver / ip6_input */
};

/* BN_EV_NF_TABLE detail: which worker ran the table */
enum bn_table_worker {
	BN_WORKER_NFT = 1,
	BN_WORKER_IPT = 2,
	BN_WORKER_IP6T = 3,
	BN_WORKER_EBT = 4,
	BN_WORKER_ARPT = 5,
};

/* What the kernel hands to user space. */
enum bn_capture_mode {
	BN_MODE_EVENTS = 0,  /* one ring record per hook hit (struct bn_event) */
	BN_MODE_PACKETS = 1, /* hops assembled per skb, one struct bn_record per packet */
	BN_MODE_TOP = 2,     /* packets counted per path signature; one bn_record per new path */
};

/* Settings, as const volatile rodata set before load. */
struct bn_config {
	__u32 target_netns;
	__u32 bridge_ifindex;
	__u32 filter_len;      /* classic BPF instructions in filter_insns; 0: no filter */
	__u32 mark_value;      /* with mark_mask != 0: only packets whose mark & mask == value */
	__u32 mark_mask;
	__u32 mode;            /* enum bn_capture_mode */
	__u32 sample_every;    /* > 1: follow one matching packet in this many, at random */
	__u32 snaplen;         /* packet bytes copied per hop, <= BN_SNAP_MAX; 0: none */
	__u32 wakeup_bytes;    /* wake the reader only once this much is queued (timer flushes the rest) */
	__u32 floor;           /* npm run bench's floor: every program returns at once (the attach points' own cost) */
	__u32 shed_above;      /* events, packets: a new packet is not followed while the ring holds more than this */
};

/* The pcap filter's verdict on the skb arriving on a CPU, from the filter
 * compiled to eBPF (native/filter_compiler.cc), which runs on
 * netif_receive_skb ahead of on_rx; the rest is its working memory.
 * skb 0: no verdict, the interpreter (bpf/filter.bpf.h) decides. */
#define BN_FILTER_FRAME 144    /* Ethernet header + the first 130 bytes after it (8-aligned) */
struct bn_filter_verdict {
	__u64 skb;
	__u32 matched;
	__u32 _pad;
	__u64 pending;         /* the skb being judged */
	__u32 mem[16];         /* classic BPF's M[] */
	__u8 frame[BN_FILTER_FRAME];
};

/* Keys of the lost_events map (bpf/ring.bpf.h). */
#define BN_LOST_EVENTS 0
#define BN_LOST_SHED 1

/* The `hooks` backend's netfilter probes: program i of a pool of identical
 * programs reports nf_slot = i. User space places them where the netns's
 * ruleset has its chains (one at a hook's start, one just after each occupied
 * priority) and keeps what (family, hook, slot) meant: the ruleset's chains
 * between that probe and the one before it (src/model/probes.ts). */
#define BN_PROBE_POOL 16

/* Packet headers as seen at the moment of the event (so NAT is visible). */
struct bn_packet {
	__u8 saddr[16];        /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u8 smac[6];
	__u8 dmac[6];
	__u16 ethertype;       /* host order: 0x0800, 0x86dd, 0x0806 ... */
	__u16 ip_len;          /* IPv4 tot_len / IPv6 payload_len, host order */
	__u16 sport;           /* host order; ICMP: id */
	__u16 dport;           /* host order; ICMP: sequence */
	__u8 ip_version;       /* 0 when not IP */
	__u8 l4proto;          /* IPPROTO_*; ARP: opcode */
	__u8 ttl;              /* TTL / hop limit */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 has_mac;
	__u8 ct_state;         /* 0: no conntrack entry yet; else enum ip_conntrack_info + 1 */
	__u8 tcp_flags;        /* TCP: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80 */
	__u16 vlan_proto;      /* host order: 0x8100 (802.1Q), 0x88a8 (802.1ad); 0: untagged */
	__u16 vlan_tci;        /* the tag: priority (3 bits), DEI (1), VLAN id (12) */
};

struct bn_event {
	__u64 ts;              /* bpf_ktime_get_ns() */
	__u64 packet_id;       /* assigned when the kernel first sees the skb */
	__u64 skb;             /* skb address: identity for clones and reuse */
	__u64 aux;             /* RX: rx_handler address; DROP/CONSUME: location */
	__u32 netns;           /* inode of the netns of the device */
	__u32 ifindex;         /* RX/TX: the device */
	__u32 in_ifindex;      /* NF: state->in */
	__u32 out_ifindex;     /* NF: state->out */
	__u32 physin_ifindex;  /* NF: br_netfilter's physical in port */
	__u32 physout_ifindex; /* NF: br_netfilter's physical out port */
	__u32 reason;          /* DROP: enum skb_drop_reason */
	__u32 mark;
	__s32 verdict;         /* NF_HOOK_EXIT, NF_TABLE, RX_HANDLER: the function's result */
	__u16 seq;             /* event number within the packet */
	__u16 cpu;
	__u8 kind;             /* enum bn_event_kind */
	__u8 nf_family;        /* NFPROTO_*: IPV4 = 2, BRIDGE = 7, IPV6 = 10 */
	__u8 nf_hook;          /* NF_INET_PRE_ROUTING = 0 ... (NF_BR_* alike) */
	__u8 nf_slot;          /* NF: the probe (< BN_PROBE_POOL); NF_HOOK_ENTER: index of the first entry to run */
	__u8 detail;           /* enum bn_bridge_decision / bn_route_decision / bn_table_worker;
	                          NF_HOOK_ENTER: number of entries */
	__u8 _pad;
	__u16 has_snap;        /* a struct bn_snap follows the event */
	struct bn_packet pkt;
	char table[16];        /* NF_TABLE: table name (truncated) */
	union {
		char chain[32];        /* NF_TABLE: nftables chain name (truncated) */
		__s32 priorities[8];   /* NF_HOOK_ENTER: priorities of the hook's entries */
	};
};

#define BN_MAX_PRIORITIES 8

#define BN_EVENT_SIZE 192

/* Packet bytes as seen at a hop, from the Ethernet header when there is one. */
#define BN_SNAP_MAX 256
struct bn_snap {
	__u16 len;             /* bytes captured */
	__u16 from_mac;        /* 1: bytes start at the Ethernet header; 0: at the network header */
	__u32 wire_len;        /* the packet's length from the same start */
	__u8 bytes[BN_SNAP_MAX];
};

/* ---- packets and top modes: one record per packet ------------------------ */

#define BN_MAX_HOPS 32
#define BN_MAX_HEADERS 4
#define BN_MAX_NAMES 4
#define BN_NAME_SIZE 48        /* bn_event.table + chain/priorities */

/* A distinct packet header (and mark) seen along the path: the first one, and
 * every one a hop changed (NAT, TTL). */
struct bn_header {
	struct bn_packet pkt;  /* ct_state is per hop */
	__u32 mark;
	__u32 _pad;
	struct bn_snap snap;
};

/* One hook hit inside a record; the fields of bn_event that vary per hop. */
struct bn_hop {
	__u32 ts_delta;        /* ns since the record's start_ts */
	__u32 ifindex;
	__u32 in_ifindex;
	__u32 out_ifindex;
	__u32 physin_ifindex;
	__u32 physout_ifindex;
	__s32 verdict;
	__u32 reason;
	__u64 aux;             /* NF_TABLE, NF_HOOK_ENTER: index into names */
	__u8 kind;
	__u8 nf_family;
	__u8 nf_hook;
	__u8 nf_slot;
	__u8 detail;
	__u8 header;           /* index into headers */
	__u8 ct_state;
	__u8 cpu;
};

enum bn_record_flags {
	BN_REC_PARTIAL = 1,    /* the packet had more hops than one record holds: more follow */
	BN_REC_EXEMPLAR = 2,   /* top mode: the first packet of a new path signature */
	BN_REC_UNFINISHED = 4, /* the packet never ended while traced (flushed at stop or reuse) */
};

struct bn_record {
	__u64 packet_id;
	__u64 skb;
	__u64 start_ts;
	__u64 signature;       /* top mode: hash of the hops so far */
	__u32 netns;
	__u16 first_seq;       /* seq of hops[0] */
	__u8 n_hops;
	__u8 n_headers;
	__u8 n_names;
	__u8 flags;            /* enum bn_record_flags */
	__u8 _pad[6];
	struct bn_header headers[BN_MAX_HEADERS];
	char names[BN_MAX_NAMES][BN_NAME_SIZE];
	struct bn_hop hops[BN_MAX_HOPS]; /* last: only n_hops of them are sent */
};

/* A record as it leaves the kernel: only what it uses, in this order:
 *   the fixed part (struct bn_record up to `headers`);
 *   n_headers headers, each the fixed part of a bn_header (BN_WIRE_HEADER)
 *   and snap.len bytes, padded to 8;
 *   n_names names of BN_NAME_SIZE; n_hops hops.
 * (native/records.cc expands it back into a struct bn_record.) */
#define BN_WIRE_RECORD __builtin_offsetof(struct bn_record, headers)
#define BN_WIRE_HEADER (__builtin_offsetof(struct bn_header, snap) + __builtin_offsetof(struct bn_snap, bytes))
#define BN_WIRE_PAD8(n) (((n) + 7) & ~7u)

/* The record of the packet a CPU is working on (a per-CPU slot; 0: empty),
 * read by user space at stop for packets still in flight. */
struct bn_record_slot {
	__u64 skb;
	struct bn_record r;
};

/* top mode: per path signature, summed over CPUs by user space. */
struct bn_path_count {
	__u64 packets;
	__u64 bytes;
};

#endif
