/** The model and the text output on synthetic events (no kernel needed). */
import { describe, expect, it } from 'vitest';
import { forwardPathEvents, KIND, LAB, RawEvent } from '../../bench/synthetic';
import { buildTraversal, ModelContext } from '../../src/model/build';
import { netfilterAttachments, slotsAt, tableAfter } from '../../src/model/hooks';
import { describePacket, formatAddress } from '../../src/model/packet';
import { RouteTable } from '../../src/topology/routes';
import { formatTraversal } from '../../src/output/text';
import { effectiveCapabilities, missingCapabilities } from '../../src/system/privileges';
import { throughPipe } from '../support/events';

const NAMES: Record<number, string> = { [LAB.veth]: 'vethdcc08d7', [LAB.bridge]: 'br-d13c50d4c15b', [LAB.uplink]: 'enp4s0' };
const ctx: ModelContext = {
  netns: LAB.netns,
  bridgeIfindex: LAB.bridge,
  deviceName: (i, ns) => (ns === LAB.netns ? NAMES[i] ?? `if${i}` : `if${i}@netns:${ns}`),
  symbol: (a) => (a === 0xffffffff82159760n ? 'br_handle_frame' : a ? `nf_hook_slow+0x${(a & 0xffn).toString(16)}` : undefined),
  dropReason: (r) => (r === 12 ? 'NETFILTER_DROP' : `reason ${r}`),
  toEpochNs: (ts) => 1_700_000_000_000_000_000 + ts,
};

describe('traversal model', () => {
  it('turns the forward path into hops with devices, NAT and the end', () => {
    const t = buildTraversal(throughPipe(forwardPathEvents(5, 0n)), ctx, 0);
    expect(t.hops.map((h) => `${h.family} ${h.hook} ${h.table}`)).toEqual([
      'netdev RX null',
      'ipv4 PREROUTING raw', 'ipv4 PREROUTING conntrack', 'ipv4 PREROUTING mangle', 'ipv4 PREROUTING nat',
      'netdev RX null',
      'ipv4 FORWARD mangle', 'ipv4 FORWARD filter', 'ipv4 FORWARD security',
      'ipv4 POSTROUTING mangle', 'ipv4 POSTROUTING nat',
      'netdev TX null',
    ]);
    expect(t.hops[0]).toMatchObject({ in: 'vethdcc08d7', rxHandler: 'br_handle_frame' });
    expect(t.hops[1]).toMatchObject({ in: 'br-d13c50d4c15b', physin: 'vethdcc08d7', verdict: 'ACCEPT', src: '192.168.222.2' });
    expect(t.hops[10]).toMatchObject({ src: '10.200.0.1', dst: '10.200.0.2' });
    expect(t).toMatchObject({ id: 5, src: '192.168.222.2', dst: '10.200.0.2', proto: 'icmp', end: { kind: 'tx', dev: 'enp4s0' }, missing: 0 });
    expect(t.summary).toBe('icmp echo request 192.168.222.2 > 10.200.0.2 id 77 seq 5 ttl 64');
  });

  it('puts a netfilter drop at the table after the last slot reached', () => {
    const events = forwardPathEvents(6, 0n).slice(0, 9); // ... FORWARD entry, FORWARD mangle
    events.push({ ...events[8], seq: 9, kind: KIND.DROP, reason: 12, aux: 0xffffffff81000042n, nfFamily: 0, nfHook: 0, nfSlot: 0, ifindex: LAB.bridge });
    const t = buildTraversal(throughPipe(events), ctx, 3);
    const last = t.hops[t.hops.length - 1];
    expect(last).toMatchObject({ family: 'ipv4', hook: 'FORWARD', table: 'filter', verdict: 'DROP', in: 'br-d13c50d4c15b', out: 'enp4s0', inferred: ['table'] });
    expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP', location: 'nf_hook_slow+0x42' });
    expect(t.lost).toBe(3);
    expect(formatTraversal(t)).toMatch(/ipv4 FORWARD filter\? +DROP +IN=br-d13c50d4c15b OUT=enp4s0 PHYSIN=vethdcc08d7[^\n]*\n {2}=> DROPPED on br-d13c50d4c15b: NETFILTER_DROP at nf_hook_slow\+0x42$/);
  });

  it('counts the events of a packet the ring buffer lost', () => {
    const events = forwardPathEvents(7, 0n).filter((e) => e.seq !== 3 && e.seq !== 4);
    const t = buildTraversal(throughPipe(events), ctx, 2);
    expect(t.missing).toBe(2);
    expect(formatTraversal(t)).toMatch(/! 2 event\(s\) of this packet were lost/);
  });

  it('prints NAT rewrites where they happen', () => {
    const text = formatTraversal(buildTraversal(throughPipe(forwardPathEvents(8, 0n)), ctx, 0));
    expect(text).toMatch(/ipv4 POSTROUTING nat +ACCEPT [^\n]*\[SRC 192\.168\.222\.2 -> 10\.200\.0\.1\]/);
    expect(text.split('\n')[0]).toMatch(/^#8 \d\d:\d\d:\d\d\.\d{3} icmp echo request/);
    expect(text).toMatch(/=> left via enp4s0$/);
  });
});

describe('routes', () => {
  it('finds the longest matching prefix, IPv4 and IPv6', () => {
    const table = RouteTable.fromRoutes([
      { prefix: 'default', via: '10.200.0.2', dev: 'enp4s0' },
      { prefix: '10.200.0.0/24', dev: 'enp4s0' },
      { prefix: '10.200.0.128/25', dev: 'other' },
      { prefix: 'fd00::/64', dev: 'br0' },
    ]);
    expect(table.lookup('10.200.0.2')).toEqual({ prefix: '10.200.0.0/24', dev: 'enp4s0', via: undefined });
    expect(table.lookup('10.200.0.200')?.dev).toBe('other');
    expect(table.lookup('8.8.8.8')).toMatchObject({ prefix: 'default', via: '10.200.0.2' });
    expect(table.lookup('fd00::1234')?.dev).toBe('br0');
    expect(table.lookup('2001:db8::1')).toBeUndefined();
  });

  it('explains a forward seen only as PREROUTING then FORWARD hooks, naming the route', () => {
    const routes = RouteTable.fromRoutes([{ prefix: 'default', via: '10.200.0.2', dev: 'enp4s0' }, { prefix: '10.200.0.0/24', dev: 'enp4s0' }]);
    const t = buildTraversal(throughPipe(forwardPathEvents(4, 0n)), { ...ctx, route: (d) => routes.lookup(d) }, 0);
    const d = t.decisions.find((x) => x.kind === 'route')!;
    expect(d).toMatchObject({ decision: 'forward', inferred: true, text: 'routing: not for this host, forwarded out enp4s0, route 10.200.0.0/24' });
  });
});

describe('hook catalog', () => {
  it('places one probe after each standard table priority', () => {
    const a = netfilterAttachments();
    expect(a).toHaveLength(2 * (5 + 5 + 4 + 7 + 3));
    expect(a.find((x) => x.family === 2 && x.hook === 2 && x.slot === 5)?.priority).toBe(1);
    expect(a.find((x) => x.slot === 0)?.priority).toBe(-2147483647);
    expect(slotsAt('POSTROUTING').map((s) => s.table)).toEqual([null, 'mangle', 'nat']);
    expect(tableAfter('FORWARD', 3)).toBe('filter');
    expect(tableAfter('PREROUTING', 0)).toBe('raw');
    expect(tableAfter('POSTROUTING', 7)).toBeNull();
  });
});

describe('packet words', () => {
  it('formats addresses like the kernel and tcpdump', () => {
    expect(formatAddress(Uint8Array.from([0xfd, 0, ...Array(13).fill(0), 2]))).toBe('fd00::2');
    expect(formatAddress(Uint8Array.from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]))).toBe('2001:db8:0:1::1');
    expect(formatAddress(Uint8Array.from(Array(16).fill(0)))).toBe('::');
    const arp = { ethertype: 0x0806, ipVersion: 0, saddr: Uint8Array.from([192, 168, 222, 2]), daddr: Uint8Array.from([192, 168, 222, 1]), l4proto: 1, sport: 0, dport: 0, ttl: 0, ipLen: 0, icmpType: 0, icmpCode: 0, smac: new Uint8Array(), dmac: new Uint8Array() };
    expect(describePacket(arp)).toBe('arp who-has 192.168.222.1 tell 192.168.222.2');
  });
});

describe('privileges', () => {
  it('reads effective capabilities and names what is missing', () => {
    const root = effectiveCapabilities('CapEff:\t000001ffffffffff\n');
    expect(missingCapabilities(root)).toEqual([]);
    const none = effectiveCapabilities('CapEff:\t0000000000000000\n');
    expect(missingCapabilities(none)).toEqual(['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN (to enter network namespaces)']);
  });
});

describe('function-tracing events in the model', () => {
  const c = (over: Partial<RawEvent>): RawEvent => ({ ts: 0n, packetId: 9n, seq: 0, kind: KIND.RX, netns: LAB.netns, ...over });
  const tableEvent = (seq: number, family: number, hook: number, table: string, chain: string, verdict: number, extra: Partial<RawEvent> = {}) =>
    c({ seq, ts: BigInt(seq), kind: KIND.NF_TABLE, nfFamily: family, nfHook: hook, table, chain, verdict, inIfindex: LAB.veth, ...extra });

  it('names bridge and IPv4 tables and chains, with their own verdicts, and the decisions between them', () => {
    const t = buildTraversal(throughPipe([
      c({ seq: 0, kind: KIND.RX, ifindex: LAB.veth, aux: 0xffffffff82159760n }),
      c({ seq: 1, ts: 1n, kind: KIND.NF_HOOK_ENTER, nfFamily: 7, nfHook: 0, inIfindex: LAB.veth }),
      tableEvent(2, 7, 0, 'nat', 'PREROUTING', 1),
      c({ seq: 3, ts: 3n, kind: KIND.BR_DECISION, detail: 3 }),
      tableEvent(4, 7, 1, 'filter', 'INPUT', 1),
      c({ seq: 5, ts: 5n, kind: KIND.ROUTE, detail: 1 }),
      tableEvent(6, 2, 2, 'filter', 'FORWARD', 1, { inIfindex: LAB.bridge, outIfindex: LAB.uplink }),
      tableEvent(7, 10, 4, 'inet_fw', 'postrouting', 1, { outIfindex: LAB.uplink }),
      c({ seq: 8, ts: 8n, kind: KIND.TX, ifindex: LAB.uplink }),
    ]), ctx, 0);
    expect(t.hops.map((h) => `${h.family} ${h.hook} ${h.table} ${h.chain ?? '-'} ${h.verdict}`)).toEqual([
      'netdev RX null - null',
      'bridge PREROUTING nat PREROUTING ACCEPT',
      'bridge INPUT filter INPUT ACCEPT',
      'ipv4 FORWARD filter FORWARD ACCEPT',
      'ipv6 POSTROUTING inet_fw postrouting ACCEPT',
      'netdev TX null - null',
    ]);
    expect(t.hops[0]).toMatchObject({ rxResult: 'CONSUMED', inferred: ['rxResult'] });
    expect(t.decisions.map((d) => d.decision)).toEqual(['local', 'forward']);
    const text = formatTraversal(t);
    expect(text).toMatch(/bridge PREROUTING nat +ACCEPT IN=vethdcc08d7\n {36}\* the destination MAC is the bridge's own: up to L3\n {2}bridge INPUT filter/);
    expect(text).toMatch(/ipv6 POSTROUTING inet_fw\/postrouting ACCEPT/);
  });

  it('puts a drop freed inside a table at that table, seen, and reads the rx_handler result when it comes', () => {
    const t = buildTraversal(throughPipe([
      c({ seq: 0, kind: KIND.RX, ifindex: LAB.veth, aux: 0xffffffff82159760n }),
      c({ seq: 1, ts: 1n, kind: KIND.RX_HANDLER, verdict: 3, ifindex: LAB.veth }),
      c({ seq: 2, ts: 2n, kind: KIND.NF_HOOK_ENTER, nfFamily: 7, nfHook: 2, inIfindex: LAB.veth, outIfindex: 9 }),
      c({ seq: 3, ts: 3n, kind: KIND.DROP, reason: 12, nfFamily: 7, nfHook: 2, table: 'filter', chain: 'FORWARD', inIfindex: LAB.veth, outIfindex: 9, ifindex: LAB.veth }),
    ]), ctx, 0);
    expect(t.hops[0]).toMatchObject({ rxResult: 'PASS' });
    expect(t.hops[0].note).toMatch(/RX_HANDLER_PASS/);
    expect(t.hops[1]).toMatchObject({ family: 'bridge', hook: 'FORWARD', table: 'filter', chain: 'FORWARD', verdict: 'DROP', in: 'vethdcc08d7', out: 'if9', observed: true });
    expect(t.hops[1].inferred).toBeUndefined();
    expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
  });
});

describe('hook runs', () => {
  it('nests IPv4 hooks run by br_netfilter inside the bridge hook, with entries, priorities and results', () => {
    const ev = (seq: number, over: Partial<RawEvent>): RawEvent => ({ ts: BigInt(seq), packetId: 3n, seq, kind: KIND.RX, netns: LAB.netns, inIfindex: LAB.veth, ...over });
    const t = buildTraversal(throughPipe([
      ev(0, { kind: KIND.NF_HOOK_ENTER, nfFamily: 7, nfHook: 0, detail: 2, priorities: [-300, 0] }),
      ev(1, { kind: KIND.NF_HOOK_ENTER, nfFamily: 2, nfHook: 0, detail: 5, nfSlot: 1, priorities: [-2147483648, -300, -200, -150, -100] }),
      ev(2, { kind: KIND.NF_HOOK_EXIT, nfFamily: 2, nfHook: 0, verdict: 1 }),
      ev(3, { kind: KIND.NF_HOOK_ENTER, nfFamily: 2, nfHook: 2, detail: 1, priorities: [0] }),
      ev(4, { kind: KIND.NF_HOOK_EXIT, nfFamily: 2, nfHook: 2, verdict: -1 }),
      ev(5, { kind: KIND.NF_HOOK_ENTER, nfFamily: 7, nfHook: 2, detail: 1, priorities: [-200] }),
      ev(6, { kind: KIND.DROP, reason: 12 }),
    ]), ctx, 0);
    expect(t.hookRuns.map((r) => [r.family, r.hook, r.depth, r.entries, r.firstEntry, r.priorities, r.verdict, r.errno])).toEqual([
      ['bridge', 'PREROUTING', 0, 2, 0, [-300, 0], null, undefined],
      ['ipv4', 'PREROUTING', 1, 5, 1, [-2147483648, -300, -200, -150, -100], 'ACCEPT', undefined],
      ['ipv4', 'FORWARD', 1, 1, 0, [0], 'DROP', 1],
      ['bridge', 'FORWARD', 1, 1, 0, [-200], 'DROP', undefined],
    ]);
  });
});
