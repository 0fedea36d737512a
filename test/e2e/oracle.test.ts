/** The tool against the kernel's own LOG output: same traffic, same hops, same order. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import { findIcmp } from '../support/hops';
import { OracleHop, fromOracle, fromTool, underOracleThenWatch } from '../support/logOracle';


describe('hop for hop against the kernel LOG output', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    for (const c of lab.containers) lab.ping(c.netns, lab.wanIp);
    lab.ping(lab.containers[0].netns, lab.containers[1].ip);
    lab.ping(lab.host, lab.containers[0].ip);
  });
  afterAll(() => lab?.destroy());

  /** Runs the scenario under LOG rules, then again under watch with the rules gone. */
  const both = (scenario: () => void) => underOracleThenWatch(lab, [lab.bridge, '--netns', lab.host], scenario, {});


  const icmpType = (type: number) => (h: OracleHop) => h.fields.PROTO === 'ICMP' && h.fields.TYPE === String(type);

  it('container -> wan and its reply', async () => {
    const c1 = lab.containers[0];
    const { logged, traced } = await both(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    const request = logged.filter(icmpType(8));
    const reply = logged.filter(icmpType(0));
    expect(request.length).toBeGreaterThan(5);
    expect(fromTool(findIcmp(traced, 'request', c1.ip)!)).toEqual(request.map(fromOracle));
    expect(fromTool(findIcmp(traced, 'reply', lab.wanIp)!)).toEqual(reply.map(fromOracle));
    // LOG prints a packet entering nat POSTROUTING; the tool shows it leaving, MASQUERADEd.
    expect(request.find((h) => h.table === 'nat' && h.hook === 'POSTROUTING')!.src).toBe(c1.ip);
    const t = findIcmp(traced, 'request', c1.ip)!;
    expect(t.hops.find((h) => h.table === 'nat' && h.hook === 'POSTROUTING')!.src).toBe(lab.uplinkIp);
    expect(t.decisions.map((d) => d.text)).toContain(`SNAT ${c1.ip} -> ${lab.uplinkIp} in ip nat POSTROUTING at ipv4 POSTROUTING`);
    expect(t.decisions.map((d) => d.text)).toContain(`routing: not for this host, forwarded out ${lab.uplink}, route 10.200.0.0/24`);
    const back = findIcmp(traced, 'reply', lab.wanIp)!;
    expect(back.decisions.map((d) => d.text)).toContain(`routing: not for this host, forwarded out ${lab.bridge}, route 192.168.222.0/24`);
    expect(back.decisions.map((d) => d.text)).toContain(`DNAT ${lab.uplinkIp} -> ${c1.ip} in ip nat PREROUTING at ipv4 PREROUTING (reply of a translated connection)`);
  });

  for (const bnf of ['1', '0']) {
    it(`container <-> container with bridge-nf-call-iptables=${bnf}`, async () => {
      const [c1, c2] = lab.containers;
      lab.exec(lab.host, 'sysctl', ['-qw', `net.bridge.bridge-nf-call-iptables=${bnf}`]);
      let run: { logged: OracleHop[]; traced: Traversal[] };
      try {
        run = await both(() => expect(lab.ping(c1.netns, c2.ip)).toBe(true));
      } finally {
        lab.exec(lab.host, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1']);
      }
      const t = findIcmp(run.traced, 'request', c1.ip)!;
      expect(fromTool(t)).toEqual(run.logged.filter(icmpType(8)).map(fromOracle));
      expect(t.end).toMatchObject({ kind: 'tx', dev: c2.hostVeth });
      if (bnf === '0') {
        expect(run.logged).toHaveLength(0);
        expect(t.decisions.map((d) => d.text)).toContain('bridge-nf-call-iptables=0: bridged IPv4 is not passed to iptables');
      } else {
        expect(run.logged.filter(icmpType(8)).length).toBeGreaterThan(5);
      }
    });
  }

  it('a published port: DNAT wan -> host:8080 -> container:80, and the answer', async () => {
    const c1 = lab.containers[0];
    const dnat = ['PREROUTING', '-i', lab.uplink, '-p', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', `${c1.ip}:80`];
    lab.exec(lab.host, 'iptables', ['-t', 'nat', '-A', ...dnat]);
    const listener = `import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',80));s.listen(8)\nwhile True:\n  c,_=s.accept();time.sleep(0.2);c.close()`;
    const server = require('child_process').spawn('ip', ['netns', 'exec', c1.netns, 'python3', '-c', listener], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const connect = () => lab.exec(lab.wan, 'bash', ['-c', `exec 3<>/dev/tcp/${lab.uplinkIp}/8080 && exec 3>&-`]);
    let run: { logged: OracleHop[]; traced: Traversal[] };
    try {
      run = await both(connect);
    } finally {
      server.kill();
      lab.exec(lab.host, 'iptables', ['-t', 'nat', '-D', ...dnat]);
    }
    const isSyn = (h: OracleHop) => / SYN /.test(` ${h.text} `) && !/ ACK /.test(` ${h.text} `);
    const isSynAck = (h: OracleHop) => / SYN /.test(` ${h.text} `) && / ACK /.test(` ${h.text} `);
    const syn = run.traced.find((t) => t.proto === 'tcp' && t.dst === lab.uplinkIp && t.summary.includes(':8080 '))!;
    const synAck = run.traced.find((t) => t.proto === 'tcp' && t.src === c1.ip && t.summary.includes(`${c1.ip}:80 `))!;
    expect(syn, JSON.stringify(run.traced.map((t) => t.summary))).toBeDefined();
    expect(fromTool(syn)).toEqual(run.logged.filter(isSyn).map(fromOracle));
    expect(fromTool(synAck)).toEqual(run.logged.filter(isSynAck).map(fromOracle));
    expect(syn.decisions.map((d) => d.text)).toContain(`DNAT ${lab.uplinkIp}:8080 -> ${c1.ip}:80 in ip nat PREROUTING at ipv4 PREROUTING`);
    expect(syn.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
    // Flags and length as tcpdump writes them (the kernel's LOG said SYN, then SYN ACK).
    expect(syn.summary).toMatch(/^tcp \S+ > 10\.200\.0\.1:8080 \[S\] len \d+ ttl \d+$/);
    expect(synAck.summary).toMatch(/^tcp 192\.168\.222\.2:80 > \S+ \[S\.\] len \d+ ttl \d+$/);
  });

  for (const target of ['DROP', 'REJECT']) {
    it(`${target} in filter FORWARD`, async () => {
      const c1 = lab.containers[0];
      const rule = ['FORWARD', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', target];
      lab.exec(lab.host, 'iptables', ['-A', ...rule]);
      let run: { logged: OracleHop[]; traced: Traversal[] };
      try {
        run = await both(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false));
      } finally {
        lab.exec(lab.host, 'iptables', ['-D', ...rule]);
      }
      const t = findIcmp(run.traced, 'request', c1.ip)!;
      expect(fromTool(t)).toEqual(run.logged.filter(icmpType(8)).map(fromOracle));
      // REJECT is told apart from DROP by the ICMP error the kernel answers with, even without --rules.
      expect(t.hops[t.hops.length - 1]).toMatchObject({ hook: 'FORWARD', table: 'filter', verdict: target });
      expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
      if (target === 'REJECT') {
        // The rejection is a packet of its own, made by the host: out through OUTPUT to the container.
        const unreachable = run.traced.find((x) => x.summary.startsWith('icmp unreachable'))!;
        expect(unreachable, JSON.stringify(run.traced.map((x) => x.summary))).toBeDefined();
        expect(fromTool(unreachable)).toEqual(run.logged.filter(icmpType(3)).map(fromOracle));
        expect(unreachable.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
        // Linked both ways.
        expect(t).toMatchObject({ answeredBy: unreachable.id, end: { rejected: true } });
        expect(unreachable.answers).toBe(t.id);
      } else {
        expect(t.answeredBy).toBeUndefined();
        expect(t.end.rejected).toBeUndefined();
      }
    });
  }

  it('beyond the uplink subnet: routed by the default route', async () => {
    const c1 = lab.containers[0];
    const { logged, traced } = await both(() => expect(lab.ping(c1.netns, lab.wanFarIp)).toBe(true));
    const t = findIcmp(traced, 'request', c1.ip)!;
    expect(fromTool(t)).toEqual(logged.filter(icmpType(8)).map(fromOracle));
    expect(t.decisions.map((d) => d.text)).toContain(`routing: not for this host, forwarded out ${lab.uplink}, route default via ${lab.wanIp}`);
  });

  it('IPv6 container -> wan, MASQUERADEd by ip6tables', async () => {
    const lab6 = new DockerLikeLab({ containers: 1, ipv6: true }).create();
    try {
      const c1 = lab6.containers[0];
      lab6.ping(c1.netns, lab6.wanIp6);
      const run = await underOracleThenWatch(lab6, [lab6.bridge, '--netns', lab6.host], () => expect(lab6.ping(c1.netns, lab6.wanIp6)).toBe(true), { ipv6: true });
      const logged = run.logged.filter((h) => h.family === 'ipv6' && h.fields.PROTO === 'ICMPv6' && h.fields.TYPE === '128');
      const t = run.traced.find((x) => x.summary.startsWith(`icmpv6 echo request ${c1.ip6} > ${lab6.wanIp6}`))!;
      expect(t, JSON.stringify(run.traced.map((x) => x.summary))).toBeDefined();
      expect(logged.length).toBeGreaterThan(5);
      expect(fromTool(t)).toEqual(logged.map(fromOracle));
      expect(t.decisions.map((d) => d.text)).toContain(`SNAT ${c1.ip6} -> ${lab6.uplinkIp6} in ip6 nat POSTROUTING at ipv6 POSTROUTING`);
      expect(t.end).toMatchObject({ kind: 'tx', dev: lab6.uplink });
    } finally {
      lab6.destroy();
    }
  });

  it('host -> container: the OUTPUT path', async () => {
    const c1 = lab.containers[0];
    const { logged, traced } = await both(() => expect(lab.ping(lab.host, c1.ip)).toBe(true));
    const t = findIcmp(traced, 'request', lab.gateway)!;
    expect(t, JSON.stringify(traced.map((x) => x.summary))).toBeDefined();
    expect(fromTool(t)).toEqual(logged.filter(icmpType(8)).map(fromOracle));
    expect(t.hops[0]).toMatchObject({ family: 'ipv4', hook: 'OUTPUT' });
    expect(t.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
  });
});
