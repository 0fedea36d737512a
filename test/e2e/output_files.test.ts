/** Files the tool writes, and the pipe it writes to: a symlink planted at the output
 * path is replaced, never followed; a device node keeps its mode; a failed run leaves
 * an existing file as it was; -C/-W/-G rotate into files that each replay on their own;
 * a closed stdout stops a command cleanly. */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { CLI, CLI_CWD, ourProgramsLoaded, runCli, traceWhile, WatchProcess } from '../support/cli';

function expectOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('output files', () => {
  let lab: DockerLikeLab;
  let dir: string;
  let trace: string;
  beforeAll(async () => {
    lab = new DockerLikeLab({ containers: 1 }).create();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-out-'));
    trace = path.join(dir, 'good.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', trace, 'icmp'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 2), { command: 'record' });
  });
  afterAll(() => {
    lab?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const leftovers = () => fs.readdirSync(dir).filter((f) => f.endsWith('.part'));

  it('replaces a symlink planted at the output path instead of writing through it', async () => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
    const planted = path.join(dir, 'planted.bnt');
    fs.symlinkSync(victim, planted);
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', planted, 'icmp'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 1), { command: 'record' });
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.statSync(victim).mode & 0o777).toBe(0o644);
    expect(fs.lstatSync(planted).isFile()).toBe(true);
    expect(fs.statSync(planted).mode & 0o777).toBe(0o600);
    expect(runCli(['replay', planted]).code).toBe(0);

    const pcap = path.join(dir, 'planted.pcapng');
    fs.symlinkSync(victim, pcap);
    expect(runCli(['export', trace, '-o', pcap]).code).toBe(0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.lstatSync(pcap).isFile()).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('writes to a device node as it is, without changing its mode', async () => {
    const before = fs.statSync('/dev/null');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', '/dev/null', 'icmp'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 1), { command: 'record' });
    expect(runCli(['export', trace, '-o', '/dev/null']).code).toBe(0);
    const after = fs.statSync('/dev/null');
    expect(after.mode).toBe(before.mode);
    expect(after.isCharacterDevice()).toBe(true);
  });

  it('leaves an existing output as it was when export fails: junk, empty, missing or pcapng input', () => {
    const keep = path.join(dir, 'keep.pcapng');
    fs.writeFileSync(keep, 'precious\n');
    const junk = path.join(dir, 'junk.bnt');
    fs.writeFileSync(junk, 'this is not a trace\n');
    const empty = path.join(dir, 'empty.bnt');
    fs.writeFileSync(empty, '');
    const pcapng = path.join(dir, 'real.pcapng');
    expect(runCli(['export', trace, '-o', pcapng]).code).toBe(0);
    for (const input of [junk, empty, path.join(dir, 'missing.bnt'), pcapng]) {
      const r = runCli(['export', input, '-o', keep]);
      expect(r.code, `${input}: ${r.stderr}`).toBe(2);
      expect(fs.readFileSync(keep, 'utf8'), input).toBe('precious\n');
    }
    expect(leftovers()).toEqual([]);
  });

  it('leaves an existing trace file as it was when the capture cannot start', () => {
    const keep = path.join(dir, 'keep.bnt');
    fs.copyFileSync(trace, keep);
    const r = runCli(['record', 'br-nope', '--netns', lab.host, '-w', keep]);
    expectOneLineError(r, /no interface 'br-nope'/);
    expect(fs.readFileSync(keep).equals(fs.readFileSync(trace))).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('refuses -C 0, -W alone and an unwritable place in one line, before anything is loaded', () => {
    const before = ourProgramsLoaded();
    expectOneLineError(runCli(['record', lab.bridge, '--netns', lab.host, '-w', path.join(dir, 'x.bnt'), '-C', '0']), /-C must be a positive size/);
    expectOneLineError(runCli(['record', lab.bridge, '--netns', lab.host, '-w', path.join(dir, 'x.bnt'), '-W', '3']), /-W keeps the last N files that -C or -G start/);
    expectOneLineError(runCli(['record', lab.bridge, '--netns', lab.host, '-w', path.join(dir, 'x.bnt'), '-G', '-1']), /-G must be a positive number/);
    expectOneLineError(runCli(['record', lab.bridge, '--netns', lab.host, '-w', '/nonexistent/dir/x.bnt']), /^bpftrace-net: cannot create \/nonexistent\/dir\/x\.bnt: ENOENT$/);
    expectOneLineError(runCli(['record', lab.bridge, '--netns', lab.host, '-w', dir]), /cannot create .*: EISDIR$/);
    expect(ourProgramsLoaded()).toBe(before);
    expect(fs.existsSync(path.join(dir, 'x.bnt'))).toBe(false);
  });

  it('-C and -W: rotates into files that each replay on their own, and keeps the last N', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'rot-'));
    const base = path.join(sub, 'r.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', base, '-C', '3k', '-W', '3', 'icmp'], () => {
      for (let i = 0; i < 4; i++) lab.ping(lab.containers[0].netns, lab.wanIp, 8);
    }, { command: 'record', settleMs: 1500 });
    const files = fs.readdirSync(sub).sort();
    expect(files.length).toBe(3);
    expect(files.every((f) => /^r\.bnt\d+$/.test(f)), files.join(' ')).toBe(true);
    let packets = 0;
    for (const f of files) {
      const r = runCli(['replay', path.join(sub, f), '--json']);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/recorded on .* from /);
      packets += r.stdout.split('\n').filter((l) => l).length;
      expect(fs.statSync(path.join(sub, f)).mode & 0o777).toBe(0o600);
    }
    expect(packets).toBeGreaterThan(0);
  });
});

describe('a closed pipe', () => {
  let lab: DockerLikeLab;
  let trace: string;
  beforeAll(async () => {
    lab = new DockerLikeLab({ containers: 1 }).create();
    trace = path.join(CLI_CWD, 'pipe.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', trace, 'icmp'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 5), { command: 'record' });
  });
  afterAll(() => lab?.destroy());

  /** `bpftrace-net ARGS | head -1`, through a real shell pipe. */
  function intoHead(args: string[], traffic?: () => void): Promise<{ code: number | null; stderr: string; head: string }> {
    const quoted = [...CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const sh = spawn('bash', ['-c', `set -o pipefail; ${quoted} 2>"$ERR" | head -1`], {
      cwd: CLI_CWD, env: { ...process.env, ERR: path.join(CLI_CWD, 'err.txt') }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let head = '';
    sh.stdout!.on('data', (d) => (head += d));
    const timer = traffic ? setInterval(traffic, 300) : undefined;
    return new Promise((resolve) => sh.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, head, stderr: fs.readFileSync(path.join(CLI_CWD, 'err.txt'), 'utf8') });
    }));
  }

  it('watch | head -1: stops, prints its summary, exits 0, no stack trace', async () => {
    const r = await intoHead(['watch', lab.bridge, '--netns', lab.host, 'icmp'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 1));
    expect(r.head).toMatch(/^#\d+ /);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^\d+ packets, \d+ events, \d+ lost/m);
    expect(r.stderr).not.toMatch(/EPIPE|\n\s+at /);
  }, 30_000);

  it('watch -c 2 prints two packets and its summary says two', async () => {
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '-c', '2', 'icmp']);
    await w.ready();
    lab.ping(lab.containers[0].netns, lab.wanIp, 4);
    expect(await w.wait()).toBe(0);
    expect(w.stdout.match(/^#\d+ /gm)).toHaveLength(2);
    expect(w.stderr).toMatch(/^2 packets, \d+ events, \d+ lost/m);
  });

  it('replay | head -1 and top | head -1 alike', async () => {
    const replay = await intoHead(['replay', trace]);
    expect(replay.head).toMatch(/^#\d+ /);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stderr).toMatch(/packets, \d+ events/);
    expect(replay.stderr).not.toMatch(/EPIPE|\n\s+at /);
    const top = await intoHead(['top', lab.bridge, '--netns', lab.host, '--json', '-i', '0.3'], () => lab.ping(lab.containers[0].netns, lab.wanIp, 1));
    expect(JSON.parse(top.head)).toHaveProperty('paths');
    expect(top.code, top.stderr).toBe(0);
    expect(top.stderr).not.toMatch(/EPIPE|\n\s+at /);
  }, 30_000);
});
