/** npm run bench: what tracing costs, measured side by side in one run (the
 * machines are shared and noisy: ratios, not absolute numbers, are the result). */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Correlator } from '../src/correlate/correlator';
import { decodeBatch } from '../src/decode';
import { DockerLikeLab } from '../src/lab/dockerLike';
import { buildTraversal, ModelContext } from '../src/model/build';
import { native } from '../src/native';
import { forwardPathEvents, LAB, rawEvents } from './synthetic';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'bpftrace-net.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

interface Config {
  name: string;
  pps: number;
  ratio?: number;
  lost?: number;
  captured?: number;
  peak_rss_mb?: number;
}

function rxPackets(lab: DockerLikeLab): number {
  return Number(lab.exec(lab.wan, 'cat', ['/sys/class/net/eth0/statistics/rx_packets']).trim());
}

/** 64-byte UDP frames from the first container to the wan, for SECONDS. */
async function blast(lab: DockerLikeLab): Promise<number> {
  const c1 = lab.containers[0];
  const conf = path.join(os.tmpdir(), `bn-trafgen-${process.pid}.cfg`);
  fs.writeFileSync(conf, `{ eth(da=02:42:ed:1a:30:67, sa=${c1.mac}), ipv4(saddr=${c1.ip}, daddr=${lab.wanIp}, ttl=64), udp(sp=4000, dp=9), fill(0x00, 18) }\n`);
  const before = rxPackets(lab);
  // trafgen forks a sender per CPU: timeout stops the whole process group.
  const gen = spawn('ip', ['netns', 'exec', c1.netns, 'timeout', String(SECONDS), 'trafgen', '--dev', 'eth0', '--conf', conf, '--cpus', '1', '--no-sock-mem'], { stdio: 'ignore' });
  const code = await new Promise((r) => gen.on('exit', r));
  if (code !== 124) throw new Error(`trafgen ended with ${code} before its ${SECONDS} s`);
  await sleep(200);
  fs.rmSync(conf, { force: true });
  return (rxPackets(lab) - before) / SECONDS;
}

async function traced(lab: DockerLikeLab, args: string[]): Promise<{ pps: number; lost: number; captured: number; rssMb: number }> {
  const w: ChildProcess = spawn(process.execPath, [BIN, 'watch', lab.bridge, '--netns', lab.host, '--json', '--ring-size', '64M', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  w.stderr!.on('data', (d) => (stderr += d));
  while (!stderr.includes('watching ')) {
    if (w.exitCode !== null) throw new Error(`watch failed: ${stderr}`);
    await sleep(50);
  }
  let peakKb = 0;
  const rssTimer = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${w.pid}/status`, 'utf8'));
      if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
    } catch {
      // exited
    }
  }, 200);
  const exited = new Promise((r) => w.on('exit', r));
  const pps = await blast(lab);
  w.kill('SIGINT');
  await exited;
  clearInterval(rssTimer);
  const s = /(\d+) packets, (\d+) events, (\d+) lost/.exec(stderr);
  return { pps, captured: s ? Number(s[1]) : 0, lost: s ? Number(s[3]) : -1, rssMb: Math.round(peakKb / 1024) };
}

/** The notes' method: a LOG rule at the top of every chain of every table. */
async function withLogRules(lab: DockerLikeLab): Promise<number> {
  const chains: [string, string[]][] = [
    ['raw', ['PREROUTING', 'OUTPUT']], ['mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']],
    ['nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']], ['filter', ['INPUT', 'FORWARD', 'OUTPUT']],
  ];
  const saved = execFileSync('sysctl', ['-n', 'net.netfilter.nf_log_all_netns'], { encoding: 'utf8' }).trim();
  const rules: string[][] = [];
  try {
    execFileSync('sysctl', ['-qw', 'net.netfilter.nf_log_all_netns=1']);
    for (const [t, cs] of chains) for (const c of cs) {
      const rule = ['-t', t, '-I', c, '1', '-j', 'LOG', '--log-prefix', `bench:${t}:${c} `];
      lab.exec(lab.host, 'iptables', rule);
      rules.push(['-t', t, '-D', c, '-j', 'LOG', '--log-prefix', `bench:${t}:${c} `]);
    }
    return await blast(lab);
  } finally {
    for (const r of rules) lab.exec(lab.host, 'iptables', r);
    execFileSync('sysctl', ['-qw', `net.netfilter.nf_log_all_netns=${saved}`]);
  }
}

/** Decode + correlate + model on one core, from batches the native encoder made. */
function tsThroughput(): number {
  const packets = 20000;
  const batches: Buffer[] = [];
  for (let i = 0; i < packets; i += 256) {
    const evs = [];
    for (let j = i; j < Math.min(i + 256, packets); j++) evs.push(...forwardPathEvents(j + 1, BigInt(j) * 1000n, j % 2));
    batches.push(native().encodeBatch(rawEvents(evs), 0, 0));
  }
  const ctx: ModelContext = {
    netns: LAB.netns, bridgeIfindex: LAB.bridge, deviceName: (i) => `if${i}`, symbol: () => undefined,
    dropReason: (r) => `${r}`, toEpochNs: (t) => t,
  };
  let built = 0;
  const corr = new Correlator({ netns: LAB.netns, bridgeIfindex: LAB.bridge }, (p) => {
    buildTraversal(p.events, ctx, 0, p.branches);
    built++;
  });
  const start = process.hrtime.bigint();
  let events = 0;
  for (const b of batches) for (const e of decodeBatch(b).events) {
    corr.push(e);
    events++;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  if (built !== packets) throw new Error(`built ${built} of ${packets}`);
  return Math.round(events / secs);
}

async function main(): Promise<void> {
  const lab = new DockerLikeLab({ containers: 1 }).create();
  try {
    lab.exec(lab.wan, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP']);
    lab.ping(lab.containers[0].netns, lab.wanIp);
    progress(`untraced, ${SECONDS} s`);
    const untraced1 = await blast(lab);
    const configs: Config[] = [];
    progress('traced, a filter that matches nothing');
    const miss = await traced(lab, ['tcp', 'port', '1']);
    configs.push({ name: 'filter-miss', pps: miss.pps, lost: miss.lost, captured: miss.captured, peak_rss_mb: miss.rssMb });
    progress('traced, every event');
    const events = await traced(lab, []);
    configs.push({ name: 'events', pps: events.pps, lost: events.lost, captured: events.captured, peak_rss_mb: events.rssMb });
    progress('LOG rules in every chain (the notes\' method)');
    configs.push({ name: 'log-rules', pps: await withLogRules(lab) });
    progress('untraced again');
    const untraced2 = await blast(lab);
    progress('decode + correlate in TypeScript');
    const untraced = (untraced1 + untraced2) / 2;
    for (const c of configs) c.ratio = Number((c.pps / untraced).toFixed(3));
    const result = {
      seconds_per_config: SECONDS,
      untraced_pps: Math.round(untraced),
      untraced_runs_pps: [Math.round(untraced1), Math.round(untraced2)],
      configs: configs.map((c) => ({ ...c, pps: Math.round(c.pps) })),
      ts_events_per_s: tsThroughput(),
      peak_rss_mb: Math.max(...configs.map((c) => c.peak_rss_mb ?? 0)),
      not_measured: ['top', 'record', 'lossless_record_pps: packets mode and top are not built yet'],
    };
    console.log(`untraced: ${result.untraced_pps} pps (runs ${result.untraced_runs_pps.join(', ')})`);
    console.log('config        pps       ratio  lost      captured  rss MB');
    for (const c of result.configs) {
      console.log(`${c.name.padEnd(12)}  ${String(c.pps).padEnd(8)}  ${String(c.ratio).padEnd(5)}  ${String(c.lost ?? '-').padEnd(8)}  ${String(c.captured ?? '-').padEnd(8)}  ${c.peak_rss_mb ?? '-'}`);
    }
    console.log(`TS decode+correlate+model: ${result.ts_events_per_s} events/s on one core`);
    fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    lab.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
