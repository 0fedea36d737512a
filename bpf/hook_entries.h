/* The netfilter hook table of one network namespace, as the kernel runs it:
 * every entry of every IPv4, IPv6, ARP and bridge hook, in order, with its
 * priority, its function and what it belongs to (an nftables base chain, an
 * x_tables table, the NAT core and the chains it runs, a BPF link).
 * Shared by bpf/hook_table.bpf.c and native/. */
#ifndef BPFTRACE_NET_HOOK_ENTRIES_H
#define BPFTRACE_NET_HOOK_ENTRIES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* What a hook function's priv points to; user space says, by function address. */
enum bn_hook_owner {
	BN_OWNER_UNKNOWN = 0,
	BN_OWNER_NFT_CHAIN = 1, /* priv: struct nft_chain (of an nft_base_chain) */
	BN_OWNER_XT_TABLE = 2,  /* priv: struct xt_table */
	BN_OWNER_NAT_CORE = 3,  /* priv: struct nf_nat_lookup_hook_priv: the nat chains of the hook */
	BN_OWNER_BPF_LINK = 4,  /* priv: struct bpf_nf_link */
	BN_OWNER_EBT_TABLE = 5, /* priv: struct ebt_table (legacy ebtables) */
};

#define BN_HOOK_NAME 32
#define BN_HOOK_ENTRIES_MAX 192
#define BN_HOOK_NAT_MAX 8       /* nat chains of one hook, looked into */

struct bn_hook_entry {
	__u64 fn;               /* the hook function (resolved through kallsyms) */
	__u64 handle;           /* nft chain handle; bpf link: program id */
	__s32 priority;
	__u8 pf;                /* NFPROTO_* of the hook array */
	__u8 hook;
	__u8 index;             /* position inside the hook */
	__u8 owner;             /* enum bn_hook_owner */
	__u8 nat_index;         /* 0: a hook entry; n > 0: the n-th chain inside the NAT core entry before it */
	__u8 table_family;      /* nft: the table's family (NFPROTO_INET = 1 ...); xt: af */
	__u8 policy;            /* nft base chain policy (NF_DROP 0 / NF_ACCEPT 1) */
	__u8 _pad;
	__s32 chain_priority;   /* nft: the chain's own priority (nat chains differ from the core's) */
	__u32 _pad2;
	char table[BN_HOOK_NAME];
	char chain[BN_HOOK_NAME];
	char type[16];          /* nft chain type: filter, nat, route */
};

#endif
