/* Per-CPU state for the packet in flight: a packet crosses its hooks on one
 * CPU, one after another, so its identity and record can live in a per-CPU
 * slot instead of being looked up in a hash map at every hop. A slot is only
 * ever replaced by the outermost of our programs running on the CPU: one that
 * interrupted another (a softirq during a process-context hook) may use a
 * slot holding its own skb, never take it over, since the interrupted program
 * may hold a pointer into it. Every program that follows packets runs between
 * nest_enter() and nest_leave(). */
#ifndef BPFTRACE_NET_NESTING_BPF_H
#define BPFTRACE_NET_NESTING_BPF_H

#include "base.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nesting SEC(".maps");

static __always_inline void nest_enter(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nesting, &zero);

	if (n)
		*n += 1;
}

static __always_inline void nest_leave(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nesting, &zero);

	if (n && *n)
		*n -= 1;
}

/* True only in the outermost of our programs on this CPU: it may replace a slot. */
static __always_inline bool nest_outermost(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nesting, &zero);

	return n && *n == 1;
}

#endif
