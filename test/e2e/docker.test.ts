/** Against a real Docker engine (its own netns): Docker's bridge, chains and MASQUERADE. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Traversal } from '../../src/model/traversal';
import type { PortInfo } from '../../src/topology/ports';
import { runCli, waitUntil, WatchProcess } from '../support/cli';
import { DockerContainer, DockerEngine } from '../support/dockerEngine';
import { findIcmp } from '../support/hops';
import { OracleHop, fromOracle, fromTool, underOracleThenWatch } from '../support/logOracle';


describe('a real Docker engine', () => {
  let engine: DockerEngine;
  beforeAll(async () => {
    engine = await new DockerEngine().start();
    for (const c of engine.containers) engine.ping(c.name, engine.wanIp);
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
  });

  const both = (scenario: () => void) => underOracleThenWatch(engine, [engine.bridge, '--netns', engine.host], scenario, {});


  const echoRequests = (h: OracleHop) => h.fields.PROTO === 'ICMP' && h.fields.TYPE === '8';

  it('traces container -> wan across Docker\'s br-xxxxxxxxxxxx as the kernel LOGs it', async () => {
    expect(engine.bridge).toMatch(/^br-[0-9a-f]{12}$/);
    const [c1] = engine.containers;
    const { logged, traced } = await both(() => expect(engine.ping(c1.name, engine.wanIp)).toBe(true));
    const t = findIcmp(traced, 'request', c1.ip)!;
    expect(t, JSON.stringify(traced.map((x) => x.summary))).toBeDefined();
    expect(fromTool(t)).toEqual(logged.filter(echoRequests).map(fromOracle));
    expect(t.hops[0]).toMatchObject({ hook: 'RX', in: c1.hostVeth, rxHandler: 'br_handle_frame' });
    expect(t.decisions.map((d) => d.text)).toContain(`SNAT ${c1.ip} -> ${engine.uplinkIp} in ip nat POSTROUTING at ipv4 POSTROUTING`);
    expect(t.end).toMatchObject({ kind: 'tx', dev: engine.uplink });
  });

  it('reports a DROP in DOCKER-USER at filter FORWARD with the kernel reason', async () => {
    const [c1] = engine.containers;
    const rule = ['DOCKER-USER', '-s', c1.ip, '-d', engine.wanIp, '-j', 'DROP'];
    engine.exec(engine.host, 'iptables', ['-I', ...rule]);
    let run: { logged: OracleHop[]; traced: Traversal[] };
    try {
      run = await both(() => expect(engine.ping(c1.name, engine.wanIp)).toBe(false));
    } finally {
      engine.exec(engine.host, 'iptables', ['-D', ...rule]);
    }
    const t = findIcmp(run.traced, 'request', c1.ip)!;
    expect(fromTool(t)).toEqual(run.logged.filter(echoRequests).map(fromOracle));
    expect(t.hops[t.hops.length - 1]).toMatchObject({ family: 'ipv4', hook: 'FORWARD', table: 'filter', verdict: 'DROP', physin: c1.hostVeth });
    expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
  });

  it('sees container <-> container on Docker\'s bridge', async () => {
    const [c1, c2] = engine.containers;
    const { logged, traced } = await both(() => expect(engine.ping(c1.name, c2.ip)).toBe(true));
    const t = findIcmp(traced, 'request', c1.ip)!;
    expect(fromTool(t)).toEqual(logged.filter(echoRequests).map(fromOracle));
    expect(t.end).toMatchObject({ kind: 'tx', dev: c2.hostVeth });
  });
});

describe('container names from a real Docker engine', () => {
  let engine: DockerEngine;
  let onDocker0: DockerContainer;
  beforeAll(async () => {
    engine = await new DockerEngine().start();
    onDocker0 = engine.runContainer('db-1', 'bridge');
    for (const c of engine.containers) engine.ping(c.name, engine.wanIp);
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
  });
  const docker = () => ['--netns', engine.host, '--docker-host', `unix://${engine.sock}`];

  it('ports names the container behind every port of br-xxxx and docker0, as docker inspect does', () => {
    for (const [bridge, expected] of [[engine.bridge, engine.containers], ['docker0', [onDocker0]]] as const) {
      const r = runCli(['ports', bridge, ...docker(), '--json']);
      expect(r.code, r.stderr).toBe(0);
      const ports = JSON.parse(r.stdout) as PortInfo[];
      expect(ports.map((p) => p.name).sort()).toEqual(expected.map((c) => c.hostVeth).sort());
      for (const c of expected) {
        const port = ports.find((p) => p.name === c.hostVeth)!;
        const inspect = engine.inspect(c.name);
        expect(port.container).toMatchObject({ id: inspect.Id, name: c.name, image: 'bb:local', runtime: 'docker', pid: inspect.State.Pid });
        expect(port.peer).toMatchObject({ name: 'eth0' });
        expect(port.state).toBe('forwarding');
      }
      const table = runCli(['ports', bridge, ...docker()]);
      for (const c of expected) expect(table.stdout).toMatch(new RegExp(`${c.hostVeth} .* ${c.name} \\(docker, bb:local`));
    }
  });

  it('whois answers what find-container-by-veth.sh answered, and the reverse', () => {
    const [c1] = engine.containers;
    const inspect = engine.inspect(c1.name);
    const r = runCli(['whois', c1.hostVeth, ...docker(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({
      veth: c1.hostVeth, bridge: engine.bridge, peer: expect.objectContaining({ name: 'eth0' }),
      container: expect.objectContaining({ id: inspect.Id, name: c1.name, pid: inspect.State.Pid, image: inspect.Config.Image }),
    })]);
    const text = runCli(['whois', c1.hostVeth, ...docker()]);
    expect(text.stdout).toContain(`container: ${c1.name} (id ${inspect.Id.slice(0, 12)})`);
    const reverse = runCli(['whois', c1.name, ...docker(), '--json']);
    expect(JSON.parse(reverse.stdout).map((a: { veth: string }) => a.veth)).toEqual([c1.hostVeth]);
    const byId = runCli(['whois', inspect.Id.slice(0, 12), ...docker(), '--json']);
    expect(JSON.parse(byId.stdout).map((a: { veth: string }) => a.veth)).toEqual([c1.hostVeth]);
    const none = runCli(['whois', 'no-such-thing', ...docker()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^bpftrace-net: no interface, container, named netns or pid 'no-such-thing'/);
  });

  it('watch names containers in text and JSON, and names a container started mid-watch in its next traversal', async () => {
    const [c1] = engine.containers;
    const w = new WatchProcess([engine.bridge, ...docker(), '--json', 'icmp']);
    const text = new WatchProcess([engine.bridge, ...docker(), 'icmp']);
    let late: DockerContainer | undefined;
    try {
      await Promise.all([w.ready(), text.ready()]);
      expect(engine.ping(c1.name, engine.wanIp)).toBe(true);
      late = engine.runContainer('web-late');
      // The new port is noticed through netlink and traced at once.
      await waitUntil(() => w.stderr.includes(`port added: ${late!.hostVeth} (web-late)`), 10_000);
      expect(engine.ping('web-late', engine.wanIp)).toBe(true);
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      expect(await w.stop()).toBe(0);
      expect(await text.stop()).toBe(0);
    }
    const ts = w.traversals();
    const first = findIcmp(ts, 'request', c1.ip)!;
    expect(first.devices?.[c1.hostVeth]?.container).toMatchObject({ name: c1.name, runtime: 'docker', image: 'bb:local' });
    expect(text.stdout).toContain(`IN=${c1.hostVeth} (${c1.name})`);
    const fromLate = findIcmp(ts, 'request', late!.ip);
    expect(fromLate, ts.map((t) => t.summary).join('\n')).toBeDefined();
    expect(fromLate!.hops[0]).toMatchObject({ hook: 'RX', in: late!.hostVeth });
    expect(fromLate!.devices?.[late!.hostVeth]?.container).toMatchObject({ name: 'web-late', id: engine.inspect('web-late').Id });
    const reply = findIcmp(ts, 'reply', engine.wanIp);
    expect(reply).toBeDefined();
  }, 60_000);
});
