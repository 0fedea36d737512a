/** npm run bench: what tracing costs, measured side by side in one run (the
 * machines are shared and noisy: ratios, not absolute numbers, are the result). */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NODE_FLAGS } from '../src/cli/nodeFlags';
import { DockerLikeLab } from '../src/lab/dockerLike';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** BENCH_ONLY=floor,top: just these configurations and the untraced runs, printed, results.json left alone
 * (for working on one hot path; the full run is what counts). */
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const wanted = (name: string) => !ONLY || ONLY.includes(name);
/** BENCH_BACKEND=fentry: every traced configuration with this backend (default: auto). */
const BACKEND = process.env.BENCH_BACKEND ? ['--backend', process.env.BENCH_BACKEND] : [];
const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'bpftrace-net.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

interface Config {
  name: string;
  pps: number;
  ratio?: number;
  lost?: number;
  /** events, packets: packets shed whole because the ring was nearly full (their losses are in lost). */
  shed?: number;
  captured?: number;
  peak_rss_mb?: number;
  /** record: hook hits a packet (the kernel's events over its packets). */
  hops_per_packet?: number;
}

function hopsPerPacket(stderr: string): { hops_per_packet?: number } {
  const m = /(\d+) packets, (\d+) events/.exec(stderr);
  return m && Number(m[1]) ? { hops_per_packet: Number((Number(m[2]) / Number(m[1])).toFixed(1)) } : {};
}

function rxPackets(lab: DockerLikeLab): number {
  return Number(lab.exec(lab.wan, 'cat', ['/sys/class/net/eth0/statistics/rx_packets']).trim());
}

/** 64-byte UDP frames from the first container to the wan, for SECONDS, as fast as
 * one sender goes or at an offered `rate` ("150kpps"); returns delivered packets/s. */
async function blast(lab: DockerLikeLab, rate?: string, seconds = SECONDS): Promise<number> {
  const c1 = lab.containers[0];
  const conf = path.join(os.tmpdir(), `bn-trafgen-${process.pid}.cfg`);
  fs.writeFileSync(conf, `{ eth(da=02:42:ed:1a:30:67, sa=${c1.mac}), ipv4(saddr=${c1.ip}, daddr=${lab.wanIp}, ttl=64), udp(sp=4000, dp=9), fill(0x00, 18) }\n`);
  const before = rxPackets(lab);
  try {
    // trafgen forks a sender per CPU: timeout stops the whole process group.
    const gen = spawn('ip', ['netns', 'exec', c1.netns, 'timeout', String(seconds), 'trafgen', '--dev', 'eth0', '--conf', conf, '--cpus', '1', '--no-sock-mem', ...(rate ? ['--rate', rate] : [])],
      // trafgen writes a temporary file where it runs: not in the checkout (read-only in the VM).
      { stdio: 'ignore', cwd: os.tmpdir() });
    const code = await new Promise((r) => gen.on('exit', r));
    if (code !== 124) throw new Error(`trafgen ended with ${code} before its ${seconds} s`);
    await sleep(200);
  } finally {
    fs.rmSync(conf, { force: true });
  }
  return (rxPackets(lab) - before) / seconds;
}

interface TracedRun {
  pps: number;
  lost: number;
  shed: number;
  captured: number;
  rssMb: number;
  rssSeries: number[];
  stderr: string;
  stdout: string;
}

/** One bpftrace-net command attached to the lab while trafgen blasts (at `rate`, if given). */
async function traced(
  lab: DockerLikeLab, command: string, args: string[], opts: { rate?: string; seconds?: number; env?: Record<string, string> } = {},
): Promise<TracedRun> {
  const w: ChildProcess = spawn(process.execPath, [...NODE_FLAGS, BIN, command, lab.bridge, '--netns', lab.host, ...BACKEND, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  let stdout = '';
  w.stderr!.on('data', (d) => (stderr += d));
  // Keep only the last two chunks, cheaply: watch's output at full rate is gigabytes (a slow
  // reader here would make the traced process buffer it), top's last snapshot is what counts.
  let previous: Buffer = Buffer.alloc(0);
  let last: Buffer = Buffer.alloc(0);
  w.stdout!.on('data', (d: Buffer) => {
    previous = last;
    last = d;
  });
  while (!stderr.includes('watching ')) {
    if (w.exitCode !== null) throw new Error(`${command} failed: ${stderr}`);
    await sleep(50);
  }
  let peakKb = 0;
  let ticks = 0;
  const rssSeries: number[] = [];
  const rssTimer = setInterval(() => {
    try {
      const status = fs.readFileSync(`/proc/${w.pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+)/.exec(status);
      if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
      // Every 30 s: the series shows whether memory stays flat.
      const rss = /VmRSS:\s+(\d+)/.exec(status);
      if (rss && ++ticks % 150 === 0) rssSeries.push(Math.round(Number(rss[1]) / 1024));
    } catch {
      // exited
    }
  }, 200);
  const exited = new Promise((r) => w.on('exit', r));
  const pps = await blast(lab, opts.rate, opts.seconds);
  w.kill('SIGINT');
  await exited;
  clearInterval(rssTimer);
  stdout = Buffer.concat([previous, last]).toString().trimEnd().split('\n').pop() ?? '';
  const s = /(\d+) packets, (\d+) events, (\d+) lost/.exec(stderr);
  let captured = s ? Number(s[1]) : 0;
  let lost = s ? Number(s[3]) : -1;
  if (command === 'top') {
    const snap = JSON.parse(stdout.trim()) as { totalPackets: number; lost: number };
    captured = snap.totalPackets;
    lost = snap.lost;
  }
  const shed = Number(/(\d+) packets shed whole/.exec(stderr)?.[1] ?? 0);
  return { pps, captured, lost, shed, rssMb: Math.round(peakKb / 1024), rssSeries, stderr, stdout };
}

/** A ruleset shaped like Docker's in the lab's netns: nat with a DOCKER chain in
 * PREROUTING and OUTPUT, filter FORWARD through DOCKER-USER, the isolation chains and
 * DOCKER (the MASQUERADE rule the lab has already). */
function dockerShapedRuleset(lab: DockerLikeLab): void {
  const ipt = (...args: string[]) => lab.exec(lab.host, 'iptables', args);
  ipt('-t', 'nat', '-N', 'DOCKER');
  ipt('-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER');
  ipt('-t', 'nat', '-A', 'OUTPUT', '!', '-d', '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER');
  ipt('-t', 'nat', '-A', 'DOCKER', '-i', lab.bridge, '-j', 'RETURN');
  for (const c of ['DOCKER', 'DOCKER-USER', 'DOCKER-ISOLATION-STAGE-1', 'DOCKER-ISOLATION-STAGE-2']) ipt('-N', c);
  ipt('-A', 'FORWARD', '-j', 'DOCKER-USER');
  ipt('-A', 'FORWARD', '-j', 'DOCKER-ISOLATION-STAGE-1');
  ipt('-A', 'FORWARD', '-o', lab.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');
  ipt('-A', 'FORWARD', '-o', lab.bridge, '-j', 'DOCKER');
  ipt('-A', 'FORWARD', '-i', lab.bridge, '!', '-o', lab.bridge, '-j', 'ACCEPT');
  ipt('-A', 'FORWARD', '-i', lab.bridge, '-o', lab.bridge, '-j', 'ACCEPT');
  ipt('-A', 'DOCKER-ISOLATION-STAGE-1', '-i', lab.bridge, '!', '-o', lab.bridge, '-j', 'DOCKER-ISOLATION-STAGE-2');
  ipt('-A', 'DOCKER-ISOLATION-STAGE-1', '-j', 'RETURN');
  ipt('-A', 'DOCKER-ISOLATION-STAGE-2', '-o', lab.bridge, '-j', 'DROP');
  ipt('-A', 'DOCKER-ISOLATION-STAGE-2', '-j', 'RETURN');
  ipt('-A', 'DOCKER-USER', '-j', 'RETURN');
}

/** What users run today: tcpdump on every device of the host netns, 128 bytes a packet, to a file. */
async function tcpdumpAny(lab: DockerLikeLab, file: string): Promise<{ pps: number; bytes: number }> {
  const dump = spawn('ip', ['netns', 'exec', lab.host, 'tcpdump', '-i', 'any', '-s', '128', '-w', file, '-U', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  dump.stderr!.on('data', (d) => (err += d));
  while (!err.includes('listening on')) {
    if (dump.exitCode !== null) throw new Error(`tcpdump failed: ${err}`);
    await sleep(50);
  }
  const exited = new Promise((r) => dump.on('exit', r));
  const pps = await blast(lab);
  dump.kill('SIGINT');
  await exited;
  return { pps, bytes: fs.statSync(file).size };
}

/** Launch to "watching" with a filter: the verifier's work is the start-up cost. */
async function filterStart(lab: DockerLikeLab, filter: string): Promise<number> {
  const start = process.hrtime.bigint();
  const w = spawn(process.execPath, [...NODE_FLAGS, BIN, 'watch', lab.bridge, '--netns', lab.host, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  w.stderr!.on('data', (d) => (err += d));
  while (!err.includes('watching ')) {
    if (w.exitCode !== null) throw new Error(`watch '${filter}' failed: ${err}`);
    await sleep(10);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const exited = new Promise((r) => w.on('exit', r));
  w.kill('SIGINT');
  await exited;
  return secs;
}

/** The worst case: every iptables and ebtables table registered at every hook it serves (a rule
 * that only counts, in each built-in chain), so the hooks backend has a probe at every priority.
 * (ebtables' broute is no netfilter hook, and iptables-nft's ebtables has none.) */
const EVERY_TABLE: [string, string, string[]][] = [
  ['iptables', 'raw', ['PREROUTING', 'OUTPUT']], ['iptables', 'mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']],
  ['iptables', 'nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']], ['iptables', 'filter', ['INPUT', 'FORWARD', 'OUTPUT']],
  ['iptables', 'security', ['INPUT', 'FORWARD', 'OUTPUT']],
  ['ebtables', 'nat', ['PREROUTING', 'OUTPUT', 'POSTROUTING']], ['ebtables', 'filter', ['INPUT', 'FORWARD', 'OUTPUT']],
];

async function withEveryTable<T>(lab: DockerLikeLab, measure: () => Promise<T>): Promise<T> {
  const rule = (tool: string) => (tool === 'iptables' ? ['-m', 'comment', '--comment', 'bench-every-table'] : ['-j', 'CONTINUE']);
  const added: [string, string[]][] = [];
  try {
    for (const [tool, table, chains] of EVERY_TABLE) for (const chain of chains) {
      lab.exec(lab.host, tool, ['-t', table, '-A', chain, ...rule(tool)]);
      added.push([tool, ['-t', table, '-D', chain, ...rule(tool)]]);
    }
    return await measure();
  } finally {
    for (const [tool, args] of added) {
      try {
        lab.exec(lab.host, tool, args);
      } catch {
        // the netns goes with the lab
      }
    }
  }
}

const START_FILTERS = ['icmp', 'host 192.168.222.2 and (tcp or icmp)', 'udp port 53', 'tcp[tcpflags] & tcp-syn != 0'];

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

/** Decode + correlate + model on one core, in a node started as the CLI is (with its flags, which
 * size the young generation), on the recorded trace and on synthetic batches. */
function tsThroughput(recordFile: string): { eventsPerS: number; events: number; syntheticEventsPerS: number } {
  const out = execFileSync(process.execPath, [...NODE_FLAGS, path.join(__dirname, 'tsThroughput.js'), recordFile], { encoding: 'utf8' });
  return JSON.parse(out);
}

// trafgen's --rate takes plain pps (not kpps) here.
const OFFERED = ['50000pps', '100000pps', '150000pps', '200000pps', '250000pps', '300000pps'];

interface Target {
  what: string;
  target: string;
  measured: number | undefined;
  ok: (v: number) => boolean;
}

async function main(): Promise<void> {
  const soak = process.argv.includes('--soak');
  const lab = new DockerLikeLab({ containers: 1 }).create();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-bench-'));
  try {
    lab.exec(lab.wan, 'iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP']);
    dockerShapedRuleset(lab);
    lab.ping(lab.containers[0].netns, lab.wanIp);
    progress(`untraced, ${SECONDS} s`);
    const untraced1 = await blast(lab);
    const configs: Config[] = [];
    const run = async (name: string, command: string, args: string[]) => {
      if (!wanted(name)) return undefined;
      progress(name);
      const r = await traced(lab, command, args);
      configs.push({ name, pps: r.pps, lost: r.lost, ...(r.shed ? { shed: r.shed } : {}), captured: r.captured, peak_rss_mb: r.rssMb });
      return r;
    };
    if (wanted('floor')) {
      progress('floor: the same attach points, programs that return at once');
      const floor = await traced(lab, 'watch', ['--json'], { env: { BPFTRACE_NET_BENCH_FLOOR: '1' } });
      configs.push({ name: 'floor', pps: floor.pps, peak_rss_mb: floor.rssMb });
    }
    const dumpFile = path.join(tmp, 'any.pcap');
    let dump = { pps: 0, bytes: 0 };
    if (wanted('tcpdump-any')) {
      progress('tcpdump -i any -s 128 -w');
      dump = await tcpdumpAny(lab, dumpFile);
      configs.push({ name: 'tcpdump-any', pps: dump.pps });
    }
    await run('filter-miss', 'watch', ['--json', 'tcp', 'port', '1']);
    await run('top', 'top', ['--json', '--interval', '1']);
    const recordFile = path.join(tmp, 'record.bnt');
    const recorded1 = await run('record', 'record', ['-w', recordFile]);
    if (recorded1) Object.assign(configs[configs.length - 1], hopsPerPacket(recorded1.stderr));
    const recordedBytes = fs.existsSync(recordFile) ? fs.statSync(recordFile).size : 0;
    const recordPackets = configs.find((c) => c.name === 'record')?.captured ?? 0;
    await run('events', 'watch', ['--json', '--mode', 'events']);
    await run('packets', 'watch', ['--json', '--mode', 'packets']);
    // --rules: nf_tables' rule tracer on top (a netlink message per rule each packet meets).
    await run('rules', 'watch', ['--json', '--mode', 'packets', '--rules']);
    if (wanted('log-rules')) {
      progress('LOG rules in every chain (the notes\' method)');
      configs.push({ name: 'log-rules', pps: await withLogRules(lab) });
    }
    // The worst case, against its own untraced runs (the tables cost something by themselves).
    let everyTable: { untraced_pps: number; configs: Config[] } | undefined;
    if (wanted('every-table')) {
      progress('every table registered (the worst case): untraced, top, record, untraced');
      everyTable = await withEveryTable(lab, async () => {
        const before = await blast(lab);
        const top = await traced(lab, 'top', ['--json', '--interval', '1']);
        const rec = await traced(lab, 'record', ['-w', path.join(tmp, 'every-table.bnt')]);
        fs.rmSync(path.join(tmp, 'every-table.bnt'), { force: true });
        const after = await blast(lab);
        const base = (before + after) / 2;
        return {
          untraced_pps: Math.round(base),
          configs: [
            { name: 'top', pps: Math.round(top.pps), ratio: Number((top.pps / base).toFixed(3)), lost: top.lost, captured: top.captured },
            {
              name: 'record', pps: Math.round(rec.pps), ratio: Number((rec.pps / base).toFixed(3)), lost: rec.lost, captured: rec.captured,
              ...hopsPerPacket(rec.stderr),
            },
          ],
        };
      });
      if (ONLY) {
        console.log(`every table registered: untraced ${everyTable.untraced_pps} pps`);
        for (const c of everyTable.configs) console.log(`  ${c.name.padEnd(8)} ${c.pps} pps, ratio ${c.ratio}, lost ${c.lost}, ${c.hops_per_packet ?? '-'} hops a packet`);
      }
    }
    progress('untraced again');
    const untraced2 = await blast(lab);
    const untraced = (untraced1 + untraced2) / 2;
    for (const c of configs) c.ratio = Number((c.pps / untraced).toFixed(3));
    if (ONLY) {
      console.log(`untraced: ${Math.round(untraced)} pps (runs ${Math.round(untraced1)}, ${Math.round(untraced2)})`);
      for (const c of configs) console.log(`${c.name.padEnd(12)}  ${String(Math.round(c.pps)).padEnd(8)}  ${String(c.ratio).padEnd(5)}  lost ${c.lost ?? '-'}  shed ${c.shed ?? '-'}  captured ${c.captured ?? '-'}  rss ${c.peak_rss_mb ?? '-'}`);
      return;
    }

    progress('record at fixed offered loads');
    const offered: { offered: string; delivered_pps: number; captured: number; lost: number }[] = [];
    for (const rate of OFFERED) {
      const r = await traced(lab, 'record', ['-w', path.join(tmp, `offered-${rate}.bnt`)], { rate });
      offered.push({ offered: rate, delivered_pps: Math.round(r.pps), captured: r.captured, lost: r.lost });
      fs.rmSync(path.join(tmp, `offered-${rate}.bnt`), { force: true });
      if (r.lost > 0 || r.pps < 0.98 * parseInt(rate, 10)) break;
    }
    // Lossless: every offered packet delivered (the tracer did not slow the traffic down)
    // and every one of them recorded.
    const lossless = offered.filter((o) => o.lost === 0 && o.captured > 0 && o.delivered_pps >= 0.98 * parseInt(o.offered, 10));
    const losslessPps = lossless.length ? Math.max(...lossless.map((o) => parseInt(o.offered, 10))) : 0;

    progress('start-up with a filter');
    const starts: Record<string, number> = {};
    for (const f of START_FILTERS) starts[f] = Number((await filterStart(lab, f)).toFixed(2));

    progress('decode + correlate in TypeScript');
    const recorded = tsThroughput(recordFile);
    let soakResult: { seconds: number; rss_mb: number[]; peak_rss_mb: number; pps: number; lost: number } | undefined;
    if (soak) {
      progress('soak: watch --mode packets at full rate for 5 minutes');
      const r = await traced(lab, 'watch', ['--json', '--mode', 'packets'], { seconds: SOAK_SECONDS });
      soakResult = { seconds: SOAK_SECONDS, rss_mb: r.rssSeries, peak_rss_mb: r.rssMb, pps: Math.round(r.pps), lost: r.lost };
    }

    const find = (n: string) => configs.find((c) => c.name === n);
    const result = {
      seconds_per_config: SECONDS,
      untraced_pps: Math.round(untraced),
      untraced_runs_pps: [Math.round(untraced1), Math.round(untraced2)],
      configs: configs.map((c) => ({ ...c, pps: Math.round(c.pps) })),
      record_bytes_per_s: Math.round(recordedBytes / SECONDS),
      bytes_per_packet: {
        record: recordPackets ? Math.round(recordedBytes / recordPackets) : null,
        'tcpdump-any': Math.round(dump.bytes / (dump.pps * SECONDS)),
      },
      filter_start_s: Math.max(...Object.values(starts)),
      filter_start_by_filter_s: starts,
      offered_loads: offered,
      lossless_record_pps: losslessPps,
      ts_events_per_s: recorded.eventsPerS,
      ts_events_replayed: recorded.events,
      ts_synthetic_events_per_s: recorded.syntheticEventsPerS,
      every_table: everyTable ?? 'not run',
      peak_rss_mb: soakResult?.peak_rss_mb ?? Math.max(...configs.map((c) => c.peak_rss_mb ?? 0)),
      soak: soakResult ?? 'not run (npm run bench -- --soak)',
    };
    const targets: Target[] = [
      { what: 'filter-miss ratio', target: '>= 0.95', measured: find('filter-miss')?.ratio, ok: (v) => v >= 0.95 },
      { what: 'top ratio', target: '>= 0.90', measured: find('top')?.ratio, ok: (v) => v >= 0.9 },
      { what: 'record ratio', target: '>= 0.75', measured: find('record')?.ratio, ok: (v) => v >= 0.75 },
      {
        what: 'record / tcpdump-any', target: '>= 0.95', ok: (v) => v >= 0.95,
        measured: find('record') && find('tcpdump-any') ? Number((find('record')!.pps / find('tcpdump-any')!.pps).toFixed(3)) : undefined,
      },
      {
        what: 'record bytes/packet', target: `<= tcpdump (${result.bytes_per_packet['tcpdump-any']})`, ok: (v) => v <= result.bytes_per_packet['tcpdump-any'],
        measured: result.bytes_per_packet.record ?? undefined,
      },
      { what: 'packets ratio', target: '>= 0.70', measured: find('packets')?.ratio, ok: (v) => v >= 0.7 },
      { what: 'filter start-up s', target: '<= 1', measured: result.filter_start_s, ok: (v) => v <= 1 },
      { what: 'events ratio', target: '>= 0.60', measured: find('events')?.ratio, ok: (v) => v >= 0.6 },
      { what: 'lossless record pps', target: '>= 250000', measured: losslessPps, ok: (v) => v >= 250000 },
      { what: 'TS events/s', target: '>= 1000000', measured: recorded.eventsPerS, ok: (v) => v >= 1e6 },
      // With --soak: RSS after 5 minutes at full rate (the issue's measure); else the peak of the short runs.
      {
        what: soakResult ? 'RSS MB after soak' : 'peak RSS MB', target: '<= 300',
        measured: soakResult ? soakResult.rss_mb[soakResult.rss_mb.length - 1] : result.peak_rss_mb, ok: (v) => v <= 300,
      },
    ];
    console.log(`untraced: ${result.untraced_pps} pps (runs ${result.untraced_runs_pps.join(', ')})`);
    console.log('config        pps       ratio  lost      shed     captured  rss MB');
    for (const c of result.configs) {
      console.log(`${c.name.padEnd(12)}  ${String(c.pps).padEnd(8)}  ${String(c.ratio).padEnd(5)}  ${String(c.lost ?? '-').padEnd(8)}  ${String(c.shed ?? '-').padEnd(7)}  ${String(c.captured ?? '-').padEnd(8)}  ${c.peak_rss_mb ?? '-'}`);
    }
    if (everyTable) {
      console.log(`every table registered (the worst case): untraced ${everyTable.untraced_pps} pps; ` +
        everyTable.configs.map((c) => `${c.name} ${c.ratio} (lost ${c.lost}${c.hops_per_packet ? `, ${c.hops_per_packet} hops a packet` : ''})`).join('; '));
    }
    console.log(`record at offered loads: ${offered.map((o) => `${o.offered} -> ${o.delivered_pps} pps, lost ${o.lost}`).join('; ')}`);
    console.log(`TS decode+correlate+model on a recorded trace: ${result.ts_events_per_s} events/s (synthetic: ${result.ts_synthetic_events_per_s})`);
    console.log('target                 wanted      measured  ');
    for (const t of targets) {
      const verdict = t.measured === undefined ? 'not measured' : t.ok(t.measured) ? 'met' : 'MISSED';
      console.log(`${t.what.padEnd(22)} ${t.target.padEnd(11)} ${String(t.measured ?? '-').padEnd(9)} ${verdict}`);
    }
    fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), `${JSON.stringify({ ...result, targets: targets.map((t) => ({ what: t.what, target: t.target, measured: t.measured, met: t.measured !== undefined && t.ok(t.measured) })) }, null, 2)}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    lab.destroy();
  }
}

const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 300);

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
