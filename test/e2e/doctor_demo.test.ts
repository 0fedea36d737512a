import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Traversal } from '../../src/model/traversal';
import { native } from '../../src/native';
import { runCli, WatchProcess } from '../support/cli';

const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe('doctor', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => lab?.destroy());

  it('reports what the kernel allows, the netns sysctls, and the backend auto picks', () => {
    const r = runCli(['doctor', '--netns', lab.host, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const probes = new Map<string, { ok: boolean; detail: string }>(report.probes.map((p: { name: string }) => [p.name, p]));
    expect([...probes.keys()].sort()).toEqual(['btf', 'fentry', 'fentry_bridge', 'kprobe', 'netfilter_link', 'ringbuf', 'tc', 'tp_btf']);
    // Checked against what the kernel shows outside BPF (not against the same probe again).
    expect(probes.get('btf')?.ok).toBe(fs.existsSync('/sys/kernel/btf/vmlinux'));
    expect(probes.get('kprobe')?.ok).toBe(fs.existsSync('/sys/bus/event_source/devices/kprobe'));
    const [major, minor] = os.release().split('.').map(Number);
    // BPF netfilter links came in 6.4.
    expect(probes.get('netfilter_link')?.ok).toBe(major > 6 || (major === 6 && minor >= 4));
    for (const p of probes.values()) if (!p.ok) expect(p.detail).toMatch(/errno \d+/);
    expect(report.netns.sysctls['net.bridge.bridge-nf-call-iptables']).toBe('1');
    expect(report.netns.sysctls['net.ipv4.ip_forward']).toBe('1');
    const hooksUsable = ['btf', 'ringbuf', 'tp_btf', 'netfilter_link'].every((n) => probes.get(n)?.ok);
    expect(report.backend.name).toBe(hooksUsable ? 'hooks' : null);
  });

  it('prints a readable report', () => {
    const r = runCli(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kernel \S+/);
    expect(r.stdout).toMatch(/BPF netfilter links/);
    expect(r.stdout).toMatch(/^backend: /m);
  });
});

describe('demo', () => {
  it('traces pings across its own lab and removes the lab', () => {
    const before = netnsList();
    const r = runCli(['demo', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const ts = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Traversal);
    const request = ts.find((t) => t.summary.includes('echo request') && t.dst === '10.200.0.2');
    expect(request, r.stdout).toBeDefined();
    expect(request!.end).toMatchObject({ kind: 'tx', dev: 'enp4s0' });
    // The demo's netns has one MASQUERADE rule: ip nat is its only table, FORWARD a hook without chains.
    expect(request!.hops.filter((h) => h.family === 'ipv4').map((h) => `${h.hook} ${h.table}`)).toEqual(['PREROUTING null', 'FORWARD null', 'POSTROUTING nat']);
    expect(netnsList()).toBe(before);
  });

  it('shows --help with examples for every command', () => {
    for (const cmd of ['watch', 'doctor', 'demo']) {
      const r = runCli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n\s+sudo bpftrace-net /);
    }
  });
});

describe('backend choice on this kernel', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => lab?.destroy());

  it('auto says in one short line which backend it picked; -v says why it fell back, with libbpf\'s words', async () => {
    const probes = new Map(native().probeKernel().map((p) => [p.name, p]));
    const startLine = async (extra: string[]) => {
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--duration', '1', ...extra]);
      await w.ready();
      expect(await w.wait()).toBe(0);
      return w.stderr.split('\n').find((l) => l.startsWith('watching '))!;
    };
    const short = await startLine([]);
    const verbose = await startLine(['-v']);
    expect(short.length).toBeLessThan(200);
    if (probes.get('fentry')!.ok) {
      expect(short).toMatch(/; backend fentry$/);
      expect(verbose).toMatch(/auto picked fentry/);
    } else {
      expect(short).toMatch(/; backend (kprobe|hooks) \(fentry(, kprobe)? not usable here; -v says why\)$/);
      expect(short).not.toContain('libbpf');
      expect(verbose).toMatch(/auto picked (kprobe|hooks): .*; not fentry, as this kernel lacks fentry\/fexit on nf_hook_slow/);
      expect(verbose).toContain(probes.get('fentry')!.detail);
    }
  });

  it('refuses a backend this kernel cannot run, naming what is missing', () => {
    const probes = new Map(native().probeKernel().map((p) => [p.name, p]));
    for (const backend of ['fentry', 'kprobe'] as const) {
      const r = runCli(['watch', lab.bridge, '--netns', lab.host, '--backend', backend, '--duration', '1']);
      if (probes.get(backend)!.ok) {
        expect(r.code, r.stderr).toBe(0);
      } else {
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(new RegExp(`^bpftrace-net: --backend ${backend}: this kernel lacks`));
      }
    }
  });
});
