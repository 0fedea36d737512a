/** The capture modes against the real kernel: events and packets give the
 * same traversals, packets-mode loss is exact, top counts every packet of a
 * path, --sample follows a share of them. */
import { execFileSync } from 'child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import type { TopSnapshot } from '../../src/model/paths';
import { traceWhile, WatchProcess } from '../support/cli';

/** What a traversal says, without what differs between two tracers of the same packet (ids, times, CPUs). */
function meaning(t: Traversal) {
  const hop = (h: Traversal['hops'][number]) => ({
    family: h.family, hook: h.hook, table: h.table, verdict: h.verdict, in: h.in, out: h.out, physin: h.physin,
    physout: h.physout, src: h.src, dst: h.dst, ttl: h.ttl, ct: h.ct, note: h.note, rxHandler: h.rxHandler,
  });
  return {
    summary: t.summary, hops: t.hops.map(hop), decisions: t.decisions.map((d) => d.text), end: t.end,
    branches: t.branches.map((b) => ({ hops: b.hops.map(hop), end: b.end })),
  };
}

describe('capture modes', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    lab.ping(lab.containers[0].netns, lab.wanIp);
    lab.ping(lab.containers[0].netns, lab.containers[1].ip);
  });
  afterAll(() => lab?.destroy());

  it('events and packets modes produce the same traversals for the same traffic', async () => {
    const [c1, c2] = lab.containers;
    const args = [lab.bridge, '--netns', lab.host, '--json', 'icmp'];
    // Both at once, on the same packets: the second's netfilter links sit a priority later.
    const events = new WatchProcess([...args, '--mode', 'events']);
    const packets = new WatchProcess([...args, '--mode', 'packets']);
    try {
      await Promise.all([events.ready(), packets.ready()]);
      lab.ping(c1.netns, lab.wanIp, 3);
      lab.ping(c1.netns, c2.ip, 2);
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      expect(await events.stop()).toBe(0);
      expect(await packets.stop()).toBe(0);
    }
    const bySummary = (w: WatchProcess) => new Map(w.traversals().map((t) => [t.summary, meaning(t)]));
    const e = bySummary(events);
    const p = bySummary(packets);
    expect(e.size).toBe(10); // 5 echo requests, 5 replies
    expect([...p.keys()].sort()).toEqual([...e.keys()].sort());
    for (const [summary, t] of e) expect(p.get(summary), summary).toEqual(t);
  });

  it('a packet of more hops than one kernel record holds, and packets still queued at stop, read the same in both modes', async () => {
    const c1 = lab.containers[0];
    // Ten more chains in each hook the packet crosses: a probe after each, more than 32 hops in all.
    const priorities = [-290, -270, -240, -210, -180, -130, -60, -40, 40, 60];
    const script = ['add table inet bn_deep', ...['prerouting', 'forward', 'postrouting'].flatMap((hook) => priorities.map((p) =>
      `add chain inet bn_deep ${hook}_${p + 300} { type filter hook ${hook} priority ${p}; counter; }`))].join('\n');
    execFileSync('ip', ['netns', 'exec', lab.host, 'nft', '-f', '-'], { input: script });
    const args = [lab.bridge, '--netns', lab.host, '--json', 'icmp'];
    const events = new WatchProcess([...args, '--mode', 'events']);
    const packets = new WatchProcess([...args, '--mode', 'packets']);
    try {
      await Promise.all([events.ready(), packets.ready()]);
      expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
      // The uplink then sends one small frame a minute: the next requests wait in its queue past the stop.
      lab.exec(lab.host, 'tc', ['qdisc', 'add', 'dev', lab.uplink, 'root', 'tbf', 'rate', '8bit', 'burst', '225', 'latency', '120s']);
      lab.ping(c1.netns, lab.wanIp, 3);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      expect(await events.stop()).toBe(0);
      expect(await packets.stop()).toBe(0);
      lab.exec(lab.host, 'tc', ['qdisc', 'del', 'dev', lab.uplink, 'root']);
      lab.exec(lab.host, 'nft', ['delete', 'table', 'inet', 'bn_deep']);
    }
    const bySummary = (w: WatchProcess) => new Map(w.traversals().map((t) => [t.summary, meaning(t)]));
    const e = bySummary(events);
    const p = bySummary(packets);
    expect([...p.keys()].sort()).toEqual([...e.keys()].sort());
    for (const [summary, t] of e) expect(p.get(summary), summary).toEqual(t);
    const requests = [...e.values()].filter((t) => t.summary.includes('echo request'));
    expect(requests.length).toBeGreaterThanOrEqual(3);
    for (const t of requests) expect(t.hops.length).toBeGreaterThan(32);
    // Those still queued never left: their last hop is the last POSTROUTING chain, their end unknown.
    const queued = requests.filter((t) => t.end.kind !== 'tx');
    expect(queued.length).toBeGreaterThanOrEqual(1);
    for (const t of queued) expect(t.end.kind).toBe('unknown');
  });

  it('counts loss exactly in packets mode: sent = captured + lost under overload', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--mode', 'packets', '--ring-size', '8192',
      'icmp[icmptype] = icmp-echo']);
    let sent = 0;
    try {
      await w.ready();
      const out = lab.exec(c1.netns, 'ping', ['-n', '-q', '-f', '-c', '3000', '-W', '1', lab.wanIp]);
      sent = Number(/(\d+) packets transmitted/.exec(out)![1]);
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      expect(await w.stop()).toBe(0);
    }
    const lost = Number(/(\d+) packets, \d+ events, (\d+) lost/.exec(w.stderr)![2]);
    const captured = w.traversals().filter((t) => t.summary.includes('echo request')).length;
    expect(sent).toBe(3000);
    expect(lost).toBeGreaterThan(0);
    expect(captured + lost).toBe(sent);
  });

  it('top counts every packet of a path in the kernel and names the path from its first packet', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile([lab.bridge, '--netns', lab.host, '--json', '--interval', '0.5', 'icmp'],
      () => lab.ping(c1.netns, lab.wanIp, 6), { command: 'top', settleMs: 800 });
    const last = JSON.parse(w.stdout.trim().split('\n').pop()!) as TopSnapshot;
    const requests = last.paths.filter((p) => p.summary?.includes('echo request'));
    // The first request creates the conntrack entry (ct new), the rest are established: two paths.
    expect(requests.map((r) => r.packets).sort()).toEqual([1, 5]);
    // Only the lab's one table is named; hooks without chains by the hook alone.
    expect(requests[0].path).toContain(`in ${c1.hostVeth} > ipv4 PREROUTING > `);
    expect(requests[0].path).toContain('ipv4 POSTROUTING[nat]');
    expect(requests[0].path).not.toMatch(/raw|mangle|conntrack|security/);
    expect(requests[0].end).toBe(`left via ${lab.uplink}`);
    // The same as fields, for --json readers: no prose to parse.
    const steps = requests[0].steps!;
    expect(steps[0]).toEqual({ family: 'netdev', hook: 'RX', dev: c1.hostVeth, tables: [] });
    expect(steps.find((s) => s.family === 'ipv4' && s.hook === 'POSTROUTING')?.tables).toEqual([{ table: 'nat', chain: 'POSTROUTING', verdict: 'ACCEPT' }]);
    expect(requests[0].endAt).toMatchObject({ kind: 'tx', dev: lab.uplink });
    expect(last.paths.filter((p) => p.summary?.includes('echo reply')).reduce((n, p) => n + p.packets, 0)).toBe(6);
  });

  it('--sample 1/N follows about one packet in N', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile([lab.bridge, '--netns', lab.host, '--sample', '1/4', 'icmp[icmptype] = icmp-echo'], () => {
      lab.exec(c1.netns, 'ping', ['-n', '-q', '-c', '400', '-i', '0.002', '-W', '1', lab.wanIp]);
    });
    const n = w.traversals().length;
    // Binomial(400, 1/4): mean 100, sd ~8.7; these bounds fail about once in 10^9 runs.
    expect(n).toBeGreaterThan(45);
    expect(n).toBeLessThan(155);
  });
});
