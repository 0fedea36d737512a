/** Runs the real CLI (bin/bpftrace-net.js, built into dist/) as a child process. */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { undocumentedKeys } from './jsonContract';
import type { Traversal } from '../../src/model/traversal';
import { NODE_FLAGS } from '../../src/cli/nodeFlags';

export const BIN = path.resolve(__dirname, '../../bin/bpftrace-net.js');
/** node, its flags as the shebang gives them, the CLI: what to run it as. */
export const CLI = [process.execPath, ...NODE_FLAGS, BIN];

/** The CLI runs here, never in the checkout: a stray relative path a test gives
 * (or a bug) writes into this directory, which the test process removes when done. */
/** Made by test/support/globalSetup.ts; a file run on its own outside vitest's setup makes its own. */
export const CLI_CWD = process.env.BN_CLI_CWD ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bn-cli-cwd-'));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { timeoutMs?: number; prefix?: string[] } = {}): CliResult {
  const [cmd, argv] = opts.prefix ? [opts.prefix[0], [...opts.prefix.slice(1), ...CLI, ...args]] : [CLI[0], [...CLI.slice(1), ...args]];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, cwd: CLI_CWD });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A running `watch --json`: wait until it is attached, make traffic, stop it. */
export class WatchProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private exited: Promise<number | null>;

  /** command: watch, record or top (all say "watching ..." once attached). */
  constructor(args: string[], prefix: string[] = [], command = 'watch', env: Record<string, string> = {}) {
    const [cmd, argv] = prefix.length ? [prefix[0], [...prefix.slice(1), ...CLI, command, ...args]] : [CLI[0], [...CLI.slice(1), command, ...args]];
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: CLI_CWD, env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async ready(timeoutMs = 20_000): Promise<void> {
    const start = Date.now();
    while (!this.stderr.includes('watching ')) {
      if (this.child.exitCode !== null) throw new Error(`bpftrace-net exited early (${this.child.exitCode}): ${this.stderr}`);
      if (Date.now() - start > timeoutMs) throw new Error(`watch did not attach within ${timeoutMs} ms: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGINT, as a user's Ctrl-C, then the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exited;
  }

  wait(): Promise<number | null> {
    return this.exited;
  }

  /** The printed traversals; a key the README's JSON contract does not name fails the test. */
  traversals(): Traversal[] {
    const shown = this.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Traversal);
    const unnamed = [...new Set(shown.flatMap((t) => undocumentedKeys(t)))];
    if (unnamed.length) throw new Error(`JSON keys the README does not name: ${unnamed.join(', ')}`);
    return shown;
  }
}

/** Names of BPF programs loaded right now (kernel-truncated to 15 characters). */
export function loadedProgramNames(): string[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool prog show failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { name?: string }[]).map((p) => p.name ?? '');
}

/** The programs a built BPF object holds (global functions of its program sections), as the
 * kernel names them (15 characters at most): read from the object, not listed by hand. */
export function programsOf(object: 'hooks' | 'fentry' | 'kprobe' | 'probe' | 'hook_table'): string[] {
  const file = path.resolve(__dirname, `../../build/bpf/${object}.bpf.o`);
  const r = spawnSync('llvm-readelf', ['-sW', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`llvm-readelf ${file} failed: ${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === 'FUNC' && f[4] === 'GLOBAL').map((f) => f[7].slice(0, 15));
}

export const OUR_PROGRAMS = [...new Set((['hooks', 'fentry', 'kprobe', 'probe', 'hook_table'] as const).flatMap(programsOf))];

export function ourProgramsLoaded(): number {
  return loadedProgramNames().filter((n) => OUR_PROGRAMS.includes(n)).length;
}

export async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Runs `watch --json ARGS` (or another command, as is) around an action: attached before,
 * stopped (Ctrl-C) after a settle. */
export async function traceWhile(
  args: string[], action: () => void, opts: { settleMs?: number; readyMs?: number; command?: string; env?: Record<string, string> } = {},
): Promise<WatchProcess> {
  const command = opts.command ?? 'watch';
  const w = new WatchProcess(command === 'watch' ? [...args, '--json'] : args, [], command, opts.env);
  try {
    await w.ready(opts.readyMs);
    action();
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 600));
  } finally {
    const code = await w.stop();
    if (code !== 0) throw new Error(`${command} exited with ${code}: ${w.stderr}`);
  }
  return w;
}
