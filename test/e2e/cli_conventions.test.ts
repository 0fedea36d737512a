/** What tcpdump users reach for: --version, -n. */
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { execFileSync, spawnSync } from 'child_process';
import { BIN, CLI_CWD, runCli, traceWhile } from '../support/cli';
import { NODE_FLAGS } from '../../src/cli/nodeFlags';

describe('CLI conventions', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
  });
  afterAll(() => lab?.destroy());

  it('--version prints the package version', () => {
    const version = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('run as an executable, the CLI starts node with the flags the tests and the bench give it', () => {
    expect(fs.readFileSync(BIN, 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    // Run by its shebang (env -S splits the flags off), as `sudo bpftrace-net` runs it.
    const r = spawnSync(BIN, ['--version'], { cwd: CLI_CWD, encoding: 'utf8', env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('-n: ports by device name only, no container names', async () => {
    const c1 = lab.containers[0];
    const named = await traceWhile([lab.bridge, '--netns', lab.host, 'icmp'], () => lab.ping(c1.netns, lab.wanIp, 1));
    const bare = await traceWhile([lab.bridge, '--netns', lab.host, '-n', 'icmp'], () => lab.ping(c1.netns, lab.wanIp, 1));
    expect(named.traversals().length).toBeGreaterThan(0);
    expect(bare.traversals().length).toBeGreaterThan(0);
    // The container's netns names the port without -n, and nothing names it with -n.
    expect(JSON.stringify(named.traversals())).toContain(c1.netns);
    expect(JSON.stringify(bare.traversals())).toContain(c1.hostVeth);
    expect(JSON.stringify(bare.traversals())).not.toContain(c1.netns);
  });

  it('watch -r FILE reads a trace as replay does, filter words included', async () => {
    const c1 = lab.containers[0];
    const file = path.join(CLI_CWD, 'conventions.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', file], () => lab.ping(c1.netns, lab.wanIp, 2), { command: 'record' });
    const replay = runCli(['replay', file, '--json', 'icmp[icmptype] = icmp-echo']);
    const read = runCli(['watch', '-r', file, '--json', 'icmp[icmptype] = icmp-echo']);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout).toBe(replay.stdout);
    expect(read.stdout.trim().split('\n')).toHaveLength(2);
    // -e: each hop's Ethernet addresses, as tcpdump -e prints them (the container's own MAC on its way in).
    const ether = runCli(['watch', '-r', file, '-e', 'icmp[icmptype] = icmp-echo']);
    expect(ether.stdout).toMatch(new RegExp(`IN=${c1.hostVeth} [^\\n]*MAC=${c1.mac}>`));
    expect(runCli(['replay', file]).stdout).not.toContain('MAC=');
    const r = runCli(['watch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^bpftrace-net: missing the bridge to trace \(or -r FILE to read a trace\)\n$/);
  });

  it('-e: the VLAN tag of each hop, in band at RX and held beside the packet after; pcapng frames carry it back', async () => {
    const [c1, c2] = lab.containers;
    // An 802.1Q-tagged echo request (VLAN 42, priority 5) written raw onto c1's eth0, to c2's MAC.
    const send = () => execFileSync('ip', ['netns', 'exec', c1.netns, 'python3', '-c', `
import socket, struct
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
icmp = struct.pack('!BBHHH', 8, 0, 0, 0x4242, 1) + b'vlan-test-payload!'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton('${c1.ip}'), socket.inet_aton('${c2.ip}'))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
mac = lambda m: bytes.fromhex(m.replace(':', ''))
frame = mac('${c2.mac}') + mac('${c1.mac}') + struct.pack('!HH', 0x8100, (5 << 13) | 42) + struct.pack('!H', 0x0800) + ip + icmp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
s.send(frame)
`]);
    const file = path.join(CLI_CWD, 'vlan.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, 'vlan 42'], send, { command: 'record' });
    const r = runCli(['replay', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const shown = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(shown).toHaveLength(1);
    const hops = shown[0].hops as { in?: string; out?: string; hook: string; vlan?: { id: number; pcp: number; proto: string } }[];
    const rx = hops.find((h) => h.hook === 'RX' && h.in === c1.hostVeth)!;
    const tx = hops.find((h) => h.hook === 'TX' && h.out === c2.hostVeth)!;
    for (const h of [rx, tx]) expect(h.vlan).toEqual({ id: 42, pcp: 5, dei: 0, proto: '802.1Q' });
    const text = runCli(['replay', file, '-e']).stdout;
    expect(text).toMatch(new RegExp(`OUT=${c2.hostVeth} [^\\n]*MAC=${c1.mac}>${c2.mac} VLAN=42 PRIO=5`));
    expect(runCli(['replay', file]).stdout).not.toContain('VLAN=');
    const pcap = path.join(CLI_CWD, 'vlan.pcapng');
    expect(runCli(['export', file, '-o', pcap]).code).toBe(0);
    const fields = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'vlan.id', '-e', 'vlan.priority', '-e', 'ip.dst'], { encoding: 'utf8' });
    const rows = fields.stdout.trim().split('\n').map((l) => l.split('\t'));
    // Every frame that starts at its Ethernet header carries the tag, the one the kernel held beside it included.
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row).toEqual(['42', '5', c2.ip]);
  });

  it('--container NAME: the kernel follows only packets that cross its port, in watch and record; an unknown one is named in one line', async () => {
    const [c1, c2] = lab.containers;
    const traffic = () => {
      lab.ping(c1.netns, lab.wanIp, 2);
      lab.ping(c2.netns, lab.wanIp, 2);
      lab.ping(c1.netns, c2.ip, 1); // bridged from c1 to c2: crosses c2's port on its way out
    };
    const w = await traceWhile([lab.bridge, '--netns', lab.host, '--container', c2.netns, 'icmp'], traffic);
    expect(w.stderr).toContain(`only packets crossing ${c2.hostVeth} (${c2.netns})`);
    const file = path.join(CLI_CWD, 'container.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '--container', c2.netns, '-w', file, 'icmp'], traffic, { command: 'record' });
    const recorded = runCli(['replay', file, '--json']);
    expect(recorded.code, recorded.stderr).toBe(0);
    for (const shown of [w.traversals(), recorded.stdout.trim().split('\n').map((l) => JSON.parse(l))]) {
      // c2's two requests to the uplink and their two replies, c1's request to c2 and c2's reply; nothing of c1's to the uplink.
      expect(shown.length).toBe(6);
      for (const t of shown) expect(JSON.stringify(t)).toContain(c2.hostVeth);
      // Replies come in NATed to the uplink address by a device not followed: the door keeps their first hops.
      for (const t of shown) expect(JSON.stringify(t.hops)).toContain(`"${c2.ip}"`);
      const toWan = shown.filter((t) => JSON.stringify(t.hops).includes(`"${lab.wanIp}"`));
      expect(toWan.length).toBe(4);
      for (const t of toWan) expect(JSON.stringify(t.hops)).not.toContain(`"${c1.ip}"`);
      // Each reply from the wan, un-NATed to c2, with the hops the door kept before it met c2's port.
      const replies = toWan.filter((t) => t.summary.includes('echo reply'));
      expect(replies).toHaveLength(2);
      for (const t of replies) expect(t.hops[0]).toMatchObject({ hook: 'RX', in: lab.uplink });
      for (const t of shown) expect(t.missing ?? 0).toBe(0);
    }
    const r = runCli(['watch', lab.bridge, '--netns', lab.host, '--container', 'nobody-here']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`no container 'nobody-here' behind a port of ${lab.bridge} \\(ports: .*${c1.hostVeth}`));
    const rec = runCli(['record', lab.bridge, '--netns', lab.host, '--container', 'nobody-here', '-w', path.join(CLI_CWD, 'nobody.bnt')]);
    expect(rec.code).toBe(2);
    expect(fs.existsSync(path.join(CLI_CWD, 'nobody.bnt'))).toBe(false);
  });
});
