/** Function-tracing backends, in a guest booted from Debian's stock kernel
 * (npm run test:vm): the notes' two traces in full, bridge family included. */
import * as os from 'os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import { runCli, WatchProcess } from '../support/cli';
import { findIcmp, hop, label } from '../support/hops';

const settle = () => new Promise((r) => setTimeout(r, 1500));
const lbl = (t: Traversal) => t.hops.map(label);
/** Every hop verdict of every traversal: a dropped skb must not come back as a new packet. */
const ts2labels = (ts: Traversal[]) => ts.flatMap((t) => t.hops.map((h) => h.verdict ?? ''));

/** The tables the notes logged, each with a counting rule so that it exists. */
function createNotesTables(lab: DockerLikeLab): void {
  const ipt: [string, string[]][] = [
    ['raw', ['PREROUTING', 'OUTPUT']],
    ['mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']],
    ['nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']],
    ['filter', ['INPUT', 'FORWARD', 'OUTPUT']],
  ];
  for (const [table, chains] of ipt) for (const chain of chains) lab.exec(lab.host, 'iptables', ['-t', table, '-A', chain]);
  const ebt: [string, string[]][] = [
    ['filter', ['INPUT', 'FORWARD', 'OUTPUT']],
    ['nat', ['PREROUTING', 'OUTPUT', 'POSTROUTING']],
  ];
  for (const [table, chains] of ebt) for (const chain of chains) lab.exec(lab.host, 'ebtables', ['-t', table, '-A', chain, '-j', 'CONTINUE']);
}

for (const backend of ['fentry', 'kprobe']) {
  describe(`${backend} backend on a stock kernel`, () => {
    let lab: DockerLikeLab;
    beforeAll(() => {
      lab = new DockerLikeLab().create();
      createNotesTables(lab);
      lab.ping(lab.containers[0].netns, lab.wanIp);
      lab.ping(lab.containers[0].netns, lab.containers[1].ip);
    });
    afterAll(() => lab?.destroy());

    async function trace(action: () => void, extra: string[] = []): Promise<Traversal[]> {
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--backend', backend, ...extra]);
      try {
        await w.ready(120_000);
        expect(w.stderr).toMatch(new RegExp(`${backend} \\(requested\\)`));
        action();
        await settle();
      } finally {
        expect(await w.stop()).toBe(0);
      }
      return w.traversals();
    }

    it('packets mode (hops assembled in the kernel) gives the same traversal as events mode', async () => {
      const c1 = lab.containers[0];
      const inMode = async (mode: string) => findIcmp(await trace(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true), ['--mode', mode]), 'request', c1.ip)!;
      const events = await inMode('events');
      const packets = await inMode('packets');
      const shape = (t: Traversal) => ({
        hops: t.hops.map((h) => [lbl({ ...t, hops: [h] })[0], h.chain, h.verdict, h.in, h.out, h.physin, h.physout, h.src, h.dst]),
        runs: t.hookRuns.map((r) => [r.family, r.hook, r.depth, r.priorities, r.verdict]),
        decisions: t.decisions.map((d) => d.text), end: t.end,
      });
      expect(shape(packets)).toEqual(shape(events));
    });

    it('shows container -> wan as in the notes, bridge hooks included', async () => {
      const c1 = lab.containers[0];
      const ts = await trace(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
      const t = findIcmp(ts, 'request', c1.ip);
      expect(t, JSON.stringify(ts)).toBeDefined();
      expect(lbl(t!).filter((l) => l !== 'RX')).toEqual([
        'bridge PREROUTING nat',
        'ipv4 PREROUTING raw', 'ipv4 PREROUTING mangle', 'ipv4 PREROUTING nat',
        'bridge INPUT filter',
        'ipv4 FORWARD mangle', 'ipv4 FORWARD filter',
        'ipv4 POSTROUTING mangle', 'ipv4 POSTROUTING nat',
        'TX',
      ]);
      for (const h of t!.hops) expect(h.observed).toBe(true);
      expect(hop(t!, 'bridge PREROUTING nat')).toMatchObject({ in: c1.hostVeth, verdict: 'ACCEPT' });
      expect(hop(t!, 'ipv4 FORWARD filter')).toMatchObject({ in: lab.bridge, out: lab.uplink, physin: c1.hostVeth });
      expect(hop(t!, 'ipv4 POSTROUTING nat').chain).toBe('POSTROUTING');
      // br_handle_frame returns after the packet left by the uplink: its result is deduced.
      expect(t!.hops[0]).toMatchObject({ hook: 'RX', in: c1.hostVeth, rxHandler: 'br_handle_frame', rxResult: 'CONSUMED', inferred: ['rxResult'] });
      expect(t!.decisions.map((d) => `${d.kind} ${d.decision}`)).toEqual(expect.arrayContaining(['bridge local', 'route forward']));
      // br_handle_frame runs the bridge PREROUTING entries itself (nf_hook_bridge_pre);
      // br_netfilter (priority 0) resumes nf_hook_slow past its own entry afterwards.
      const bridgePre = t!.hookRuns.find((r) => r.family === 'bridge' && r.hook === 'PREROUTING')!;
      expect(bridgePre.priorities).toEqual([-300, 0]);
      expect(bridgePre.firstEntry).toBe(2);
      const ipv4Pre = t!.hookRuns.filter((r) => r.family === 'ipv4' && r.hook === 'PREROUTING');
      expect(ipv4Pre[0].verdict).toBe('ACCEPT');
      expect(ipv4Pre[0].priorities).toEqual(expect.arrayContaining([-300, -200, -150, -100]));
      // ip_sabotage_in (the first entry) steals the second IPv4 PREROUTING and routes the packet
      // from inside it: the forward path nests there, and that run's return comes after the packet left.
      expect(ipv4Pre[1]).toMatchObject({ verdict: null, depth: 0 });
      for (const hook of ['FORWARD', 'POSTROUTING']) {
        expect(t!.hookRuns.find((r) => r.family === 'ipv4' && r.hook === hook)).toMatchObject({ depth: 1, verdict: 'ACCEPT' });
      }
      expect(t!.end).toMatchObject({ kind: 'tx', dev: lab.uplink });
    });

    it('shows the reply back through the bridge OUTPUT and POSTROUTING hooks to the veth', async () => {
      const c1 = lab.containers[0];
      const ts = await trace(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
      const t = findIcmp(ts, 'reply', lab.wanIp);
      expect(t, JSON.stringify(ts)).toBeDefined();
      // nat is consulted for a connection's first packet only: the reply passes no nat chain.
      expect(lbl(t!).filter((l) => l !== 'RX' && l !== 'TX')).toEqual([
        'ipv4 PREROUTING raw', 'ipv4 PREROUTING mangle',
        'ipv4 FORWARD mangle', 'ipv4 FORWARD filter',
        'ipv4 POSTROUTING mangle',
        'bridge OUTPUT filter', 'bridge OUTPUT nat', 'bridge POSTROUTING nat',
      ]);
      expect(hop(t!, 'bridge POSTROUTING nat')).toMatchObject({ out: c1.hostVeth, dst: c1.ip });
      expect(t!.decisions.map((d) => `${d.kind} ${d.decision} ${d.port ?? ''}`.trim())).toEqual(
        expect.arrayContaining([`bridge forward ${c1.hostVeth}`]),
      );
      expect(t!.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
    });

    it('reports an ebtables filter FORWARD drop at that hop, and bridge FORWARD between containers', async () => {
      const [c1, c2] = lab.containers;
      const pass = await trace(() => expect(lab.ping(c1.netns, c2.ip)).toBe(true));
      const ok = findIcmp(pass, 'request', c1.ip);
      expect(ok, JSON.stringify(pass)).toBeDefined();
      expect(hop(ok!, 'bridge FORWARD filter')).toMatchObject({ in: c1.hostVeth, out: c2.hostVeth, verdict: 'ACCEPT' });
      expect(ok!.end).toMatchObject({ kind: 'tx', dev: c2.hostVeth });

      const rule = ['-t', 'filter', '-I', 'FORWARD', '-p', 'IPv4', '--ip-dst', c2.ip, '-j', 'DROP'];
      lab.exec(lab.host, 'ebtables', rule);
      let dropped: Traversal[];
      try {
        dropped = await trace(() => expect(lab.ping(c1.netns, c2.ip)).toBe(false));
      } finally {
        lab.exec(lab.host, 'ebtables', ['-t', 'filter', '-D', 'FORWARD', '-p', 'IPv4', '--ip-dst', c2.ip, '-j', 'DROP']);
      }
      const t = findIcmp(dropped, 'request', c1.ip);
      expect(t, JSON.stringify(dropped)).toBeDefined();
      const last = t!.hops[t!.hops.length - 1];
      expect(last).toMatchObject({ family: 'bridge', hook: 'FORWARD', table: 'filter', chain: 'FORWARD', verdict: 'DROP', observed: true, in: c1.hostVeth, out: c2.hostVeth });
      expect(last.inferred).toBeUndefined();
      expect(t!.hookRuns.find((r) => r.family === 'bridge' && r.hook === 'FORWARD')?.verdict).toBe('DROP');
      expect(ts2labels(dropped)).not.toContain('STOLEN');
      expect(t!.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
    });
  });
}

describe('backend choice on a stock kernel', () => {
  it('auto picks fentry, and doctor says so', () => {
    const r = runCli(['doctor', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.backend.name).toBe('fentry');
    const probes = Object.fromEntries(report.probes.map((p: { name: string; ok: boolean }) => [p.name, p.ok]));
    // Netfilter links came with Linux 6.4: Debian's 6.1 lacks them, its 6.12 has both.
    const [major, minor] = os.release().split('.').map(Number);
    expect(probes).toMatchObject({ fentry: true, kprobe: true, tp_btf: true, netfilter_link: major > 6 || (major === 6 && minor >= 4) });
  });
});
