/** --rules: nf_tables' own rule tracer names every rule a packet met, by its
 * real handle and text, through jumps into user chains; the table it adds is
 * gone when the tracer is, SIGKILL included. The kernel's `nft monitor trace`
 * is the second oracle. */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Hop } from '../../src/model/traversal';
import { runCli, traceWhile as traceAround, WatchProcess, waitUntil } from '../support/cli';
import { findIcmp } from '../support/hops';

interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  expr: unknown[];
}

function rulesOf(lab: DockerLikeLab): NftRule[] {
  const out = JSON.parse(lab.exec(lab.host, 'nft', ['-a', '-j', 'list', 'ruleset'])) as { nftables: { rule?: NftRule }[] };
  return out.nftables.flatMap((o) => (o.rule ? [o.rule] : []));
}

/** The `-A` lines of a chain, as the save tool itself prints them (the second oracle for `saved`). */
function savedLines(lab: DockerLikeLab, tool: string, chain: string): string[] {
  return lab.exec(lab.host, tool, []).split('\n').filter((l) => l.startsWith(`-A ${chain} `));
}

const tables = (lab: DockerLikeLab) => lab.exec(lab.host, 'nft', ['list', 'tables']);

describe('--rules', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    // Docker's shape: FORWARD jumps to DOCKER-USER, where the user's rules are.
    lab.exec(lab.host, 'iptables', ['-N', 'DOCKER-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'FORWARD', '-j', 'DOCKER-USER']);
    lab.ping(lab.containers[0].netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  const traceWhile = (action: () => void, args: string[] = []) => traceAround([lab.bridge, '--netns', lab.host, '--rules', ...args], action);

  it('names the DROP rule in a user chain reached by a jump, and the jump, by their real handles', async () => {
    const c1 = lab.containers[0];
    lab.exec(lab.host, 'iptables', ['-A', 'DOCKER-USER', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', 'DROP']);
    try {
      const before = tables(lab);
      const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false));
      expect(tables(lab)).toBe(before);
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      const real = rulesOf(lab).filter((r) => r.family === 'ip' && r.table === 'filter');
      const jump = real.find((r) => r.chain === 'FORWARD')!;
      const drop = real.find((r) => r.chain === 'DOCKER-USER')!;
      const hop = t.hops.find((h) => h.hook === 'FORWARD' && h.table === 'filter') as Hop;
      expect(hop, JSON.stringify(t.hops)).toMatchObject({ verdict: 'DROP', chain: 'FORWARD' });
      const [savedDrop] = savedLines(lab, 'iptables-nft-save', 'DOCKER-USER');
      expect(hop.rules).toEqual([
        { chain: 'FORWARD', handle: jump.handle, text: expect.stringMatching(/jump DOCKER-USER$/), verdict: 'jump DOCKER-USER', saved: '-A FORWARD -j DOCKER-USER' },
        { chain: 'DOCKER-USER', handle: drop.handle, text: expect.stringMatching(/ip saddr 192\.168\.222\.2 ip daddr 10\.200\.0\.2 .*drop$/), verdict: 'drop', saved: savedDrop },
      ]);
      expect(savedDrop).toBe(`-A DOCKER-USER -s ${c1.ip}/32 -d ${lab.wanIp}/32 -p icmp -j DROP`);
      expect(t.end).toMatchObject({ kind: 'drop', table: 'filter', chain: 'DOCKER-USER', rule: { handle: drop.handle, verdict: 'drop' } });
      // Accepted packets carry their rules too: the reply is not traced here (it never came), the NAT chain's are.
      const nat = findIcmp(w.traversals(), 'request', c1.ip)!.hops.find((h) => h.table === 'nat');
      expect(nat?.rules ?? []).toEqual([]);
    } finally {
      lab.exec(lab.host, 'iptables', ['-F', 'DOCKER-USER']);
    }
  });

  it('tells a REJECT in a user chain from a DROP, by its rule, and links the ICMP error it sent both ways', async () => {
    const c1 = lab.containers[0];
    lab.exec(lab.host, 'iptables', ['-A', 'DOCKER-USER', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', 'REJECT']);
    try {
      const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false));
      const ts = w.traversals();
      const t = findIcmp(ts, 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      const reject = rulesOf(lab).find((r) => r.family === 'ip' && r.table === 'filter' && r.chain === 'DOCKER-USER')!;
      const hop = t.hops.find((h) => h.hook === 'FORWARD' && h.table === 'filter')!;
      expect(hop.verdict).toBe('REJECT');
      expect(hop.rules?.at(-1)).toMatchObject({ chain: 'DOCKER-USER', handle: reject.handle, text: expect.stringMatching(/reject/), verdict: 'drop' });
      expect(t.end).toMatchObject({ kind: 'drop', rejected: true, chain: 'DOCKER-USER', rule: { handle: reject.handle } });
      const error = ts.find((x) => x.id === t.answeredBy)!;
      expect(error, JSON.stringify(ts.map((x) => [x.id, x.summary]))).toBeDefined();
      expect(error).toMatchObject({ answers: t.id, dst: c1.ip, icmpError: { type: 3 } });
    } finally {
      lab.exec(lab.host, 'iptables', ['-F', 'DOCKER-USER']);
    }
  });

  it('prints the deciding rule under its hop, and the policy when no rule decided', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--rules', '--count', '1', 'icmp and src host ' + c1.ip]);
    await w.ready();
    // The capture filter, said in nft: only those packets cost trace messages.
    expect(lab.exec(lab.host, 'nft', ['list', 'ruleset'])).toContain(`iifname @watched meta l4proto icmp ip saddr ${c1.ip} meta nftrace set 1`);
    expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
    await w.wait();
    // Under each nft text, the iptables-nft rule as iptables-save prints it.
    expect(w.stdout).toMatch(/ipv4 FORWARD filter +ACCEPT [^\n]*\n {6}rule \d+ in FORWARD: [^\n]*jump DOCKER-USER\n {8}iptables: -A FORWARD -j DOCKER-USER\n {6}policy accept in FORWARD\n/);
    const [masquerade] = savedLines(lab, 'iptables-nft-save', 'POSTROUTING');
    expect(masquerade).toMatch(/-j MASQUERADE$/);
    expect(w.stdout).toMatch(/ipv4 POSTROUTING nat +ACCEPT [^\n]*\n {6}rule \d+ in POSTROUTING: [^\n]*masquerade\n/);
    expect(w.stdout).toContain(`masquerade\n        iptables: ${masquerade}\n`);
  });

  it('agrees with the kernel\'s own `nft monitor trace`, rule for rule, in order', async () => {
    const c1 = lab.containers[0];
    const monitor = spawn('ip', ['netns', 'exec', lab.host, 'nft', 'monitor', 'trace'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    monitor.stdout!.on('data', (d) => (out += d));
    let w: WatchProcess;
    try {
      await new Promise((r) => setTimeout(r, 300));
      w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    } finally {
      monitor.kill('SIGINT');
    }
    // The echo request's trace id: its packet line says echo-request.
    const id = /trace id (\w+) ip filter FORWARD packet: .*icmp type echo-request/.exec(out)?.[1];
    expect(id, out).toBeDefined();
    const fromMonitor = out.split('\n')
      .filter((l) => l.startsWith(`trace id ${id} `) && / rule .*\(verdict \w+/.test(l) && !/bpftrace_net_/.test(l))
      .map((l) => {
        const m = /^trace id \w+ (\S+) (\S+) (\S+) rule .*\(verdict (\w+)/.exec(l)!;
        return `${m[1]} ${m[2]} ${m[3]} ${m[4]}`;
      });
    const t = findIcmp(w!.traversals(), 'request', c1.ip)!;
    const fromTool = t.hops.flatMap((h) => (h.rules ?? []).filter((r) => r.handle !== null).map((r) => `${h.tableFamily} ${h.table} ${r.chain} ${r.verdict.split(' ')[0]}`));
    expect(fromMonitor.length).toBeGreaterThan(0);
    expect(fromTool, JSON.stringify(t.hops.map((h) => [h.hook, h.table, h.chain, h.rules]))).toEqual(fromMonitor);
  });

  it('keeps the rules and their texts in trace files: a replay prints them as watch did', async () => {
    const c1 = lab.containers[0];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-rules-'));
    try {
      const file = path.join(dir, 'rules.bnt');
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--rules', '-w', file, 'icmp']);
      await w.ready();
      expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
      await new Promise((r) => setTimeout(r, 800));
      expect(await w.stop()).toBe(0);
      expect(w.stdout).toMatch(/rule \d+ in POSTROUTING: [^\n]*masquerade/);
      const replay = runCli(['replay', file]);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout).toBe(w.stdout);
      // And in pcapng: the comment of the hop's record names the rule, as Wireshark shows it.
      const pcap = path.join(dir, 'rules.pcapng');
      const exported = runCli(['export', file, '-o', pcap]);
      expect(exported.code, exported.stderr).toBe(0);
      const comments = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.comment'], { encoding: 'utf8' });
      expect(comments.status, comments.stderr).toBe(0);
      expect(comments.stdout).toMatch(/ipv4 POSTROUTING nat ACCEPT[^\n]*rule \d+ in POSTROUTING: [^\n]*masquerade/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows ebtables-nft chains, which no probe reaches on this kernel, as hops seen through the rule tracer', async () => {
    const [c1, c2] = lab.containers;
    const rule = ['-A', 'FORWARD', '-p', 'IPv4', '--ip-dst', c2.ip, '-j', 'DROP'];
    lab.exec(lab.host, 'ebtables', rule);
    try {
      const w = await traceWhile(() => expect(lab.ping(c1.netns, c2.ip)).toBe(false));
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      const real = rulesOf(lab).find((r) => r.family === 'bridge' && r.table === 'filter' && r.chain === 'FORWARD')!;
      const hop = t.hops.find((h) => h.family === 'bridge')!;
      expect(hop, JSON.stringify(t.hops)).toMatchObject({
        hook: 'FORWARD', table: 'filter', chain: 'FORWARD', tableFamily: 'bridge', verdict: 'DROP', seenBy: 'nftrace', in: c1.hostVeth, out: c2.hostVeth,
      });
      expect(hop.rules?.at(-1)).toMatchObject({ handle: real.handle, verdict: 'drop', saved: savedLines(lab, 'ebtables-nft-save', 'FORWARD').at(-1) });
      expect(hop.rules?.at(-1)?.saved).toMatch(/^-A FORWARD -p IPv4 --ip-dst 192\.168\.222\.3(\/32)? -j DROP$/);
      expect(t.hops.at(-1)).toBe(hop);
      expect(t.end).toMatchObject({ kind: 'drop', table: 'filter', chain: 'FORWARD', rule: { handle: real.handle } });
    } finally {
      lab.exec(lab.host, 'ebtables', ['-D', ...rule.slice(1)]);
    }
  });

  it('names a rule added while tracing by its text (texts are read again on every ruleset change)', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--rules', '--json', 'icmp']);
    try {
      await w.ready();
      lab.exec(lab.host, 'iptables', ['-A', 'DOCKER-USER', '-d', lab.wanIp, '-p', 'icmp', '-m', 'comment', '--comment', 'added-late', '-j', 'RETURN']);
      await new Promise((r) => setTimeout(r, 500));
      expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      expect(await w.stop()).toBe(0);
      lab.exec(lab.host, 'iptables', ['-F', 'DOCKER-USER']);
    }
    const t = findIcmp(w.traversals(), 'request', c1.ip)!;
    expect(t, w.stdout).toBeDefined();
    const late = t.hops.flatMap((h) => h.rules ?? []).find((r) => r.chain === 'DOCKER-USER');
    expect(late, JSON.stringify(t.hops.map((h) => h.rules))).toMatchObject({ verdict: 'return', text: expect.stringMatching(/ip daddr 10\.200\.0\.2 .*return$/) });
  });

  it('a netns where its table cannot be added: one line says so, and the capture goes on without rules', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--rules', '--json', 'icmp']);
    // The name the tracer will use, taken first by a table it cannot own (the owner flag cannot be set on it).
    const taken = `bpftrace_net_${w.child.pid}`;
    lab.exec(lab.host, 'nft', ['add', 'table', 'inet', taken]);
    try {
      await w.ready();
      expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      expect(await w.stop()).toBe(0);
      lab.exec(lab.host, 'nft', ['delete', 'table', 'inet', taken]);
    }
    const notices = w.stderr.split('\n').filter((l) => l.includes('rule tracer'));
    expect(notices, w.stderr).toHaveLength(1);
    expect(notices[0]).toMatch(new RegExp(`^notice: cannot switch on nf_tables' rule tracer in netns ${lab.host}: .*; the capture goes on without rules$`));
    const t = findIcmp(w.traversals(), 'request', c1.ip)!;
    expect(t, w.stdout).toBeDefined();
    expect(t.hops.some((h) => h.table === 'filter')).toBe(true);
    expect(t.hops.every((h) => h.rules === undefined)).toBe(true);
    expect(w.stderr).not.toMatch(/\n\s+at /);
  });

  it('leaves the ruleset exactly as it was when the tracer is SIGKILLed', async () => {
    const before = tables(lab);
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--rules']);
    await w.ready();
    expect(tables(lab)).toMatch(/table inet bpftrace_net_\d+\ntable bridge bpftrace_net_\d+/);
    await w.stop('SIGKILL');
    expect(await waitUntil(() => tables(lab) === before, 5000), tables(lab)).toBe(true);
  });
});
