/** Ports without Docker: a named netns, and an anonymous netns only a process holds. */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { PortInfo } from '../../src/topology/ports';
import { runCli, traceWhile, waitUntil } from '../support/cli';
import { findIcmp } from '../support/hops';

describe('ports whose peers are plain network namespaces', () => {
  let lab: DockerLikeLab;
  let holder: ChildProcess;
  const anonVeth = 'vethanon0';
  beforeAll(async () => {
    lab = new DockerLikeLab({ containers: 1 }).create();
    // A process in a netns of its own, never named: what a container runtime without an API leaves.
    holder = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' });
    const self = fs.readlinkSync('/proc/self/ns/net');
    await waitUntil(() => {
      try {
        return fs.readlinkSync(`/proc/${holder.pid}/ns/net`) !== self;
      } catch {
        return false;
      }
    });
    execFileSync('ip', ['-n', lab.host, 'link', 'add', anonVeth, 'type', 'veth', 'peer', 'name', 'inside0', 'netns', String(holder.pid)]);
    execFileSync('ip', ['-n', lab.host, 'link', 'set', anonVeth, 'master', lab.bridge, 'up']);
  });
  afterAll(() => {
    holder?.kill('SIGKILL');
    lab?.destroy();
  });

  it('ports names a named netns and a process-held one', () => {
    const r = runCli(['ports', lab.bridge, '--netns', lab.host, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ports = JSON.parse(r.stdout) as PortInfo[];
    const c1 = lab.containers[0];
    expect(ports.find((p) => p.name === c1.hostVeth)).toMatchObject({
      container: { name: c1.netns, runtime: 'netns', netns: c1.netns }, peer: { name: 'eth0' },
    });
    expect(ports.find((p) => p.name === anonVeth)).toMatchObject({
      container: { name: `sleep[${holder.pid}]`, runtime: 'process', pid: holder.pid }, peer: { name: 'inside0' },
    });
    const whois = runCli(['whois', anonVeth, '--netns', lab.host]);
    expect(whois.stdout).toContain(`process: sleep[${holder.pid}]`);
    expect(whois.stdout).toContain('peer: inside0');
    const reverse = runCli(['whois', String(holder.pid), '--netns', lab.host, '--json']);
    expect(JSON.parse(reverse.stdout)[0].veth).toBe(anonVeth);
  });

  it('ports reads settings, VLANs and the FDB over netlink: what ip -d link, bridge vlan and bridge fdb list', () => {
    const c1 = lab.containers[0];
    const inNs = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', lab.host, cmd, ...args]).toString();
    inNs('bridge', ['link', 'set', 'dev', anonVeth, 'hairpin', 'on', 'learning', 'off', 'flood', 'off']);
    // Kernels built without CONFIG_BRIDGE_VLAN_FILTERING (this host's) refuse VLANs; Debian's (the VM) has them.
    let vlansWork = true;
    try {
      inNs('bridge', ['vlan', 'add', 'vid', '42', 'dev', anonVeth]);
      inNs('bridge', ['vlan', 'add', 'vid', '43', 'dev', anonVeth, 'pvid', 'untagged']);
    } catch {
      vlansWork = false;
    }
    inNs('bridge', ['fdb', 'add', '02:00:00:00:00:42', 'dev', anonVeth, 'master', 'static', ...(vlansWork ? ['vlan', '42'] : [])]);
    lab.ping(c1.netns, lab.wanIp); // the bridge learns c1's MAC on its port
    const c1Mac = (JSON.parse(execFileSync('ip', ['-n', c1.netns, '-j', 'link', 'show', 'eth0']).toString()) as { address: string }[])[0].address;
    const r = runCli(['ports', lab.bridge, '--netns', lab.host, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ports = JSON.parse(r.stdout) as PortInfo[];
    const links = JSON.parse(inNs('ip', ['-j', '-d', 'link', 'show'])) as
      { ifname: string; operstate: string; linkinfo?: { info_slave_data?: { state: string; hairpin: boolean; learning: boolean; flood: boolean } } }[];
    const vlans = JSON.parse(inNs('bridge', ['-j', 'vlan', 'show'])) as { ifname: string; vlans: { vlan: number; flags?: string[] }[] }[];
    const fdb = JSON.parse(inNs('bridge', ['-j', 'fdb', 'show'])) as { mac: string; ifname: string; vlan?: number; flags: string[]; state?: string }[];
    expect(ports.length).toBeGreaterThanOrEqual(2);
    for (const port of ports) {
      const link = links.find((l) => l.ifname === port.name)!;
      const slave = link.linkinfo!.info_slave_data!;
      expect({ state: port.state, operstate: port.operstate, hairpin: port.hairpin, learning: port.learning, flood: port.flood })
        .toEqual({ state: slave.state, operstate: link.operstate.toLowerCase(), hairpin: slave.hairpin, learning: slave.learning, flood: slave.flood });
      expect(port.vlans).toEqual((vlans.find((v) => v.ifname === port.name)?.vlans ?? []).map((v) => ({ vlan: v.vlan, flags: v.flags ?? [] })));
      const expected = fdb.filter((f) => f.ifname === port.name && !f.flags.includes('self'))
        .map((f) => ({ mac: f.mac, vlan: f.vlan, flags: f.flags, state: f.state || undefined }));
      const sort = (xs: { mac: string; vlan?: number }[]) => [...xs].sort((a, b) => `${a.mac}/${a.vlan}`.localeCompare(`${b.mac}/${b.vlan}`));
      expect(sort(port.fdb).map((f) => JSON.parse(JSON.stringify(f)))).toEqual(sort(expected).map((f) => JSON.parse(JSON.stringify(f))));
    }
    const anon = ports.find((p) => p.name === anonVeth)!;
    expect(anon).toMatchObject({ hairpin: true, learning: false, flood: false });
    if (vlansWork) expect(anon.vlans).toEqual(expect.arrayContaining([{ vlan: 42, flags: [] }, { vlan: 43, flags: ['PVID', 'Egress Untagged'] }]));
    expect(anon.fdb).toContainEqual(expect.objectContaining({ mac: '02:00:00:00:00:42', state: 'static', ...(vlansWork ? { vlan: 42 } : {}) }));
    expect(ports.find((p) => p.name === c1.hostVeth)!.fdb.map((f) => f.mac)).toContain(c1Mac);
  });

  it('watch names the netns behind a port', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile([lab.bridge, '--netns', lab.host, 'icmp'], () => lab.ping(c1.netns, lab.wanIp));
    const t = findIcmp(w.traversals(), 'request', c1.ip)!;
    expect(t.devices?.[c1.hostVeth]?.container).toMatchObject({ name: c1.netns, runtime: 'netns' });
  });
});
