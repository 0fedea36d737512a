/** tcpdump filters, compiled by libpcap and run in the kernel at each packet's first hook. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { spawnSync } from 'child_process';
import { runCli, traceWhile, WatchProcess } from '../support/cli';
import { findIcmp } from '../support/hops';


describe('in-kernel packet filters', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    for (const c of lab.containers) lab.ping(c.netns, lab.wanIp);
    lab.ping(lab.containers[0].netns, lab.containers[1].ip);
  });
  afterAll(() => lab?.destroy());

  const watchWith = (filter: string[], action: () => void, extra: string[] = []) =>
    traceWhile([lab.bridge, '--netns', lab.host, ...extra, ...filter], action);


  it('follows only what the expression matches, through NAT', async () => {
    const [c1, c2] = lab.containers;
    const w = await watchWith(['icmp', 'and', 'host', c2.ip], () => {
      lab.ping(c1.netns, lab.wanIp);
      lab.ping(c1.netns, c2.ip);
      lab.ping(c2.netns, lab.wanIp);
    });
    const ts = w.traversals();
    expect(ts.length).toBeGreaterThan(0);
    for (const t of ts) {
      expect(t.proto).toBe('icmp');
      expect([t.src, t.dst]).toContain(c2.ip);
    }
    expect(findIcmp(ts, 'request', c1.ip)?.dst).toBe(c2.ip);
    // Matched at its first hook, followed after MASQUERADE rewrote its source.
    const out = findIcmp(ts, 'request', c2.ip)!;
    expect(out.hops.find((h) => h.table === 'nat' && h.hook === 'POSTROUTING')?.src).toBe(lab.uplinkIp);
    expect(out.end).toMatchObject({ kind: 'tx', dev: lab.uplink });
  });

  it('decides like tcpdump on header fields, MACs and byte offsets', async () => {
    const c1 = lab.containers[0];
    const cases: [string, boolean][] = [
      ['ip[8] = 64', true],            // TTL at the first hook, before the router decrements it
      ['ip[8] = 63', false],
      [`ether src ${c1.mac}`, true],
      ['ether src 02:42:c0:a8:de:09', false],
      ['icmp[icmptype] = icmp-echo', true],
      ['net 192.168.222.0/24 and not udp', true],
      ['tcp[tcpflags] & tcp-syn != 0', false],
      ['len > 1000', false],
    ];
    for (const [expr, matches] of cases) {
      const w = await watchWith([expr], () => lab.ping(c1.netns, lab.wanIp));
      const request = findIcmp(w.traversals(), 'request', c1.ip);
      expect(Boolean(request), `${expr}: ${w.traversals().map((t) => t.summary).join('; ')}`).toBe(matches);
    }
  });

  it('the filter compiled to eBPF decides as the interpreter does, and leaves it the bytes past its copy', async () => {
    const c1 = lab.containers[0];
    let compiledLoaded = false;
    const traffic = () => {
      // Who decides is real: the compiled program is there while the traffic runs.
      compiledLoaded ||= spawnSync('bpftool', ['prog', 'show', 'name', 'bn_filter']).status === 0;
      lab.ping(c1.netns, lab.wanIp);
      lab.exec(c1.netns, 'ping', ['-c', '1', '-W', '2', '-s', '400', lab.wanIp]);
      lab.exec(c1.netns, 'bash', ['-c', `echo query > /dev/udp/${lab.wanIp}/53`]);
    };
    // Each run sends anew: the same packets but for the ICMP id and the UDP source port.
    const seen = (w: WatchProcess) =>
      w.traversals().map((t) => `${t.src} > ${t.dst} ${t.summary.replace(/ id \d+/, '').replace(/:\d+ >/, ':* >')}`).sort();
    // Loads past the 142 bytes it copies (ip[150]) are the interpreter's; port loads are indirect.
    const filters = ['icmp and ip[150] != 0', 'udp port 53', 'ip[2:2] > 300', 'icmp[icmptype] = icmp-echo and len > 200', 'ether[12:2] = 0x0800 and ip[8] = 64'];
    for (const f of filters) {
      compiledLoaded = false;
      const compiled = seen(await watchWith([f], traffic));
      expect(compiledLoaded, f).toBe(true);
      const interpreted = seen(await traceWhile([lab.bridge, '--netns', lab.host, f], traffic, { env: { BPFTRACE_NET_FILTER_INTERPRETED: '1' } }));
      expect(compiled.length, f).toBeGreaterThan(0);
      expect(compiled, f).toEqual(interpreted);
    }
  });

  it('a filter that matches nothing shows nothing', async () => {
    const w = await watchWith(['udp', 'port', '9'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 3));
    expect(w.traversals()).toHaveLength(0);
    expect(w.stderr).toMatch(/^0 packets, 0 events, 0 lost$/m);
  });

  it('refuses a malformed expression in libpcap\'s words, before loading anything', () => {
    const r = runCli(['watch', lab.bridge, '--netns', lab.host, 'icmp and']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^bpftrace-net: bad filter 'icmp and': .*syntax error/);
  });

  it('--mark follows only packets carrying the mark', async () => {
    const c1 = lab.containers[0];
    // Marks do not cross netns: the host's own pings (ping -m sets SO_MARK) carry them.
    const w = await watchWith([], () => {
      lab.exec(lab.host, 'ping', ['-n', '-q', '-c', '1', '-m', '16', c1.ip]);
      lab.exec(lab.host, 'ping', ['-n', '-q', '-c', '1', '-m', '17', c1.ip]);
    }, ['--mark', '0x10/0xff']);
    const requests = w.traversals().filter((t) => t.summary.startsWith('icmp echo request'));
    expect(requests).toHaveLength(1);
    expect(requests[0].hops[0]).toMatchObject({ hook: 'OUTPUT' });
    expect(runCli(['watch', lab.bridge, '--mark', '0x11/0x10']).stderr).toMatch(/--mark takes VALUE or VALUE\/MASK/);
  });
});
