/** Against a real Docker engine (its own netns): Docker's bridge, chains and MASQUERADE. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Traversal } from '../../src/model/traversal';
import { DockerEngine } from '../support/dockerEngine';
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
    expect(t.decisions.map((d) => d.text)).toContain(`SNAT ${c1.ip} -> ${engine.uplinkIp} in nat POSTROUTING`);
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
