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

  it('watch names the netns behind a port', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile([lab.bridge, '--netns', lab.host, 'icmp'], () => lab.ping(c1.netns, lab.wanIp));
    const t = findIcmp(w.traversals(), 'request', c1.ip)!;
    expect(t.devices?.[c1.hostVeth]?.container).toMatchObject({ name: c1.netns, runtime: 'netns' });
  });
});
