/** Correlation under load: two containers, packets interleaved on both CPUs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'child_process';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { WatchProcess } from '../support/cli';

const PER_CONTAINER = 5000;

function pingFlood(netns: string, target: string): Promise<number | null> {
  // -i 0.001: fast enough to interleave, bounded so the test's traffic stays small.
  const p = spawn('ip', ['netns', 'exec', netns, 'ping', '-n', '-q', '-c', String(PER_CONTAINER), '-i', '0.001', '-W', '1', target], { stdio: 'ignore' });
  return new Promise((resolve) => p.on('exit', resolve));
}

describe('correlation under load', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    for (const c of lab.containers) lab.ping(c.netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  it(`turns ${2 * PER_CONTAINER} interleaved echo requests from two containers into exactly one complete traversal each`, async () => {
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', '--ring-size', '64M']);
    try {
      await w.ready();
      const codes = await Promise.all(lab.containers.map((c) => pingFlood(c.netns, lab.wanIp)));
      expect(codes).toEqual([0, 0]);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      expect(await w.stop()).toBe(0);
    }
    const summary = /(\d+) packets, (\d+) events, (\d+) lost/.exec(w.stderr)!;
    expect(Number(summary[3]), 'events lost: the comparison below would not be fair').toBe(0);
    const traversals = w.traversals();
    const cpus = new Set<number>();
    for (const c of lab.containers) {
      const seen = new Map<number, number>();
      for (const t of traversals) {
        if (t.src !== c.ip || !t.summary.startsWith('icmp echo request')) continue;
        const seq = Number(/ seq (\d+)/.exec(t.summary)![1]);
        seen.set(seq, (seen.get(seq) ?? 0) + 1);
        expect(t.end).toMatchObject({ kind: 'tx', dev: lab.uplink });
        expect(t.missing).toBe(0);
        expect(t.hops.filter((h) => h.hook === 'RX')[0]).toMatchObject({ in: c.hostVeth });
        // The lab's netns has one table (ip nat): the hooks without chains show as hooks.
        expect(t.hops.filter((h) => h.family === 'ipv4').map((h) => `${h.hook} ${h.table}`)).toEqual(['PREROUTING null', 'FORWARD null', 'POSTROUTING nat']);
        for (const h of t.hops) if (h.cpu !== undefined) cpus.add(h.cpu);
      }
      expect(seen.size, `${c.name}: distinct echo requests`).toBe(PER_CONTAINER);
      expect([...seen.values()].every((n) => n === 1), `${c.name}: a request seen twice`).toBe(true);
    }
    expect(cpus.size, 'packets ran on one CPU only: nothing was interleaved').toBeGreaterThan(1);
  }, 120_000);
});
