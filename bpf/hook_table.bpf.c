// SPDX-License-Identifier: GPL-2.0
/* Reads the netfilter hook table of the calling thread's network namespace
 * (struct net.nf.hooks_*): run with BPF_PROG_TEST_RUN from a thread that
 * entered the traced netns. This is what `nft list hooks` prints where the
 * kernel has nfnetlink_hook; it works where it does not, and it also names the
 * chains inside the NAT core's entries and the BPF links. Never attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "hook_entries.h"

char LICENSE[] SEC("license") = "GPL";

#define NFPROTO_ARP 3
#define NFPROTO_IPV4 2
#define NFPROTO_BRIDGE 7
#define NFPROTO_IPV6 10

/* Legacy ebtables may be a module, or absent (this type then is too). */
struct ebt_table___bn {
	char name[32];
} __attribute__((preserve_access_index));

/* hook function address -> enum bn_hook_owner, filled from kallsyms before the run. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, __u8);
} hook_owners SEC(".maps");

struct bn_hook_entry entries[BN_HOOK_ENTRIES_MAX];
__u32 n_entries;
__u32 truncated;

/* The hook arrays of struct netns_nf, in this order. */
#define ARRAYS 18

struct walk {
	void *hooks;          /* struct nf_hook_entries * */
	__u16 count;
	__u8 pf;
	__u8 hook;
	__u8 nat_parent;      /* > 0 while walking a NAT core's chains */
	__s32 parent_priority;
};

static __always_inline struct bn_hook_entry *next_slot(void)
{
	__u32 i = n_entries;

	if (i >= BN_HOOK_ENTRIES_MAX) {
		truncated = 1;
		return NULL;
	}
	n_entries = i + 1;
	return &entries[i];
}

/* nf_tables, x_tables, the NAT core may be modules: where one is not loaded its
 * types are absent too (and no hook of it is registered), so every reader of a
 * module's structure is guarded by the type's existence. */
static __always_inline void read_nft_chain(struct bn_hook_entry *out, struct nft_chain *chain)
{
	struct nft_base_chain *base;
	struct nft_table *table;
	const struct nft_chain_type *type;

	if (!bpf_core_type_exists(struct nft_base_chain) || !bpf_core_type_exists(struct nft_table))
		return;
	base = (void *)chain - bpf_core_field_offset(struct nft_base_chain, chain);
	table = BPF_CORE_READ(chain, table);
	type = BPF_CORE_READ(base, type);
	bpf_probe_read_kernel_str(out->chain, sizeof(out->chain), BPF_CORE_READ(chain, name));
	bpf_probe_read_kernel_str(out->table, sizeof(out->table), BPF_CORE_READ(table, name));
	if (type)
		bpf_probe_read_kernel_str(out->type, sizeof(out->type), BPF_CORE_READ(type, name));
	out->table_family = BPF_CORE_READ_BITFIELD_PROBED(table, family);
	out->handle = BPF_CORE_READ(chain, handle);
	out->policy = BPF_CORE_READ(base, policy);
	out->chain_priority = BPF_CORE_READ(base, ops.priority);
}

static __always_inline void read_xt_table(struct bn_hook_entry *out, struct xt_table *table)
{
	if (!bpf_core_type_exists(struct xt_table))
		return;
	bpf_probe_read_kernel_str(out->table, sizeof(out->table), &table->name);
	out->table_family = BPF_CORE_READ(table, af);
	out->chain_priority = BPF_CORE_READ(table, priority);
}

/* Records entry i of the walked hook; *priv and the owner say what to look into. */
static __always_inline struct bn_hook_entry *record_entry(struct walk *w, __u32 i, void **priv)
{
	void *first = w->hooks + bpf_core_field_offset(struct nf_hook_entries, hooks);
	struct nf_hook_entry entry;
	struct nf_hook_ops *ops = NULL;
	struct bn_hook_entry *out;
	__u8 *owner;

	if (bpf_probe_read_kernel(&entry, sizeof(entry), first + i * sizeof(struct nf_hook_entry)))
		return NULL;
	/* The original ops follow the entries: nf_hook_entries_get_hook_ops(). */
	bpf_probe_read_kernel(&ops, sizeof(ops), first + w->count * sizeof(struct nf_hook_entry) + i * sizeof(void *));
	out = next_slot();
	if (!out)
		return NULL;
	*priv = entry.priv;
	out->fn = (__u64)entry.hook;
	out->pf = w->pf;
	out->hook = w->hook;
	out->index = i;
	out->nat_index = w->nat_parent ? i + 1 : 0;
	/* The NAT core's chains run at its priority, ordered among themselves by their own. */
	out->priority = w->nat_parent || !ops ? w->parent_priority : BPF_CORE_READ(ops, priority);
	owner = bpf_map_lookup_elem(&hook_owners, &out->fn);
	out->owner = owner ? *owner : BN_OWNER_UNKNOWN;
	switch (out->owner) {
	case BN_OWNER_NFT_CHAIN:
		read_nft_chain(out, entry.priv);
		break;
	case BN_OWNER_XT_TABLE:
		read_xt_table(out, entry.priv);
		break;
	case BN_OWNER_EBT_TABLE:
		if (bpf_core_type_exists(struct ebt_table___bn))
			bpf_probe_read_kernel_str(out->table, sizeof(out->table),
						  &((struct ebt_table___bn *)entry.priv)->name);
		out->table_family = NFPROTO_BRIDGE;
		break;
	case BN_OWNER_BPF_LINK: {
		struct bpf_nf_link *link = entry.priv;

		if (bpf_core_type_exists(struct bpf_nf_link))
			out->handle = BPF_CORE_READ(link, link.prog, aux, id);
		break;
	}
	}
	return out;
}

static long walk_nat_entry(__u32 i, void *arg)
{
	void *priv;

	return record_entry(arg, i, &priv) ? 0 : 1;
}

static long walk_entry(__u32 i, void *arg)
{
	struct walk *w = arg;
	struct bn_hook_entry *out;
	void *priv = NULL;

	out = record_entry(w, i, &priv);
	if (!out)
		return 1;
	if (out->owner == BN_OWNER_NAT_CORE && priv && bpf_core_type_exists(struct nf_nat_lookup_hook_priv)) {
		/* The chains the NAT core runs (nft nat chains, iptables' nat table). */
		struct nf_nat_lookup_hook_priv *nat = priv;
		struct nf_hook_entries *hooks = BPF_CORE_READ(nat, entries);
		struct walk inner = {};

		if (!hooks)
			return 0;
		inner.hooks = hooks;
		inner.count = BPF_CORE_READ(hooks, num_hook_entries);
		inner.pf = w->pf;
		inner.hook = w->hook;
		inner.nat_parent = i + 1;
		inner.parent_priority = out->priority;
		bpf_loop(inner.count < BN_HOOK_NAT_MAX ? inner.count : BN_HOOK_NAT_MAX, walk_nat_entry, &inner, 0);
	}
	return 0;
}

struct netns_walk {
	struct net *net;
};

static long walk_array(__u32 a, void *arg)
{
	struct net *net = ((struct netns_walk *)arg)->net;
	struct nf_hook_entries *hooks = NULL;
	struct walk w = {};
	void *slot;

	if (a < 5) {
		w.pf = NFPROTO_IPV4;
		w.hook = a;
		slot = (void *)net + bpf_core_field_offset(struct net, nf.hooks_ipv4) + a * sizeof(void *);
	} else if (a < 10) {
		w.pf = NFPROTO_IPV6;
		w.hook = a - 5;
		slot = (void *)net + bpf_core_field_offset(struct net, nf.hooks_ipv6) + (a - 5) * sizeof(void *);
	} else if (a < 13) {
		if (!bpf_core_field_exists(struct netns_nf, hooks_arp))
			return 0;
		w.pf = NFPROTO_ARP;
		w.hook = a - 10;
		slot = (void *)net + bpf_core_field_offset(struct net, nf.hooks_arp) + (a - 10) * sizeof(void *);
	} else {
		if (!bpf_core_field_exists(struct netns_nf, hooks_bridge))
			return 0;
		w.pf = NFPROTO_BRIDGE;
		w.hook = a - 13;
		slot = (void *)net + bpf_core_field_offset(struct net, nf.hooks_bridge) + (a - 13) * sizeof(void *);
	}
	if (bpf_probe_read_kernel(&hooks, sizeof(hooks), slot) || !hooks)
		return 0;
	w.hooks = hooks;
	w.count = BPF_CORE_READ(hooks, num_hook_entries);
	bpf_loop(w.count < 64 ? w.count : 64, walk_entry, &w, 0);
	return 0;
}

SEC("raw_tp")
int read_hook_table(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct netns_walk ns = {BPF_CORE_READ(task, nsproxy, net_ns)};

	n_entries = 0;
	truncated = 0;
	if (!ns.net)
		return 1;
	bpf_loop(ARRAYS, walk_array, &ns, 0);
	return 0;
}
