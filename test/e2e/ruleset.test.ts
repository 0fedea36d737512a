/** Tables and chains come from the netns's own ruleset, never from a catalogue:
 * every table hop is checked against `nft -j list chains` of the traced netns,
 * a drop in an nft-native inet chain at a non-standard priority is named, a
 * chain added while tracing is probed at once, a legacy table is named too. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import type { Hop, Traversal } from '../../src/model/traversal';
import { native } from '../../src/native';
import { rulesetFromEntries, type RawHookEntry } from '../../src/model/ruleset';
import { traceWhile as traceAround, WatchProcess, waitUntil } from '../support/cli';
import { findIcmp, label } from '../support/hops';

interface NftChain {
  family: string;
  table: string;
  name: string;
  hook?: string;
  prio?: number;
}

function nftChains(lab: DockerLikeLab): NftChain[] {
  const out = JSON.parse(lab.exec(lab.host, 'nft', ['-j', 'list', 'chains'])) as { nftables: { chain?: NftChain }[] };
  return out.nftables.flatMap((o) => (o.chain ? [o.chain] : []));
}

const tableHops = (t: Traversal): Hop[] => [...t.hops, ...t.branches.flatMap((b) => b.hops)].filter((h) => h.family !== 'netdev' && h.table !== null);

/** Every table hop names a base chain the netns has, by family, table and chain. */
function expectAllInRuleset(ts: Traversal[], chains: NftChain[]): void {
  for (const t of ts) {
    for (const h of tableHops(t)) {
      const found = chains.find((c) => c.family === h.tableFamily && c.table === h.table && c.name === h.chain && c.hook);
      expect(found, `${label(h)} ${h.tableFamily}/${h.chain} is not a base chain of the netns: ${JSON.stringify(chains)}`).toBeDefined();
    }
  }
}

describe('the ruleset that is there', () => {
  let lab: DockerLikeLab;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    lab.ping(lab.containers[0].netns, lab.wanIp);
  });
  afterAll(() => lab?.destroy());

  const traceWhile = (action: () => void, args: string[] = []) => traceAround([lab.bridge, '--netns', lab.host, ...args], action);

  it('names only the tables the netns has (here: ip nat), and conntrack never as a table', async () => {
    const c1 = lab.containers[0];
    const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
    const ts = w.traversals();
    const req = findIcmp(ts, 'request', c1.ip)!;
    expect(req, w.stdout).toBeDefined();
    expect(tableHops(req).map(label)).toEqual(['ipv4 POSTROUTING nat']);
    expect(tableHops(req)[0]).toMatchObject({ tableFamily: 'ip', chain: 'POSTROUTING', priority: 100, src: lab.uplinkIp });
    // The hooks it crossed without chains are shown as hooks, not as tables.
    expect(req.hops.filter((h) => h.family === 'ipv4' && h.table === null).map((h) => h.hook)).toEqual(['PREROUTING', 'FORWARD']);
    expect(req.decisions.find((d) => d.kind === 'route')?.text).toMatch(/^routing: not for this host, forwarded out enp4s0/);
    const reply = findIcmp(ts, 'reply', lab.wanIp)!;
    expect(reply.decisions.find((d) => d.kind === 'nat')?.text).toMatch(/^DNAT 10\.200\.0\.1 -> 192\.168\.222\.2 in the NAT core \(nf_nat_ipv4_pre_routing\) at ipv4 PREROUTING/);
    expectAllInRuleset(ts, nftChains(lab));
    for (const t of ts) for (const h of t.hops) expect(['raw', 'mangle', 'security', 'conntrack', 'filter']).not.toContain(h.table);
  });

  it('never claims a route decision for a frame bridged port to port', async () => {
    const [c1, c2] = lab.containers;
    const w = await traceWhile(() => expect(lab.ping(c1.netns, c2.ip)).toBe(true));
    const t = findIcmp(w.traversals(), 'request', c1.ip)!;
    expect(t, w.stdout).toBeDefined();
    expect(t.hops.some((h) => h.hook === 'FORWARD' && h.physout === c2.hostVeth)).toBe(true);
    expect(t.decisions.filter((d) => d.kind === 'route')).toEqual([]);
    expect(t.decisions.find((d) => d.kind === 'bridge')?.text).toBe(`switched at L2 to port ${c2.hostVeth} (FDB)`);
  });

  it('names the chain of an inet table at a non-standard priority that drops', async () => {
    const c1 = lab.containers[0];
    lab.exec(lab.host, 'nft', ['add table inet bnfw']);
    lab.exec(lab.host, 'nft', ['add chain inet bnfw fw_forward { type filter hook forward priority 10; policy accept; }']);
    lab.exec(lab.host, 'nft', [`add rule inet bnfw fw_forward ip daddr ${lab.wanIp} icmp type echo-request drop`]);
    try {
      const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(false));
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      expect(t.end).toMatchObject({ kind: 'drop', reason: 'NETFILTER_DROP' });
      const drop = t.hops.find((h) => h.verdict === 'DROP')!;
      expect(drop).toMatchObject({ family: 'ipv4', hook: 'FORWARD', tableFamily: 'inet', table: 'bnfw', chain: 'fw_forward', priority: 10 });
      expect(drop.inferred).toBeUndefined();
      expect(t.decisions.find((d) => d.kind === 'drop')?.text).toMatch(/^dropped at ipv4 bnfw FORWARD \(chain fw_forward\)/);
      expectAllInRuleset(w.traversals(), nftChains(lab));
    } finally {
      lab.exec(lab.host, 'nft', ['delete table inet bnfw']);
    }
  });

  it('probes a chain added while tracing at once, and says what changed', async () => {
    const c1 = lab.containers[0];
    const w = new WatchProcess([lab.bridge, '--netns', lab.host, '--json']);
    try {
      await w.ready();
      lab.exec(lab.host, 'nft', ['add table ip bnlate']);
      lab.exec(lab.host, 'nft', ['add chain ip bnlate early { type filter hook prerouting priority -250; policy accept; }']);
      expect(await waitUntil(() => w.stderr.includes('ruleset changed: + ipv4 PREROUTING -250: ip bnlate early'), 8000), w.stderr).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      expect(lab.ping(c1.netns, lab.wanIp)).toBe(true);
      const chainsThen = nftChains(lab);
      await new Promise((r) => setTimeout(r, 600));
      lab.exec(lab.host, 'nft', ['delete table ip bnlate']);
      expect(await waitUntil(() => w.stderr.includes('- ipv4 PREROUTING -250: ip bnlate early'), 8000), w.stderr).toBe(true);
      expect(await w.stop()).toBe(0);
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      expect(tableHops(t).map((h) => `${h.hook} ${h.tableFamily} ${h.table} ${h.chain}`)).toEqual([
        'PREROUTING ip bnlate early', 'POSTROUTING ip nat POSTROUTING',
      ]);
      expectAllInRuleset([t], chainsThen);
    } finally {
      await w.stop();
    }
  });

  it('top and record say so too (on stderr): a change made while they run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-notice-'));
    try {
      for (const [command, args] of [['top', ['--json']], ['record', ['-w', path.join(dir, 'r.bnt')]]] as const) {
        const w = new WatchProcess([lab.bridge, '--netns', lab.host, ...args], [], command);
        try {
          await w.ready();
          lab.exec(lab.host, 'nft', ['add table ip bnnotice']);
          lab.exec(lab.host, 'nft', ['add chain ip bnnotice early { type filter hook prerouting priority -240; policy accept; }']);
          expect(await waitUntil(() => w.stderr.includes('notice: ruleset changed: + ipv4 PREROUTING -240: ip bnnotice early'), 8000), `${command}: ${w.stderr}`).toBe(true);
        } finally {
          lab.exec(lab.host, 'nft', ['delete table ip bnnotice']);
          await w.stop();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows a packet from its first hook when it came in by a second NIC (neither port nor uplink), DNAT included', async () => {
    const c1 = lab.containers[0];
    // A "lan" netns behind eth1: no default route points there, so eth1 is not an uplink.
    const lan = `${lab.prefix}-lan`;
    const run = (args: string[]) => execFileSync('ip', args, { stdio: 'ignore' });
    run(['netns', 'add', lan]);
    try {
      run(['-n', lab.host, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan]);
      run(['-n', lab.host, 'addr', 'add', '10.201.0.1/24', 'dev', 'eth1']);
      run(['-n', lab.host, 'link', 'set', 'eth1', 'up']);
      run(['-n', lan, 'addr', 'add', '10.201.0.2/24', 'dev', 'eth0']);
      run(['-n', lan, 'link', 'set', 'eth0', 'up']);
      run(['-n', lan, 'link', 'set', 'lo', 'up']);
      lab.exec(lab.host, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-i', 'eth1', '-d', '10.201.0.1', '-p', 'icmp', '-j', 'DNAT', '--to-destination', c1.ip]);
      expect(lab.ping(lan, '10.201.0.1')).toBe(true); // neighbours resolved before the traced ping
      const w = await traceWhile(() => expect(lab.ping(lan, '10.201.0.1')).toBe(true));
      expect(w.stderr).toMatch(/uplinks: enp4s0\)/);
      const t = findIcmp(w.traversals(), 'request', '10.201.0.2')!;
      expect(t, w.stdout).toBeDefined();
      expect(t.hops[0]).toMatchObject({ family: 'netdev', hook: 'RX', in: 'eth1', dst: '10.201.0.1' });
      expect(t.hops.map((h) => `${h.family} ${h.hook} ${h.table}`)).toEqual([
        'netdev RX null', 'ipv4 PREROUTING nat', 'ipv4 FORWARD null', 'ipv4 POSTROUTING nat', 'netdev TX null', 'netdev TX null',
      ]);
      expect(t.hops[1]).toMatchObject({ in: 'eth1', chain: 'PREROUTING', dst: c1.ip });
      expect(t.decisions.map((d) => d.text)).toContain(`DNAT 10.201.0.1 -> ${c1.ip} in ip nat PREROUTING at ipv4 PREROUTING`);
      expect(t.end).toMatchObject({ kind: 'tx', dev: c1.hostVeth });
      expect(t.missing).toBe(0);
    } finally {
      execFileSync('ip', ['netns', 'delete', lan], { stdio: 'ignore' });
    }
  });

  it('reads every base chain of every family the way nft lists it, as the kernel runs it', () => {
    // One of each: iptables-nft (ip filter), nft-native inet, ebtables-nft (bridge), arp, and nat.
    lab.exec(lab.host, 'iptables', ['-A', 'FORWARD', '-j', 'ACCEPT']);
    lab.exec(lab.host, 'nft', ['add table inet bnall; add chain inet bnall in5 { type filter hook input priority 5; }']);
    lab.exec(lab.host, 'ebtables', ['-A', 'FORWARD', '-j', 'ACCEPT']);
    lab.exec(lab.host, 'nft', ['add table arp bnarp; add chain arp bnarp in { type filter hook input priority 0; }']);
    try {
      const fromNft = nftChains(lab).filter((c) => c.hook && c.family !== 'netdev')
        .map((c) => `${c.family} ${c.table} ${c.name} ${c.hook} ${c.prio}`).sort();
      const table = native().hookTable(`/run/netns/${lab.host}`) as { entries: RawHookEntry[] };
      const ruleset = rulesetFromEntries(table.entries);
      const hookOf = (h: string) => h.toLowerCase().replace('routing', 'routing');
      const fromKernel = [...new Set(ruleset.hooks.flatMap((h) => h.users.flatMap((u) => (u.kind === 'nat' ? u.natChains ?? [] : [u]))
        .filter((u) => u.kind === 'chain')
        .map((u) => `${u.tableFamily} ${u.table} ${u.chain} ${hookOf(h.hook)} ${u.chainPriority}`)))].sort();
      expect(fromKernel).toEqual(fromNft);
    } finally {
      lab.exec(lab.host, 'nft', ['delete table inet bnall; delete table arp bnarp']);
      lab.exec(lab.host, 'ebtables', ['-F', 'FORWARD']);
      lab.exec(lab.host, 'iptables', ['-D', 'FORWARD', '-j', 'ACCEPT']);
    }
  });

  it('names a legacy x_tables table (iptables-legacy) by its name, marked legacy', async () => {
    const c1 = lab.containers[0];
    lab.exec(lab.host, 'iptables-legacy', ['-t', 'mangle', '-A', 'FORWARD', '-d', lab.wanIp, '-j', 'ACCEPT']);
    try {
      const w = await traceWhile(() => expect(lab.ping(c1.netns, lab.wanIp)).toBe(true));
      const t = findIcmp(w.traversals(), 'request', c1.ip)!;
      expect(t, w.stdout).toBeDefined();
      const mangle = t.hops.find((h) => h.hook === 'FORWARD' && h.table === 'mangle');
      expect(mangle, t.hops.map(label).join(' -> ')).toMatchObject({ chain: 'FORWARD', tableFamily: 'ip', priority: -150, verdict: 'ACCEPT' });
      expect(mangle!.note).toMatch(/iptables-legacy mangle FORWARD/);
    } finally {
      lab.exec(lab.host, 'iptables-legacy', ['-t', 'mangle', '-F']);
    }
  });
});
