/** The model and the text output on synthetic events (no kernel needed). */
import { describe, expect, it } from 'vitest';
import { forwardPathEvents, KIND, LAB, LAB_HOOK_ENTRIES, LAB_PLAN, labSlot, RawEvent } from '../../bench/synthetic';
import { buildTraversal, isoTime, ModelContext } from '../../src/model/build';
import { attachmentsOf, planProbes, ProbeHistory } from '../../src/model/probes';
import { rulesetChanges, rulesetFromEntries, type RawHookEntry } from '../../src/model/ruleset';
import { describePacket, formatAddress } from '../../src/model/packet';
import { RouteTable } from '../../src/topology/routes';
import { formatTraversal } from '../../src/output/text';
import { linkRejects } from '../../src/model/reject';
import { parseRuleTexts, RuleIndex, type RuleEvent } from '../../src/model/rules';
import type { Traversal } from '../../src/model/traversal';
import { effectiveCapabilities, missingCapabilities } from '../../src/system/privileges';
import { throughPipe } from '../support/events';
import { MAX_HELD_EVENTS, RULES_HOLD_NS, TraversalPipeline } from '../../src/capture/pipeline';

const NAMES: Record<number, string> = { [LAB.veth]: 'vethdcc08d7', [LAB.bridge]: 'br-d13c50d4c15b', [LAB.uplink]: 'enp4s0' };
const ctx: ModelContext = {
  netns: LAB.netns,
  bridgeIfindex: LAB.bridge,
  deviceName: (i, ns) => (ns === LAB.netns ? NAMES[i] ?? `if${i}` : `if${i}@netns:${ns}`),
  symbol: (a) => (a === 0xffffffff82159760n ? 'br_handle_frame' : a ? `nf_hook_slow+0x${(a & 0xffn).toString(16)}` : undefined),
  dropReason: (r) => (r === 12 ? 'NETFILTER_DROP' : `reason ${r}`),
  toEpochNs: (ts) => 1_700_000_000_000_000_000 + ts,
  probes: new ProbeHistory([LAB_PLAN]),
};

describe('traversal model', () => {
  it('turns the forward path into hops with devices, NAT and the end', () => {
    const t = buildTraversal(throughPipe(forwardPathEvents(5, 0n)), ctx, 0);
    // Only what the netns's hook table has: no raw, mangle or security table, no "conntrack" table.
    expect(t.hops.map((h) => `${h.family} ${h.hook} ${h.table} ${h.chain ?? '-'}`)).toEqual([
      'netdev RX null -',
      'ipv4 PREROUTING nat PREROUTING',
      'netdev RX null -',
      'ipv4 FORWARD filter FORWARD',
      'ipv4 POSTROUTING nat POSTROUTING',
      'netdev TX null -',
    ]);
    expect(t.hops[0]).toMatchObject({ in: 'vethdcc08d7', rxHandler: 'br_handle_frame' });
    expect(t.hops[1]).toMatchObject({ in: 'br-d13c50d4c15b', physin: 'vethdcc08d7', verdict: 'ACCEPT', src: '192.168.222.2', tableFamily: 'ip', priority: -100 });
    expect(t.hops[4]).toMatchObject({ src: '10.200.0.1', dst: '10.200.0.2', priority: 100 });
    expect(t.decisions.find((d) => d.kind === 'nat')?.text).toBe('SNAT 192.168.222.2 -> 10.200.0.1 in ip nat POSTROUTING at ipv4 POSTROUTING');
    expect(t).toMatchObject({ id: 5, src: '192.168.222.2', dst: '10.200.0.2', proto: 'icmp', end: { kind: 'tx', dev: 'enp4s0' }, missing: 0 });
    expect(t.summary).toBe('icmp echo request 192.168.222.2 > 10.200.0.2 id 77 seq 5 ttl 64');
  });

  it('puts a netfilter drop at the chain between the last probe reached and the next', () => {
    const events = forwardPathEvents(6, 0n).slice(0, 7); // ... RX on the bridge, FORWARD's first probe
    events.push({ ...events[6], seq: 7, kind: KIND.DROP, reason: 12, aux: 0xffffffff81000042n, nfFamily: 0, nfHook: 0, nfSlot: 0, ifindex: LAB.bridge });
    const t = buildTraversal(throughPipe(events), ctx, 3);
    const last = t.hops[t.hops.length - 1];
    // ip filter FORWARD is the only entry between those probes: named, not guessed.
    expect(last).toMatchObject({ family: 'ipv4', hook: 'FORWARD', table: 'filter', chain: 'FORWARD', tableFamily: 'ip', verdict: 'DROP', in: 'br-d13c50d4c15b', out: 'enp4s0', observed: false });
    expect(last.inferred).toBeUndefined();
    expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP', location: 'nf_hook_slow+0x42' });
    expect(t.lost).toBe(3);
    expect(formatTraversal(t)).toMatch(/ipv4 FORWARD filter +DROP +IN=br-d13c50d4c15b OUT=enp4s0 PHYSIN=vethdcc08d7[^\n]*\n {2}=> DROPPED on br-d13c50d4c15b: NETFILTER_DROP at nf_hook_slow\+0x42$/);
  });

  it('names every candidate when several chains share the priority a drop happened at', () => {
    const inet: RawHookEntry = { ...LAB_HOOK_ENTRIES[6], function: 'nft_do_chain_inet', table: 'fw', chain: 'fwd', tableFamily: 1, handle: 9 };
    const plan = planProbes(rulesetFromEntries([...LAB_HOOK_ENTRIES, inet]), 0);
    const events = forwardPathEvents(6, 0n).slice(0, 7).map((e) => (e.kind === KIND.NF && e.nfHook === 2 ? { ...e, nfSlot: labSlot(2, null, plan) } : e));
    events.push({ ...events[6], seq: 7, kind: KIND.DROP, reason: 12, nfFamily: 0, nfHook: 0, nfSlot: 0, ifindex: LAB.bridge });
    const last = buildTraversal(throughPipe(events), { ...ctx, probes: new ProbeHistory([plan]) }, 0).hops.at(-1)!;
    expect(last).toMatchObject({ hook: 'FORWARD', verdict: 'DROP', inferred: ['table'] });
    expect(last.note).toBe('dropped in one of: ip filter FORWARD, inet fw fwd');
  });

  it('shows a hook with no chain as the hook itself, never as a table', () => {
    const bare = planProbes(rulesetFromEntries(LAB_HOOK_ENTRIES.filter((e) => e.hook !== 2)), 0);
    const events = forwardPathEvents(3, 0n).map((e) => (e.kind === KIND.NF && e.nfHook === 2 ? { ...e, nfSlot: labSlot(2, null, bare) } : e))
      .filter((e) => !(e.kind === KIND.NF && e.nfHook === 2 && e.seq === 7));
    const t = buildTraversal(throughPipe(events), { ...ctx, probes: new ProbeHistory([bare]) }, 0);
    const fwd = t.hops.filter((h) => h.hook === 'FORWARD');
    expect(fwd).toHaveLength(1);
    expect(fwd[0]).toMatchObject({ table: null, verdict: null, note: 'hook reached: no chain is registered here' });
    expect(formatTraversal(t)).toMatch(/\n {2}ipv4 FORWARD {10,}IN=br-d13c50d4c15b/);
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

describe('rules from the rule tracer', () => {
  const ipHeader = (src: number[], dst: number[]) => Uint8Array.from([0x45, 0, 0, 84, 0, 0, 0, 0, 63, 1, 0, 0, ...src, ...dst]);
  const event = (over: Partial<RuleEvent>): RuleEvent => ({
    ts: 1_000_000, id: 77, family: 2, table: 'filter', chain: 'FORWARD', handle: 0, type: 3, verdict: -1, jumpTarget: '',
    iif: LAB.bridge, oif: LAB.uplink, nfproto: 2, networkHeader: ipHeader(LAB.container, LAB.wan), policy: 0, ...over,
  });
  const index = () => {
    const r = new RuleIndex(() => LAB_PLAN.ruleset);
    r.texts = parseRuleTexts('table ip filter { # handle 1\n\tchain FORWARD { # handle 2\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tcounter packets 3 bytes 252 jump DOCKER-USER # handle 5\n\t}\n\tchain DOCKER-USER { # handle 4\n\t\tip daddr 10.200.0.2 counter packets 0 bytes 0 accept # handle 6\n\t}\n}\n');
    return r;
  };

  it('gives a run to the hop of its chain, through the jump, with the texts nft prints', () => {
    const rules = index();
    rules.add([
      event({ handle: 5, verdict: -3, jumpTarget: 'DOCKER-USER' }),
      event({ chain: 'DOCKER-USER', handle: 6, verdict: 1 }),
    ]);
    const t = buildTraversal(throughPipe(forwardPathEvents(5, 0n)), { ...ctx, rules }, 0);
    expect(t.hops.find((h) => h.table === 'filter')?.rules).toEqual([
      { chain: 'FORWARD', handle: 5, text: 'counter jump DOCKER-USER', verdict: 'jump DOCKER-USER' },
      { chain: 'DOCKER-USER', handle: 6, text: 'ip daddr 10.200.0.2 counter accept', verdict: 'accept' },
    ]);
    expect(t.missing).toBe(0);
  });

  it('never gives a run to another packet: other addresses, or read before the hop ran', () => {
    for (const other of [event({ networkHeader: ipHeader([10, 0, 0, 9], LAB.wan) }), event({ ts: -100_000_000 })]) {
      const rules = index();
      rules.add([{ ...other, handle: 5, verdict: 1 }]);
      const t = buildTraversal(throughPipe(forwardPathEvents(5, 0n)), { ...ctx, rules }, 0);
      expect(t.hops.find((h) => h.table === 'filter')?.rules).toBeUndefined();
    }
  });

  it('counts a chain hop whose rules were lost to an overflow as missing', () => {
    const rules = index();
    rules.noteLost(3, 5_000);
    const t = buildTraversal(throughPipe(forwardPathEvents(5, 0n)), { ...ctx, rules }, 0);
    const filter = t.hops.find((h) => h.table === 'filter')!;
    expect(filter.note).toMatch(/its rules were lost/);
    expect(t.missing).toBe(1); // the nat chains were not consulted (no conntrack entry in these events)
  });
});

describe('REJECT', () => {
  const base = (over: Partial<Traversal>): Traversal => ({
    id: 1, ts: 100, time: '', netns: 1, src: '192.168.222.2', dst: '10.200.0.2', proto: 'icmp', summary: '', decisions: [], hookRuns: [],
    branches: [], lost: 0, missing: 0, hops: [], end: { kind: 'tx', dev: null, reason: null }, ...over,
  });
  const dropped = () => base({
    id: 7, ts: 100,
    hops: [
      { family: 'ipv4', hook: 'PREROUTING', table: null, verdict: null, in: null, out: null, physin: null, physout: null, src: '192.168.222.2', dst: '10.200.0.2', observed: true, ts: 110 },
      { family: 'ipv4', hook: 'FORWARD', table: 'filter', verdict: 'DROP', in: null, out: null, physin: null, physout: null, src: '192.168.222.2', dst: '10.200.0.2', observed: false, ts: 130 },
    ],
    end: { kind: 'drop', dev: null, reason: 'NETFILTER_DROP' },
  });
  const error = (ts: number, dst = '192.168.222.2') => base({ id: 8, ts, src: '192.168.222.1', dst, icmpError: { type: 3, code: 10 } });

  it('links a dropped packet and the ICMP error sent to its source while it was dropped, both ways', () => {
    const [t, e] = [dropped(), error(120)];
    linkRejects([e, t], []);
    expect(t).toMatchObject({ answeredBy: 8, end: { rejected: true } });
    expect(t.hops[1].verdict).toBe('REJECT');
    expect(e.answers).toBe(7);
    expect(formatTraversal(t)).toMatch(/=> REJECTED: NETFILTER_DROP; answered by #8$/);
    expect(formatTraversal(e).split('\n')[0]).toMatch(/\(answers #7, which was rejected\)$/);
  });

  it('leaves a plain drop alone: an error for someone else, or long before', () => {
    for (const e of [error(120, '192.168.222.9'), error(120 - 10e6)]) {
      const t = dropped();
      linkRejects([t], [e]);
      expect(t.answeredBy).toBeUndefined();
      expect(t.hops[1].verdict).toBe('DROP');
    }
  });
});

describe('packet summaries', () => {
  const tcp = (flags: number) => describePacket({
    ethertype: 0x0800, ipVersion: 4, saddr: Uint8Array.from([10, 99, 0, 1]), daddr: Uint8Array.from([172, 30, 0, 2]), l4proto: 6,
    sport: 8080, dport: 80, ttl: 63, ipLen: 60, icmpType: 0, icmpCode: 0, smac: new Uint8Array(), dmac: new Uint8Array(), ctState: 0, tcpFlags: flags,
  });

  it('writes TCP flags and the length as tcpdump does', () => {
    expect(tcp(0x02)).toBe('tcp 10.99.0.1:8080 > 172.30.0.2:80 [S] len 60 ttl 63');
    expect(tcp(0x12)).toBe('tcp 10.99.0.1:8080 > 172.30.0.2:80 [S.] len 60 ttl 63');
    expect(tcp(0x10)).toMatch(/\[\.\]/);
    expect(tcp(0x18)).toMatch(/\[P\.\]/);
    expect(tcp(0x11)).toMatch(/\[F\.\]/);
    expect(tcp(0x04)).toMatch(/\[R\]/);
    expect(tcp(0)).toMatch(/\[none\]/);
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

describe('probe plan', () => {
  const at = (family: number, hook: number) => LAB_PLAN.probes.filter((p) => p.family === family && p.hook === hook);

  it('places a probe at the start of each hook and after each occupied priority, nowhere else', () => {
    expect(at(2, 0).map((p) => p.priority)).toEqual([-2147483647, -399, -199, -99]);
    expect(at(2, 2).map((p) => p.priority)).toEqual([-2147483647, 1]);
    // nf_confirm at INT_MAX: nothing can follow it; a drop there is blamed on what the last probe is followed by.
    expect(at(2, 4).map((p) => p.priority)).toEqual([-2147483647, 101]);
    expect(at(10, 2).map((p) => p.priority)).toEqual([-2147483647]);
    expect(at(2, 0)[3].covers.map((u) => u.kind)).toEqual(['nat']);
    expect(at(2, 0)[1].lastPriority).toBe(-201);
    for (const hook of [0, 1, 2, 3, 4]) expect(new Set(at(2, hook).map((p) => p.slot)).size).toBe(at(2, hook).length);
    expect(attachmentsOf(LAB_PLAN)).toHaveLength(LAB_PLAN.probes.length);
  });

  it('keeps the slots of probes that stay and gives a moved one a slot not used before', () => {
    const added: RawHookEntry = { ...LAB_HOOK_ENTRIES[6], priority: 10, function: 'nft_do_chain_inet', table: 'fw', chain: 'fwd', tableFamily: 1, handle: 9, chainPriority: 10 };
    const next = planProbes(rulesetFromEntries([...LAB_HOOK_ENTRIES, added]), 5, LAB_PLAN);
    const before = at(2, 2);
    const after = next.probes.filter((p) => p.family === 2 && p.hook === 2);
    expect(after.map((p) => p.priority)).toEqual([-2147483647, 1, 11]);
    expect(after.slice(0, 2).map((p) => p.slot)).toEqual(before.map((p) => p.slot));
    expect(before.map((p) => p.slot)).not.toContain(after[2].slot);
    const history = new ProbeHistory([LAB_PLAN, next]);
    expect(history.probe(2, 2, after[2].slot, 4)).toBeUndefined();
    expect(history.probe(2, 2, after[2].slot, 6)?.probe.covers[0]).toMatchObject({ table: 'fw', chain: 'fwd', tableFamily: 'inet' });
    expect(rulesetChanges(LAB_PLAN.ruleset, next.ruleset)).toEqual(['+ ipv4 FORWARD 10: inet fw fwd']);
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

describe('traversal times', () => {
  it('are what Date.toISOString says, within a second, across seconds, years and fractions of a ms', () => {
    const times = [0, 0.4, 999.9, 1000, 1764201600123.75, 1764201600999.999, 1764201601000, 253402300799999, -1.5, 4102444800000.5];
    let ms = 1764201600000;
    for (let i = 0; i < 2000; i++) times.push((ms += Math.random() * 7)); // many in one second, then the next
    for (const t of times) expect(isoTime(t), String(t)).toBe(new Date(t).toISOString());
  });
});

describe('the pipeline across batches', () => {
  it('gives a packet whose events span three batches, one of them out of order, the traversal one batch gives', () => {
    const run = (batches: RawEvent[][]) => {
      const out: Traversal[] = [];
      const pipeline = new TraversalPipeline(ctx, 1e9, { traversal: (t) => out.push(t) }, 0);
      for (const b of batches) pipeline.push({ events: throughPipe(b), lost: 0, sequence: 0 });
      pipeline.flush();
      return out;
    };
    const events = forwardPathEvents(9, 5000n);
    const [whole] = run([events]);
    // Seq 5 reaches the reader after seq 6 (another CPU's reservation committed later), in the next batch.
    const split = run([events.slice(0, 5), [events[6], events[7]], [events[5], ...events.slice(8)]]);
    expect(split).toHaveLength(1);
    expect(split[0].missing).toBe(0);
    expect({ ...split[0], time: '' }).toEqual({ ...whole, time: '' });
    expect(whole.hops.length).toBeGreaterThan(4);
  });
});

describe('--rules: packets wait until the rule tracer has read past them', () => {
  it('explains a closed packet once a rule batch says every message queued before its last hop has arrived, not before', () => {
    const rules = new RuleIndex(() => LAB_PLAN.ruleset);
    const out: Traversal[] = [];
    const pipeline = new TraversalPipeline({ ...ctx, rules }, 1e9, { traversal: (t) => out.push(t) }, RULES_HOLD_NS);
    const first = throughPipe(forwardPathEvents(1, 1000n));
    const second = throughPipe(forwardPathEvents(2, 2000n));
    const lastOf = (evs: typeof first) => evs.reduce((m, e) => Math.max(m, e.ts), 0);
    pipeline.push({ events: [...first, ...second], lost: 0, sequence: 0 });
    expect(out).toHaveLength(0);
    pipeline.pushRules({ events: [], lost: 0, drainedTo: lastOf(first) - 1 });
    expect(out).toHaveLength(0);
    pipeline.pushRules({ events: [], lost: 0, drainedTo: lastOf(first) });
    expect(out.map((t) => t.id)).toEqual([first[0].packetId]);
    // Older traces carry no drainedTo: the hold alone decides.
    pipeline.pushRules({ events: [], lost: 0, drainedTo: 0 });
    expect(out).toHaveLength(1);
    pipeline.expire(lastOf(second) + RULES_HOLD_NS);
    expect(out).toHaveLength(2);
    // Past the watermark, a packet that closes later goes at once.
    pipeline.pushRules({ events: [], lost: 0, drainedTo: lastOf(second) + 1e6 });
    pipeline.push({ events: throughPipe(forwardPathEvents(3, 2000n + 100n)), lost: 0, sequence: 0 });
    expect(out).toHaveLength(3);
  });
});

describe('--rules under a flood', () => {
  it('explains the oldest packets at once past MAX_HELD_EVENTS waiting, says why their rules are missing, and the rest after the hold', () => {
    const rules = new RuleIndex(() => LAB_PLAN.ruleset);
    const out: Traversal[] = [];
    const pipeline = new TraversalPipeline({ ...ctx, rules }, 1e9, { traversal: (t) => out.push(t) }, RULES_HOLD_NS);
    const packets = Math.ceil(MAX_HELD_EVENTS / forwardPathEvents(1, 0n).length) + 100;
    // All within 1 ms of kernel time: none is due by the hold.
    for (let i = 1; i <= packets; i += 500) {
      const evs = [];
      for (let j = i; j < Math.min(i + 500, packets + 1); j++) evs.push(...forwardPathEvents(j, BigInt(j) * 100n));
      pipeline.push({ events: throughPipe(evs), lost: 0 } as never);
    }
    const early = out.length;
    expect(early).toBeGreaterThan(0);
    expect(early).toBeLessThan(packets);
    const hurried = out[0].hops.find((h) => h.table === 'filter')!;
    expect(hurried.note).toMatch(/its rules were lost: not waited for/);
    expect(out[0].missing).toBeGreaterThan(0);
    pipeline.flush();
    expect(out.length).toBe(packets);
    expect(out.at(-1)!.missing).toBe(0);
    expect(out.at(-1)!.hops.find((h) => h.table === 'filter')!.note ?? '').not.toMatch(/rules were lost/);
  });
});
