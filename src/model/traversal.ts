/** The traversal model: one packet's way through the traced bridge's netns.
 * Its JSON form is the `--json` contract (issue 2): keys stay, new ones may be added. */
import type { Family, HookName } from './hooks';

/** REJECT: dropped, and answered with an ICMP error (seen, or named by the rule that did it). */
export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT' | 'STOLEN' | 'QUEUE';

import type { HopRule } from './rules';
export type { HopRule };

/** What the kernel decided between hops: L2 vs L3, bridge port, routing. */
export interface Decision {
  ts: number;
  kind: 'bridge' | 'route' | 'nat' | 'conntrack' | 'drop';
  decision: string;
  port?: string | null;
  text: string;
  /** Deduced from the hops around it rather than seen. */
  inferred?: boolean;
}
export type EndKind = 'tx' | 'local' | 'drop' | 'unknown';

export interface Hop {
  family: Family;
  hook: HookName;
  /** The table's own name, as the netns's ruleset has it (nftables, iptables-nft, legacy x_tables). */
  table: string | null;
  /** The base chain (iptables-nft and ebtables-nft name theirs after the hook). */
  chain?: string;
  /** The table's family as nftables names it: ip, ip6, inet, bridge, arp, netdev. */
  tableFamily?: string;
  /** Where the chain runs in the hook (the NAT core's priority for nat chains). */
  priority?: number;
  /** A nat chain's own priority, which orders it among the nat chains. */
  chainPriority?: number;
  verdict: Verdict | null;
  in: string | null;
  out: string | null;
  physin: string | null;
  physout: string | null;
  src: string | null;
  dst: string | null;
  observed: boolean;
  ts: number;
  /** Set where a field was deduced rather than read from the kernel. */
  inferred?: string[];
  rxHandler?: string | null;
  /** Function-tracing backends: what the rx_handler returned (CONSUMED, PASS ...). */
  rxResult?: string;
  ttl?: number;
  /** The Ethernet addresses at this hop, where the kernel had a MAC header (text: with -e). */
  smac?: string;
  dmac?: string;
  /** The VLAN tag at this hop, in band or held beside the packet by the kernel (text: with -e). */
  vlan?: { id: number; pcp: number; dei: number; proto: string };
  cpu?: number;
  note?: string;
  /** Conntrack state of the packet at this hop, where the kernel had one. */
  ct?: string | null;
  /** false: the hook ran but its table's rules were not (nat after a connection's first packet). */
  consulted?: boolean;
  /** --rules: every rule the packet met in this chain, in order, through jumps and returns
   * (nf_tables' rule tracer), the policy when no rule decided. */
  rules?: HopRule[];
  /** --rules: the hop itself was seen only through the rule tracer (a chain no probe reaches). */
  seenBy?: 'nftrace';
}

/** One run of a netfilter hook (function-tracing backends): its entries and
 * its overall result. br_netfilter runs IPv4 hooks inside bridge hooks: depth. */
export interface HookRun {
  family: Family;
  hook: HookName;
  depth: number;
  entries: number;
  firstEntry: number;
  priorities: number[];
  verdict: Verdict | null;
  errno?: number;
  ts: number;
}

export interface TraversalEnd {
  kind: EndKind;
  dev: string | null;
  reason: string | null;
  location?: string | null;
  /** The drop was a REJECT: an ICMP error answered the packet (see answeredBy). */
  rejected?: boolean;
  /** --rules: the chain and rule that dropped it. */
  table?: string;
  chain?: string;
  rule?: HopRule;
}

/** A copy of the packet the bridge made (flooding): where that copy went. */
export interface Branch {
  id: number;
  hops: Hop[];
  end: TraversalEnd;
}

/** What runs behind a port: a container, a named netns or a process's netns. */
export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  /** docker, containerd, kubernetes, cri-o, podman, netns (a named netns), process */
  runtime: string;
  pid?: number;
  /** The netns, as a name or "net:[inode]". */
  netns: string;
}

/** A device named in a traversal and who sits behind it. */
export interface DeviceInfo {
  ifindex: number;
  container: ContainerInfo;
}

export interface Traversal {
  id: number;
  ts: number;
  time: string;
  netns: number;
  src: string | null;
  dst: string | null;
  proto: string;
  summary: string;
  hops: Hop[];
  decisions: Decision[];
  /** Function-tracing backends: every hook run, in order, with nesting depth. */
  hookRuns: HookRun[];
  end: TraversalEnd;
  /** Copies made of this packet (a flood to several ports), each with its own way out. */
  branches: Branch[];
  /** Events lost in the kernel, all packets, since the capture started. */
  lost: number;
  /** Events of this packet that were lost: its hops are incomplete. */
  missing: number;
  /** An ICMP error (unreachable, time exceeded ...): its type and code. */
  icmpError?: { type: number; code: number };
  /** A rejected packet: the traversal of the ICMP error that answered it. */
  answeredBy?: number;
  /** An ICMP error: the traversal of the packet it answers. */
  answers?: number;
  /** Devices named above that have a container (or netns) behind them, by name. */
  devices?: Record<string, DeviceInfo>;
}
