/** Synthetic kernel events in the exact byte layout of bpf/events.h, for the
 * encoder round-trip tests and the benchmarks. */
import { native } from '../src/native';
import { planProbes, type ProbePlan } from '../src/model/probes';
import { rulesetFromEntries, type RawHookEntry } from '../src/model/ruleset';

export interface RawEvent {
  ts: bigint;
  packetId: bigint;
  skb?: bigint;
  aux?: bigint;
  netns?: number;
  ifindex?: number;
  inIfindex?: number;
  outIfindex?: number;
  physinIfindex?: number;
  physoutIfindex?: number;
  reason?: number;
  mark?: number;
  seq: number;
  cpu?: number;
  kind: number;
  nfFamily?: number;
  nfHook?: number;
  nfSlot?: number;
  ethertype?: number;
  ipVersion?: number;
  saddr?: number[];
  daddr?: number[];
  smac?: number[];
  dmac?: number[];
  ipLen?: number;
  sport?: number;
  dport?: number;
  l4proto?: number;
  ttl?: number;
  icmpType?: number;
  icmpCode?: number;
  verdict?: number;
  detail?: number;
  table?: string;
  chain?: string;
  priorities?: number[];
  ctState?: number;
  tcpFlags?: number;
  vlanProto?: number;
  vlanTci?: number;
}

/** The layout as the native addon compiled bpf/events.h: no offset is written down twice. */
const LAYOUT = native().eventLayout;
export const EVENT_SIZE = LAYOUT.size;

function put(buf: Buffer, off: number, field: string, value: number | bigint | number[] | string | undefined, signed = false): void {
  const f = LAYOUT.fields[field];
  if (!f) throw new Error(`bpf/events.h has no field ${field}`);
  const at = off + f.offset;
  if (value === undefined) return;
  if (typeof value === 'string' || Array.isArray(value)) {
    // Names as the kernel leaves them: truncated, not always terminated.
    Buffer.from(value as string & number[]).copy(buf, at, 0, f.size);
    return;
  }
  if (f.size === 8) buf.writeBigUInt64LE(BigInt(value), at);
  else if (f.size === 4) (signed ? buf.writeInt32LE(Number(value), at) : buf.writeUInt32LE(Number(value), at));
  else if (f.size === 2) buf.writeUInt16LE(Number(value), at);
  else buf.writeUInt8(Number(value), at);
}

export function writeRawEvent(buf: Buffer, off: number, e: RawEvent): void {
  buf.fill(0, off, off + EVENT_SIZE);
  put(buf, off, 'ts', e.ts);
  put(buf, off, 'packetId', e.packetId);
  put(buf, off, 'skb', e.skb);
  put(buf, off, 'aux', e.aux);
  for (const f of ['netns', 'ifindex', 'inIfindex', 'outIfindex', 'physinIfindex', 'physoutIfindex', 'reason', 'mark', 'cpu', 'nfFamily', 'nfHook', 'nfSlot', 'detail',
    'ethertype', 'ipLen', 'sport', 'dport', 'ipVersion', 'l4proto', 'ttl', 'icmpType', 'icmpCode', 'ctState', 'tcpFlags', 'vlanProto', 'vlanTci'] as const) put(buf, off, f, e[f]);
  put(buf, off, 'verdict', e.verdict, true);
  put(buf, off, 'seq', e.seq);
  put(buf, off, 'kind', e.kind);
  put(buf, off, 'saddr', e.saddr);
  put(buf, off, 'daddr', e.daddr);
  put(buf, off, 'smac', e.smac);
  put(buf, off, 'dmac', e.dmac);
  put(buf, off, 'hasMac', e.smac || e.dmac ? 1 : 0);
  put(buf, off, 'table', e.table);
  put(buf, off, 'chain', e.chain);
  (e.priorities ?? []).slice(0, LAYOUT.fields.priorities.size / 4).forEach((p, i) => buf.writeInt32LE(p, off + LAYOUT.fields.priorities.offset + 4 * i));
}

export function rawEvents(events: RawEvent[]): Buffer {
  const buf = Buffer.alloc(events.length * EVENT_SIZE);
  events.forEach((e, i) => writeRawEvent(buf, i * EVENT_SIZE, e));
  return buf;
}

export const KIND = {
  RX: 1, TX_QUEUE: 2, TX: 3, NF: 4, DROP: 5, CONSUME: 6,
  NF_HOOK_ENTER: 7, NF_HOOK_EXIT: 8, NF_TABLE: 9, RX_HANDLER: 10, BR_DECISION: 11, ROUTE: 12,
} as const;

export const LAB = {
  netns: 4026532999,
  veth: 5,
  bridge: 3,
  uplink: 7,
  container: [192, 168, 222, 2],
  uplinkIp: [10, 200, 0, 1],
  wan: [10, 200, 0, 2],
};

const INT_MAX = 2147483647;

function entry(hook: number, priority: number, fn: string, owner: RawHookEntry['owner'], more: Partial<RawHookEntry> = {}): RawHookEntry {
  return {
    family: 2, hook, index: 0, priority, function: fn, owner, natIndex: 0, table: '', chain: '', type: '',
    tableFamily: 0, policy: 1, handle: 0, chainPriority: 0, ...more,
  };
}

const ipChain = (hook: number, priority: number, table: string, chain: string, type: string, handle: number, natIndex = 0) =>
  entry(hook, priority, type === 'nat' ? 'nft_nat_do_chain' : 'nft_do_chain_ipv4', 'nft',
    { table, chain, type, tableFamily: 2, handle, chainPriority: priority, natIndex });

/** The hook table of the lab's netns as the kernel reports it, Docker-shaped:
 * conntrack, the ip nat table (PREROUTING and POSTROUTING chains inside the NAT
 * core's entries) and ip filter FORWARD. */
export const LAB_HOOK_ENTRIES: RawHookEntry[] = [
  entry(0, -400, 'ipv4_conntrack_defrag', 'other'),
  entry(0, -200, 'ipv4_conntrack_in', 'other'),
  entry(0, -100, 'nf_nat_ipv4_pre_routing', 'nat'),
  ipChain(0, -100, 'nat', 'PREROUTING', 'nat', 1, 1),
  entry(1, 100, 'nf_nat_ipv4_local_in', 'nat'),
  entry(1, INT_MAX, 'nf_confirm', 'other'),
  ipChain(2, 0, 'filter', 'FORWARD', 'filter', 2),
  entry(3, -400, 'ipv4_conntrack_defrag', 'other'),
  entry(3, -200, 'ipv4_conntrack_local', 'other'),
  entry(3, -100, 'nf_nat_ipv4_local_fn', 'nat'),
  entry(4, 100, 'nf_nat_ipv4_out', 'nat'),
  ipChain(4, 100, 'nat', 'POSTROUTING', 'nat', 3, 1),
  entry(4, INT_MAX, 'nf_confirm', 'other'),
];

export const LAB_PLAN: ProbePlan = planProbes(rulesetFromEntries(LAB_HOOK_ENTRIES), 0);

/** The probe of the lab's plan that follows `after` (null: the hook's first). */
export function labSlot(hook: number, after: number | null, plan: ProbePlan = LAB_PLAN): number {
  const p = plan.probes.find((x) => x.family === 2 && x.hook === hook && x.after === after);
  if (!p) throw new Error(`no probe after ${after} at hook ${hook}`);
  return p.slot;
}

/** The events the hooks backend emits for one ICMP echo request from a
 * container to the wan, with LAB_PLAN's probes: RX on the port, br_netfilter
 * PREROUTING, routed FORWARD, MASQUERADE in POSTROUTING, TX on the uplink. */
export function forwardPathEvents(packetId: number, ts0: bigint, cpu = 0): RawEvent[] {
  const base = {
    packetId: BigInt(packetId), cpu, netns: LAB.netns, ethertype: 0x0800, ipVersion: 4, l4proto: 1,
    icmpType: 8, sport: 77, dport: packetId & 0xffff, ipLen: 84, skb: 0xffff888012340000n + BigInt(packetId) * 256n,
  };
  const nf = (hook: number, after: number | null, ttl: number, saddr = LAB.container) => ({
    kind: KIND.NF, nfFamily: 2, nfHook: hook, nfSlot: labSlot(hook, after), ttl, saddr, daddr: LAB.wan,
    inIfindex: LAB.bridge, outIfindex: hook === 0 ? 0 : LAB.uplink, physinIfindex: LAB.veth,
  });
  const steps = [
    { kind: KIND.RX, ifindex: LAB.veth, aux: 0xffffffff82159760n, ttl: 64, saddr: LAB.container, daddr: LAB.wan },
    nf(0, null, 64), nf(0, -400, 64), nf(0, -200, 64), nf(0, -100, 64),
    { kind: KIND.RX, ifindex: LAB.bridge, ttl: 64, saddr: LAB.container, daddr: LAB.wan },
    nf(2, null, 63), nf(2, 0, 63),
    nf(4, null, 63), nf(4, 100, 63, LAB.uplinkIp),
    { kind: KIND.TX_QUEUE, ifindex: LAB.uplink, ttl: 63, saddr: LAB.uplinkIp, daddr: LAB.wan },
    { kind: KIND.TX, ifindex: LAB.uplink, ttl: 63, saddr: LAB.uplinkIp, daddr: LAB.wan },
  ];
  return steps.map((s, seq) => ({ ...base, ...s, seq, ts: ts0 + BigInt(seq * 1000) }));
}
