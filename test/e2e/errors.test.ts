/** Bad input: one line on stderr, exit code 2, no stack trace, nothing left attached. */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { EventKind } from '../../src/decode';
import { TraceReader } from '../../src/trace/reader';
import { decodeBatchWire } from '../../src/wire';
import { ourProgramsLoaded, programsOf, runCli, waitUntil, WatchProcess } from '../support/cli';

function expectOneLineError(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('bad input', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => lab?.destroy());

  it('names an unknown interface and the bridges that exist', () => {
    const r = runCli(['watch', 'br-nope', '--netns', lab.host]);
    expectOneLineError(r, new RegExp(`^bpftrace-net: no interface 'br-nope' in netns ${lab.host} \\(bridges here: ${lab.bridge}\\)$`));
  });

  it('refuses an interface that is not a bridge', () => {
    const r = runCli(['watch', lab.uplink, '--netns', lab.host]);
    expectOneLineError(r, new RegExp(`^bpftrace-net: ${lab.uplink} is not a bridge \\(it is veth; bridges here: ${lab.bridge}\\)$`));
  });

  it('names a netns that does not exist', () => {
    const r = runCli(['watch', lab.bridge, '--netns', `${lab.prefix}-missing`]);
    expectOneLineError(r, /^bpftrace-net: no network namespace '.*-missing' \(looked in \/run\/netns\/.*-missing, \/var\/run\/netns\/.*-missing\)$/);
  });

  it('names the capabilities it lacks when not root', () => {
    const r = runCli(['watch', lab.bridge, '--netns', lab.host], { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--'] });
    expectOneLineError(r, /^bpftrace-net: needs root: missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN .*\(run it with sudo\)$/);
  });

  it('rejects malformed options', () => {
    expectOneLineError(runCli(['watch', lab.bridge, '--count', 'many']), /--count must be a positive integer/);
    expectOneLineError(runCli(['watch', lab.bridge, '--backend', 'magic']), /--backend.*magic.*(auto|hooks)/);
    expectOneLineError(runCli(['watch', lab.bridge, '--ring-size', '1000']), /power of two/);
    expectOneLineError(runCli(['frobnicate']), /unknown command 'frobnicate'/);
    expectOneLineError(runCli(['watch', lab.bridge, '--sample', '1/0']), /--sample takes 1\/N/);
    expectOneLineError(runCli(['record', lab.bridge, '-w', '/tmp/x.bnt', '--snaplen', '9000']), /--snaplen takes 0 .* to 256 bytes/);
    expectOneLineError(runCli(['record', lab.bridge]), /required option '-w, --write <file>'/);
    expectOneLineError(runCli(['top', lab.bridge, '--interval', '-1']), /--interval must be a positive number/);
  });

  it('names what is wrong with a trace file, an output file or a Docker socket', () => {
    expectOneLineError(runCli(['replay', '/nonexistent.bnt']), /^bpftrace-net: cannot read \/nonexistent\.bnt: ENOENT$/);
    expectOneLineError(runCli(['replay', '/etc/hostname']), /^bpftrace-net: \/etc\/hostname: (not a bpftrace-net trace|corrupt|truncated) at byte 0: /);
    expectOneLineError(runCli(['export', '/etc/hostname', '-o', '/nonexistent/dir/x.pcapng']), /^bpftrace-net: cannot create \/nonexistent\/dir\/x\.pcapng: ENOENT$/);
    expectOneLineError(runCli(['ports', lab.bridge, '--netns', lab.host, '--docker-host', '/nonexistent.sock']), /--docker-host \/nonexistent\.sock: no such socket/);
    expectOneLineError(runCli(['whois', 'nothing-here', '--netns', lab.host]), /no interface, container, named netns or pid 'nothing-here'/);
  });

  it('leaves nothing attached after an error that comes once tracing runs', async () => {
    // A FIFO whose reader goes away after the header: the reader thread's next write fails
    // (EPIPE) with every program loaded and attached.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-err-'));
    const fifo = path.join(dir, 'out.bnt');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('head', ['-c', '1', fifo], { stdio: 'ignore' });
    try {
      const before = ourProgramsLoaded();
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '-w', fifo]);
      await w.ready();
      expect(ourProgramsLoaded()).toBeGreaterThan(before);
      const pinger = setInterval(() => lab.ping(lab.containers[0].netns, lab.wanIp, 1), 200);
      const code = await Promise.race([w.wait(), new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
      clearInterval(pinger);
      if (code === 'still running') await w.stop('SIGKILL');
      expect(code, w.stderr).toBe(2);
      expect(w.stderr).toMatch(/^bpftrace-net: writing the trace file failed: Broken pipe/m);
      expect(w.stderr).not.toMatch(/\n\s+at /);
      expect(await waitUntil(() => ourProgramsLoaded() === before)).toBe(true);
      expect(lab.exec(lab.host, 'tc', ['qdisc', 'show'])).not.toMatch(/clsact/);
    } finally {
      reader.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('release of every attachment', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => lab?.destroy());

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as NodeJS.Signals[]) {
    it(`releases all programs and links on ${signal}`, async () => {
      const before = ourProgramsLoaded();
      const w = new WatchProcess([lab.bridge, '--netns', lab.host]);
      try {
        await w.ready();
        // Every program of the hooks object is loaded (the probe stubs a plan leaves unused too),
        // and the hook-table reader, kept to read the ruleset again while tracing.
        expect(ourProgramsLoaded()).toBe(before + programsOf('hooks').length + programsOf('hook_table').length);
      } catch (err) {
        await w.stop('SIGKILL');
        throw err;
      }
      const code = await w.stop(signal);
      if (signal !== 'SIGKILL') expect(code).toBe(0);
      expect(await waitUntil(() => ourProgramsLoaded() === before), `programs still loaded after ${signal}`).toBe(true);
      // nothing pinned, no qdiscs: the netns' devices carry no clsact
      expect(lab.exec(lab.host, 'tc', ['qdisc', 'show'])).not.toMatch(/clsact/);
    });
  }
});

describe('lost events', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab({ containers: 1 }).create();
  });
  afterAll(() => lab?.destroy());

  /** watch (with `args`) while web-1 floods the wan with 3000 pings; stopped, it exited 0. */
  async function watchThroughFlood(args: string[]): Promise<WatchProcess> {
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json', ...args]);
    try {
      await w.ready();
      lab.exec(lab.containers[0].netns, 'ping', ['-n', '-q', '-f', '-c', '3000', '-W', '1', lab.wanIp]);
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      expect(await w.stop()).toBe(0);
    }
    return w;
  }

  it('counts what a full ring buffer could not take and shows it live, in JSON and in the summary', async () => {
    // About 16 events per packet against a ring of ~28 events.
    const w = await watchThroughFlood(['--ring-size', '4096']);
    const summary = /(\d+) packets, (\d+) events, (\d+) lost/.exec(w.stderr);
    expect(summary, w.stderr).not.toBeNull();
    const lost = Number(summary![3]);
    expect(lost).toBeGreaterThan(0);
    expect(w.stderr).toMatch(/! \d+ events lost so far/);
    const perCpu = [...w.stderr.matchAll(/cpu\d+: (\d+)/g)].map((m) => Number(m[1]));
    expect(perCpu.reduce((a, b) => a + b, 0)).toBe(lost);
    const ts = w.traversals();
    expect(Math.max(...ts.map((t) => t.lost))).toBeGreaterThan(0);
    expect(Math.max(...ts.map((t) => t.lost))).toBeLessThanOrEqual(lost);
    // Per packet: an echo request shown with fewer hops than a whole one, or without its end
    // (its last events lost: no later sequence number shows the gap), says what it is missing.
    const c1 = lab.containers[0];
    const requests = ts.filter((t) => t.src === c1.ip && /echo request/.test(t.summary));
    const whole = Math.max(...requests.filter((t) => t.end.kind === 'tx' && !t.missing).map((t) => t.hops.length));
    expect(whole).toBeGreaterThan(0);
    for (const t of requests) {
      if (t.hops.length < whole || t.end.kind === 'unknown') expect(t.missing, JSON.stringify(t)).toBeGreaterThan(0);
      else expect(t.missing).toBe(0);
    }
    // Every event the kernel produced was either delivered or counted: each echo request alone
    // makes 11 here (RX, 4 PREROUTING probes, RX on the bridge, FORWARD, 2 POSTROUTING, queue, xmit).
    expect(Number(summary![2]) + lost).toBeGreaterThanOrEqual(3000 * 11);
  });

  it('a flood the ring cannot take: new packets are shed whole and counted; those followed are whole or report their own losses', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-lost-'));
    try {
      const file = path.join(dir, 'lost.bnt');
      const w = await watchThroughFlood(['--mode', 'events', '--ring-size', '65536', '-w', file]);
      const summary = /(\d+) packets, (\d+) events, (\d+) lost.*; (\d+) packets shed whole, counted in it/.exec(w.stderr);
      expect(summary, w.stderr).not.toBeNull();
      const [lost, shed] = [Number(summary![3]), Number(summary![4])];
      expect(shed).toBeGreaterThan(0);
      // Each shed packet's hops are events lost: at least the one where it was shed.
      expect(lost).toBeGreaterThanOrEqual(shed);
      const seen = new Set<number>();
      const reports: number[] = [];
      const events = new Map<number, { n: number; lastSeq: number }>();
      const reader = new TraceReader(file);
      for (const f of reader.frames()) {
        if (!f.batch || f.records) continue;
        for (const e of decodeBatchWire(f.batch).events) {
          if (e.kind === EventKind.LOST) {
            reports.push(e.packetId);
            continue;
          }
          seen.add(e.packetId);
          const p = events.get(e.packetId) ?? { n: 0, lastSeq: 0 };
          events.set(e.packetId, { n: p.n + 1, lastSeq: Math.max(p.lastSeq, e.seq) });
        }
      }
      reader.close();
      expect(seen.size).toBeGreaterThan(0);
      // A report only for a packet user space knows; one never seen is in the capture count alone.
      expect(reports.filter((id) => !seen.has(id))).toEqual([]);
      // A followed packet had room in the ring: its events have no gap, or it says what it lost.
      const gapped = [...events].filter(([id, p]) => p.lastSeq + 1 !== p.n && !reports.includes(id));
      expect(gapped.length).toBeLessThanOrEqual(seen.size / 20);
      // The file keeps the count: replay says it as the capture did.
      const replayed = runCli(['replay', file]);
      expect(replayed.code, replayed.stderr).toBe(0);
      expect(replayed.stderr).toContain(`${lost} lost`);
      expect(replayed.stderr).toContain(`; ${shed} packets shed whole, counted in it`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
