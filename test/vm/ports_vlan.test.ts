/** VLANs of bridge ports, on Debian's stock kernel (this host's kernel has no bridge VLAN
 * filtering): `ports` reads them over netlink, as `bridge vlan` lists them. */
import { execFileSync } from 'child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { PortInfo } from '../../src/topology/ports';
import { runCli } from '../support/cli';

describe('ports on a VLAN-filtering bridge', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 2 }).create();
  });
  afterAll(() => lab?.destroy());

  it('lists each port\'s VLANs and flags as bridge vlan does', () => {
    const [c1, c2] = lab.containers;
    const inNs = (cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', lab.host, cmd, ...args]).toString();
    inNs('ip', ['link', 'set', lab.bridge, 'type', 'bridge', 'vlan_filtering', '1']);
    inNs('bridge', ['vlan', 'add', 'vid', '42', 'dev', c1.hostVeth]);
    inNs('bridge', ['vlan', 'add', 'vid', '43', 'dev', c2.hostVeth, 'pvid', 'untagged']);
    inNs('bridge', ['fdb', 'add', '02:00:00:00:00:42', 'dev', c1.hostVeth, 'master', 'static', 'vlan', '42']);
    const r = runCli(['ports', lab.bridge, '--netns', lab.host, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ports = JSON.parse(r.stdout) as PortInfo[];
    const listed = JSON.parse(inNs('bridge', ['-j', 'vlan', 'show'])) as { ifname: string; vlans: { vlan: number; flags?: string[] }[] }[];
    for (const c of [c1, c2]) {
      const port = ports.find((p) => p.name === c.hostVeth)!;
      expect(port.vlans).toEqual(listed.find((v) => v.ifname === c.hostVeth)!.vlans.map((v) => ({ vlan: v.vlan, flags: v.flags ?? [] })));
    }
    expect(ports.find((p) => p.name === c1.hostVeth)!.vlans).toContainEqual({ vlan: 42, flags: [] });
    expect(ports.find((p) => p.name === c2.hostVeth)!.vlans).toContainEqual({ vlan: 43, flags: ['PVID', 'Egress Untagged'] });
    expect(ports.find((p) => p.name === c1.hostVeth)!.fdb).toContainEqual(expect.objectContaining({ mac: '02:00:00:00:00:42', vlan: 42, state: 'static' }));
  });
});
