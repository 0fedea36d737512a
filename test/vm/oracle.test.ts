/** In the stock-kernel VM, where the bridge family is observed too: the tool
 * against ebtables' and iptables' own LOG output, every family, hop for hop. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import { WatchProcess } from '../support/cli';
import { findIcmp } from '../support/hops';
import { OracleHop, placeOf, placesFromTool, underOracleThenWatch } from '../support/logOracle';

const settle = () => new Promise((r) => setTimeout(r, 1500));

describe('every family against the kernel LOG output (fentry)', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    for (const c of lab.containers) lab.ping(c.netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  const both = (scenario: () => void) => underOracleThenWatch(lab, [lab.bridge, '--netns', lab.host, '--backend', 'fentry'], scenario, { bridge: true, settleMs: 1500, readyMs: 120_000 });


  it('container -> wan and the reply: the notes, bridge chains included', async () => {
    const c1 = lab.containers[0];
    const { logged, traced } = await both(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    // Bridge LOG lines carry devices and MACs only (as in the notes): the request's come in
    // by the container's port, the reply's go out by it.
    const ipv4Frame = (h: OracleHop) => h.text.includes('proto = 0x0800');
    const request = logged.filter((h) => (h.fields.PROTO === 'ICMP' && h.fields.TYPE === '8') || (h.family === 'bridge' && ipv4Frame(h) && h.in === c1.hostVeth));
    const reply = logged.filter((h) => (h.fields.PROTO === 'ICMP' && h.fields.TYPE === '0') || (h.family === 'bridge' && ipv4Frame(h) && h.out === c1.hostVeth));
    expect(placesFromTool(findIcmp(traced, 'request', c1.ip)!.hops)).toEqual(request.map(placeOf));
    expect(placesFromTool(findIcmp(traced, 'reply', lab.wanIp)!.hops)).toEqual(reply.map(placeOf));
    expect(request.filter((h) => h.family === 'bridge').map((h) => `${h.table} ${h.hook}`)).toEqual(['nat PREROUTING', 'filter INPUT']);
    expect(reply.filter((h) => h.family === 'bridge').map((h) => `${h.table} ${h.hook}`)).toEqual(['filter OUTPUT', 'nat OUTPUT', 'nat POSTROUTING']);
  });

  it('container <-> container: bridge FORWARD with the IPv4 hooks br_netfilter runs', async () => {
    const [c1, c2] = lab.containers;
    const { logged, traced } = await both(() => expect(lab.ping(c1.netns, c2.ip)).toBe(true));
    const request = logged.filter((h) => (h.fields.PROTO === 'ICMP' && h.fields.TYPE === '8') || (h.family === 'bridge' && h.text.includes('proto = 0x0800') && (h.in === c1.hostVeth || h.out === c2.hostVeth)));
    expect(request.filter((h) => h.family === 'bridge').map((h) => `${h.table} ${h.hook}`)).toEqual(['nat PREROUTING', 'filter FORWARD', 'nat POSTROUTING']);
    expect(placesFromTool(findIcmp(traced, 'request', c1.ip)!.hops)).toEqual(request.map(placeOf));
  });

  it('ARP: the bridge family only, a broadcast flooded to the other port', async () => {
    const [c1, c2] = lab.containers;
    const { logged, traced } = await both(() => {
      lab.exec(c1.netns, 'ip', ['neigh', 'flush', 'all']);
      expect(lab.ping(c1.netns, c2.ip)).toBe(true);
    });
    const whoHas = traced.find((t) => t.summary === `arp who-has ${c2.ip} tell ${c1.ip}`)!;
    expect(whoHas, JSON.stringify(traced.map((t) => t.summary))).toBeDefined();
    // The original and its copy, in the kernel's order, against the who-has frame's LOG lines
    // (broadcast: in by c1's port; the copy out by c2's).
    const tool = [...whoHas.hops, ...whoHas.branches.flatMap((b) => b.hops)].sort((a, b) => a.ts - b.ts);
    const arpRequest = logged.filter((h) => h.family === 'bridge' && h.text.includes('proto = 0x0806') && h.text.includes('MAC dest = ff:ff:ff:ff:ff:ff'));
    expect(arpRequest.length).toBeGreaterThan(2);
    expect(placesFromTool(tool)).toEqual(arpRequest.map(placeOf));
    expect(whoHas.hops.some((h) => h.family === 'ipv4')).toBe(false);
    expect(whoHas.decisions.map((d) => d.text)).toContain(`flooded: 1 copy out ${c2.hostVeth}`);
  });

  it('a broute rule (legacy ebtables) hands the frame to L3 on the port itself', async () => {
    const c1 = lab.containers[0];
    // In the broute table DROP means: do not bridge, route. The redirect gives the frame
    // the port's own MAC, so that the port's L3 stack takes it as addressed to the host.
    const rule = ['BROUTING', '-p', 'IPv4', '--ip-dst', lab.gateway, '-j', 'redirect', '--redirect-target', 'DROP'];
    lab.exec(lab.host, 'ebtables-legacy', ['-t', 'broute', '-A', ...rule]);
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--backend', 'fentry']);
    try {
      await w.ready(120_000);
      expect(lab.ping(c1.netns, lab.gateway)).toBe(true);
      await settle();
    } finally {
      expect(await w.stop()).toBe(0);
      lab.exec(lab.host, 'ebtables-legacy', ['-t', 'broute', '-D', ...rule]);
    }
    const traced = w.traversals();
    const t = findIcmp(traced, 'request', c1.ip)!;
    expect(t, JSON.stringify(traced.map((x) => x.summary))).toBeDefined();
    expect(t.hops[0]).toMatchObject({ hook: 'RX', in: c1.hostVeth, rxResult: 'PASS' });
    expect(t.hops[0].inferred).toBeUndefined();
    expect(t.hops.find((h) => h.family === 'bridge')).toMatchObject({ hook: 'BROUTING', table: 'broute', verdict: 'DROP' });
    // At L3 the packet's device is the port, not the bridge; no bridge hook after BROUTING.
    expect(t.hops.find((h) => h.family === 'ipv4')).toMatchObject({ hook: 'PREROUTING', in: c1.hostVeth });
    expect(t.hops.filter((h) => h.family === 'bridge')).toHaveLength(1);
    expect(t.end).toMatchObject({ kind: 'local' });
    expect(t.decisions.map((d) => d.text)).toContain('routing: addressed to this host, delivered locally');
  });
});
