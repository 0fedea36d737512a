/** `watch --json` against the real kernel on the Docker-like lab. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { addIptablesChains } from '../support/ruleset';
import { traceWhile as traceAround, WatchProcess } from '../support/cli';
import { findIcmp, hasInOrder, hop, label } from '../support/hops';

const settle = () => new Promise((r) => setTimeout(r, 600));

describe('watch on a Docker-like bridge', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    addIptablesChains(lab);
    // Resolve neighbours first so that the traced pings are the packets under test.
    lab.ping(lab.containers[0].netns, lab.wanIp);
    lab.ping(lab.containers[0].netns, lab.containers[1].ip);
  });
  afterAll(() => lab?.destroy());

  const traceWhile = (action: () => void, args: string[] = []) => traceAround([lab.bridge, '--netns', lab.host, ...args], action);


  it('shows container -> wan through raw/mangle/nat PREROUTING, mangle/filter FORWARD, mangle/nat POSTROUTING, out on the uplink', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    const t = findIcmp(w.traversals(), 'request', c1.ip);
    expect(t, w.stdout).toBeDefined();
    const order = [
      'RX',
      'ipv4 PREROUTING raw', 'ipv4 PREROUTING mangle', 'ipv4 PREROUTING nat',
      'ipv4 FORWARD mangle', 'ipv4 FORWARD filter',
      'ipv4 POSTROUTING mangle', 'ipv4 POSTROUTING nat',
      'TX',
    ];
    expect(hasInOrder(t!, order), t!.hops.map(label).join(' -> ')).toBe(true);
    expect(t!.hops[0]).toMatchObject({ family: 'netdev', hook: 'RX', in: c1.hostVeth, rxHandler: 'br_handle_frame', observed: true });
    for (const name of ['ipv4 PREROUTING raw', 'ipv4 PREROUTING mangle', 'ipv4 FORWARD filter']) {
      expect(hop(t!, name)).toMatchObject({ in: lab.bridge, physin: c1.hostVeth, verdict: 'ACCEPT', observed: true });
    }
    expect(hop(t!, 'ipv4 FORWARD filter').out).toBe(lab.uplink);
    expect(hop(t!, 'ipv4 POSTROUTING mangle')).toMatchObject({ out: lab.uplink, src: c1.ip, dst: lab.wanIp });
    // MASQUERADE runs in nat POSTROUTING: the slot after it sees the new source.
    expect(hop(t!, 'ipv4 POSTROUTING nat')).toMatchObject({ src: lab.uplinkIp, dst: lab.wanIp });
    expect(hop(t!, 'ipv4 FORWARD mangle').ttl).toBe(hop(t!, 'ipv4 PREROUTING raw').ttl! - 1);
    expect(t!.end).toMatchObject({ kind: 'tx', dev: lab.uplink });
    expect(t!).toMatchObject({ src: c1.ip, dst: lab.wanIp, proto: 'icmp', lost: 0, missing: 0 });
    expect(t!.decisions.map((d) => d.text)).toContain(`the destination MAC is the bridge's own: up to L3 on ${lab.bridge}`);
  });

  it('shows the reply un-NATed to the container and out on its veth', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    const t = findIcmp(w.traversals(), 'reply', lab.wanIp);
    expect(t, w.stdout).toBeDefined();
    expect(t!.dst).toBe(lab.uplinkIp);
    expect(t!.hops[0]).toMatchObject({ hook: 'RX', in: lab.uplink });
    expect(hop(t!, 'ipv4 PREROUTING mangle')).toMatchObject({ in: lab.uplink, dst: lab.uplinkIp });
    expect(hop(t!, 'ipv4 PREROUTING nat').dst).toBe(c1.ip);
    expect(hop(t!, 'ipv4 FORWARD filter')).toMatchObject({ in: lab.uplink, out: lab.bridge, dst: c1.ip, verdict: 'ACCEPT' });
    expect(t!.hops[t!.hops.length - 1]).toMatchObject({ hook: 'TX', out: c1.hostVeth, dst: c1.ip });
    expect(t!.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
  });

  it('ends a packet dropped by a filter FORWARD rule at that hop, with the kernel drop reason', async () => {
    const c1 = lab.containers[0];
    const rule = ['FORWARD', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', 'DROP'];
    lab.exec(lab.host, 'iptables', ['-I', ...rule]);
    let w: WatchProcess;
    try {
      w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false));
    } finally {
      lab.exec(lab.host, 'iptables', ['-D', ...rule]);
    }
    const t = findIcmp(w.traversals(), 'request', c1.ip);
    expect(t, w.stdout).toBeDefined();
    const last = t!.hops[t!.hops.length - 1];
    expect(last).toMatchObject({ family: 'ipv4', hook: 'FORWARD', table: 'filter', verdict: 'DROP', in: lab.bridge, out: lab.uplink, physin: c1.hostVeth });
    expect(hasInOrder(t!, ['ipv4 PREROUTING raw', 'ipv4 FORWARD mangle', 'ipv4 FORWARD filter'])).toBe(true);
    expect(t!.hops.some((h) => h.hook === 'POSTROUTING' || h.hook === 'TX')).toBe(false);
    expect(t!.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
    expect(t!.decisions.map((d) => d.text)).toContainEqual(expect.stringMatching(/^dropped at ipv4 filter FORWARD, kernel reason NETFILTER_DROP/));
  });

  it('bridges container -> container with br_netfilter hooks carrying physin and physout', async () => {
    const [c1, c2] = lab.containers;
    const w = await traceWhile(() => expect(lab.ping(c1.netns, c2.ip)).toBe(true));
    const t = findIcmp(w.traversals(), 'request', c1.ip);
    expect(t, w.stdout).toBeDefined();
    expect(hop(t!, 'ipv4 FORWARD filter')).toMatchObject({ in: lab.bridge, out: lab.bridge, physin: c1.hostVeth, physout: c2.hostVeth });
    expect(t!.end).toMatchObject({ kind: 'tx', dev: c2.hostVeth });
    expect(t!.decisions).toContainEqual(expect.objectContaining({ kind: 'bridge', decision: 'forward', port: c2.hostVeth, inferred: true }));
    // No decision appears twice.
    expect(new Set(t!.decisions.map((d) => d.text)).size).toBe(t!.decisions.length);
  });

  it('shows a flooded ARP broadcast as one traversal with a branch per port', async () => {
    const [c1, c2] = lab.containers;
    const w = await traceWhile(() => {
      lab.exec(c1.netns, 'ip', ['neigh', 'flush', 'all']);
      expect(lab.ping(c1.netns, c2.ip)).toBe(true);
    });
    const whoHas = w.traversals().filter((t) => t.summary === `arp who-has ${c2.ip} tell ${c1.ip}`);
    expect(whoHas, w.stdout).toHaveLength(1);
    const t = whoHas[0];
    expect(t.hops[0]).toMatchObject({ hook: 'RX', in: c1.hostVeth, rxHandler: 'br_handle_frame' });
    // The original goes up to the bridge itself; a copy leaves by every other port.
    expect(t.end).toMatchObject({ kind: 'local' });
    expect(t.branches.map((b) => b.end)).toEqual([expect.objectContaining({ kind: 'tx', dev: c2.hostVeth })]);
    expect(t.decisions.map((d) => d.text)).toContain(`flooded: 1 copy out ${c2.hostVeth}`);
  });

  it('stops by itself after --count packets', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--count', '2']);
    try {
      await w.ready();
      lab.ping(c1.netns, lab.wanIp, 3);
      expect(await w.wait()).toBe(0);
    } finally {
      await w.stop();
    }
    expect(w.traversals()).toHaveLength(2);
  });

  it('counts --duration from the moment tracing started, however long start-up took', async () => {
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--duration', '1', 'udp and port 53']);
    await w.ready();
    const attached = Date.now();
    expect(await w.wait()).toBe(0);
    expect(Date.now() - attached).toBeGreaterThanOrEqual(900);
  });

  it('works with --netns given as a path, and under ip netns exec', async () => {
    const c1 = lab.containers[0];
    for (const [args, prefix] of [
      [['--netns', `/var/run/netns/${lab.host}`], []],
      [[], ['ip', 'netns', 'exec', lab.host]],
    ] as [string[], string[]][]) {
      const w = new WatchProcess([lab.bridge, '--json', ...args], prefix);
      try {
        await w.ready();
        lab.ping(c1.netns, lab.wanIp);
        await settle();
      } finally {
        expect(await w.stop()).toBe(0);
      }
      const t = findIcmp(w.traversals(), 'request', c1.ip);
      expect(t, `${prefix.join(' ')} ${args.join(' ')}: ${w.stderr}`).toBeDefined();
      expect(t!.end).toMatchObject({ kind: 'tx', dev: lab.uplink });
    }
  });
});
