/* A classic BPF (tcpdump / pcap-filter) interpreter, run once per packet at
 * its first hook, where the same filter compiled to eBPF (native/filter_compiler.cc,
 * on netif_receive_skb ahead of on_rx) has not already decided: packets that
 * start at a netfilter hook, loads past the bytes that one copies. The program comes from pcap_compile in user space and is
 * copied into filter_insns before attach; bpf_loop keeps the verifier's work to
 * one iteration. The packet is seen as an Ethernet frame: the real MAC header
 * where the kernel has one, else one made of zeros and the ethertype (locally
 * generated packets), followed by the network header. */
#ifndef BPFTRACE_NET_FILTER_BPF_H
#define BPFTRACE_NET_FILTER_BPF_H

#include "base.bpf.h"
#include "headers.bpf.h"

#define FILTER_MAX_INSNS 512

/* struct sock_filter */
struct cbpf_insn {
	__u16 code;
	__u8 jt;
	__u8 jf;
	__u32 k;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FILTER_MAX_INSNS);
	__type(key, __u32);
	__type(value, struct cbpf_insn);
} filter_insns SEC(".maps");

struct cbpf_state {
	__u32 A, X;
	__u32 M[16];
	__u32 pc;
	__u32 result;
	bool done;
	unsigned char *l3;
	__u32 len;            /* virtual frame length: ETH_HLEN + network bytes */
	__u8 eth[16];         /* ETH_HLEN used; 16 so that a masked index stays inside */
	__u32 cached;         /* network bytes copied into l3buf */
	/* IPv4 + options + TCP/UDP, IPv6 + 88 bytes of L4; beyond, a load reads the packet. */
	__u8 l3buf[128];
};

/* The interpreter's state lives in a per-CPU map, not on the stack: the verifier tracks every
 * stack slot of a bpf_loop callback's caller and checks the callback until those states
 * converge, once per program that filters, which took seconds (more for longer filters).
 * Map memory it does not track, so the callback converges at once. Levels, as for the event
 * scratch, because a hook can run inside another on the same CPU. */
#define FILTER_LEVELS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FILTER_LEVELS);
	__type(key, __u32);
	__type(value, struct cbpf_state);
} filter_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} filter_depth SEC(".maps");

/* Verdicts of the compiled filter (bn_filter_verdict in bpf/events.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bn_filter_verdict);
} filter_verdicts SEC(".maps");

/* The compiled filter's verdict on this skb at its RX, taken once; -1: none. */
static __always_inline int compiled_verdict(struct sk_buff *skb)
{
	__u32 zero = 0;
	struct bn_filter_verdict *v = bpf_map_lookup_elem(&filter_verdicts, &zero);

	if (!v || v->skb != (__u64)skb)
		return -1;
	v->skb = 0;
	return v->matched != 0;
}

/* bpf_loop takes a stack pointer as the callback's context: this one holds the state's address. */
struct cbpf_ctx {
	struct cbpf_state *s;
};

/* classic BPF opcodes (linux/filter.h, linux/bpf_common.h) */
#define C_CLASS(c) ((c) & 0x07)
#define C_SIZE(c) ((c) & 0x18)
#define C_MODE(c) ((c) & 0xe0)
#define C_OP(c) ((c) & 0xf0)
#define C_SRC(c) ((c) & 0x08)
#define C_RVAL(c) ((c) & 0x18)
#define C_MISCOP(c) ((c) & 0xf8)
enum { C_LD = 0, C_LDX = 1, C_ST = 2, C_STX = 3, C_ALU = 4, C_JMP = 5, C_RET = 6, C_MISC = 7 };
enum { C_W = 0x00, C_H = 0x08, C_B = 0x10 };
enum { C_IMM = 0x00, C_ABS = 0x20, C_IND = 0x40, C_MEM = 0x60, C_LEN = 0x80, C_MSH = 0xa0 };
enum { C_K = 0x00, C_X = 0x08, C_A = 0x10 };

/* Loads size bytes (1, 2, 4) at offset off of the virtual frame, big-endian; false if out of it. */
static __always_inline bool cbpf_load(struct cbpf_state *s, __u32 off, __u32 size, __u32 *out)
{
	__u8 b[4] = {};

	if (off > 0xffff || size > 4 || off + size > s->len)
		return false;
	for (__u32 i = 0; i < 4; i++) {
		__u32 o = off + i;

		if (i >= size)
			break;
		if (o < ETH_HLEN) {
			__u32 idx = o;

			/* Opaque to the compiler, so the mask the verifier needs survives. */
			asm volatile("" : "+r"(idx));
			b[i] = s->eth[idx & 15];
		} else {
			__u32 n = o - ETH_HLEN;

			asm volatile("" : "+r"(n));
			if (n < s->cached && n < sizeof(s->l3buf))
				b[i] = s->l3buf[n & (sizeof(s->l3buf) - 1)];
			else if (bpf_probe_read_kernel(&b[i], 1, s->l3 + n))
				return false;
		}
	}
	*out = size == 1 ? b[0] : size == 2 ? ((__u32)b[0] << 8) | b[1]
					  : ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
	return true;
}

static long cbpf_step(__u32 index, void *ctx)
{
	struct cbpf_state *s = ((struct cbpf_ctx *)ctx)->s;
	struct cbpf_insn *insn;
	__u32 pc = s->pc, code, k, v = 0, size, src;

	if (s->done || pc >= FILTER_MAX_INSNS)
		return 1;
	insn = bpf_map_lookup_elem(&filter_insns, &pc);
	if (!insn) {
		s->done = true;
		return 1;
	}
	code = insn->code;
	k = insn->k;
	s->pc = pc + 1;
	switch (C_CLASS(code)) {
	case C_LD:
	case C_LDX: {
		__u32 mode = C_MODE(code), off = k;

		size = C_SIZE(code) == C_W ? 4 : C_SIZE(code) == C_H ? 2 : 1;
		if (mode == C_IMM) {
			v = k;
		} else if (mode == C_LEN) {
			v = s->len;
		} else if (mode == C_MEM) {
			v = s->M[k & 15];
		} else {
			/* One load site for the three packet modes: each inlined copy of cbpf_load is
			 * more for the verifier to walk, in every program that filters. */
			if (mode == C_IND)
				off = s->X + k;
			else if (mode == C_MSH)
				size = 1;
			else if (mode != C_ABS)
				goto reject;
			if (!cbpf_load(s, off, size, &v))
				goto reject;
			if (mode == C_MSH) /* X = 4 * (P[k] & 0xf) */
				v = (v & 0xf) << 2;
		}
		if (C_CLASS(code) == C_LD)
			s->A = v;
		else
			s->X = v;
		return 0;
	}
	case C_ST:
		s->M[k & 15] = s->A;
		return 0;
	case C_STX:
		s->M[k & 15] = s->X;
		return 0;
	case C_ALU:
		src = C_SRC(code) == C_X ? s->X : k;
		switch (C_OP(code)) {
		case 0x00: s->A += src; break;
		case 0x10: s->A -= src; break;
		case 0x20: s->A *= src; break;
		case 0x30: if (!src) goto reject; s->A /= src; break;
		case 0x40: s->A |= src; break;
		case 0x50: s->A &= src; break;
		case 0x60: s->A = src < 32 ? s->A << src : 0; break;
		case 0x70: s->A = src < 32 ? s->A >> src : 0; break;
		case 0x80: s->A = -s->A; break;
		case 0x90: if (!src) goto reject; s->A %= src; break;
		case 0xa0: s->A ^= src; break;
		default: goto reject;
		}
		return 0;
	case C_JMP: {
		bool cond;

		src = C_SRC(code) == C_X ? s->X : k;
		switch (C_OP(code)) {
		case 0x00: /* JA */
			s->pc += k;
			return 0;
		case 0x10: cond = s->A == src; break;
		case 0x20: cond = s->A > src; break;
		case 0x30: cond = s->A >= src; break;
		case 0x40: cond = (s->A & src) != 0; break;
		default: goto reject;
		}
		s->pc += cond ? insn->jt : insn->jf;
		return 0;
	}
	case C_RET:
		s->result = C_RVAL(code) == C_A ? s->A : k;
		s->done = true;
		return 1;
	case C_MISC:
		if (C_MISCOP(code) == 0x00) /* TAX */
			s->X = s->A;
		else /* TXA */
			s->A = s->X;
		return 0;
	}
reject:
	s->result = 0;
	s->done = true;
	return 1;
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
	if (at_rx) {
		int verdict = compiled_verdict(skb);

		if (verdict >= 0)
			return verdict;
	}
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

#endif
