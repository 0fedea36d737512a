/** record / watch -w -> replay and export, against the real kernel on the
 * Docker-like lab, read back by the real tshark. */
import { TraceReader } from '../../src/trace/reader';
import { decodeRecordBatchWire } from '../../src/wireRecords';
import { decodeBatchWire } from '../../src/wire';
import { EventKind } from '../../src/decode';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerLikeLab } from '../../src/lab/dockerLike';
import { addIptablesChains } from '../support/ruleset';
import type { Traversal } from '../../src/model/traversal';
import { runCli, traceWhile, WatchProcess } from '../support/cli';
import { findIcmp, label } from '../support/hops';

function tshark(file: string, fields: string[], filter?: string, options: string[] = []): string[][] {
  const args = ['-r', file, ...options, '-T', 'fields', '-E', 'separator=\t', ...fields.flatMap((f) => ['-e', f]), ...(filter ? ['-Y', filter] : [])];
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tshark failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l).map((l) => l.split('\t'));
}

describe('trace files', () => {
  let lab: DockerLikeLab;
  let dir: string;
  beforeAll(() => {
    lab = new DockerLikeLab().create();
    addIptablesChains(lab);
    lab.ping(lab.containers[0].netns, lab.wanIp);
    lab.ping(lab.containers[0].netns, lab.containers[1].ip);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-trace-'));
  });
  afterAll(() => {
    lab?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replays what watch printed live, byte for byte, text and JSON, in both modes', async () => {
    const c1 = lab.containers[0];
    const file = path.join(dir, 'watch.bnt');
    // packets mode: the file holds the kernel's records (headers once, hops as words), watch the
    // events the reader thread unfolded from them; both must tell the same story, -s bytes included.
    for (const mode of ['packets', 'events']) {
      const w = new WatchProcess([lab.bridge, '--netns', lab.host, '-w', file, '--mode', mode, '-s', '96']);
      await w.ready();
      lab.ping(c1.netns, lab.wanIp, 2);
      lab.ping(c1.netns, lab.containers[1].ip, 1);
      await new Promise((r) => setTimeout(r, 600));
      expect(await w.stop()).toBe(0);
      expect(w.stdout).toContain('ipv4 POSTROUTING nat');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const replay = runCli(['replay', file]);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout, mode).toBe(w.stdout);
      expect(runCli(['replay', file, '--json']).stdout.trim().split('\n').length, mode).toBeGreaterThanOrEqual(6);
    }
    const json = runCli(['replay', file, '--json']);
    const traversals = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Traversal);
    expect(findIcmp(traversals, 'request', c1.ip)!.hops.map(label)).toContain('ipv4 POSTROUTING nat');
    expect(json.stderr).toMatch(/\d+ packets, \d+ events, 0 lost; recorded on /);
  });

  it('records in packets mode and exports every hop of container -> wan to pcapng that tshark reads, annotated', async () => {
    const c1 = lab.containers[0];
    const file = path.join(dir, 'record.bnt');
    const rec = await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, 'icmp'], () => lab.ping(c1.netns, lab.wanIp, 1), { command: 'record' });
    expect(rec.stderr).toMatch(/(\d+) packets, (\d+) events, 0 lost.*wrote /);
    const pcap = path.join(dir, 'record.pcapng');
    const exp = runCli(['export', file, '-o', pcap]);
    expect(exp.code, exp.stderr).toBe(0);
    const records = Number(/(\d+) packet records/.exec(exp.stderr)![1]);
    const rows = tshark(pcap, ['frame.packet_id', 'frame.interface_name', 'ip.src', 'ip.dst', 'frame.comment', 'icmp.type']);
    expect(rows.length).toBe(records);
    // The echo request's traversal: its id, its hops in order, its annotations.
    const request = rows.find((r) => r[5] === '8' && r[2] === c1.ip)!;
    const id = request[0];
    const path_ = rows.filter((r) => r[0] === id);
    const names = path_.map((r) => r[1]);
    expect(names[0]).toBe(`${c1.hostVeth}@rx`);
    for (const point of ['ipv4:raw:PREROUTING', 'ipv4:mangle:PREROUTING', 'ipv4:nat:PREROUTING', 'ipv4:mangle:FORWARD', 'ipv4:filter:FORWARD']) {
      expect(names).toContain(`${c1.hostVeth}@${point}`);
    }
    expect(names).toContain(`${lab.uplink}@ipv4:nat:POSTROUTING`);
    expect(names[names.length - 1]).toBe(`${lab.uplink}@tx`);
    expect(path_.find((r) => r[1] === `${c1.hostVeth}@ipv4:filter:FORWARD`)![4]).toMatch(
      // Devices carry what is behind them: the container's netns, the wan's for the uplink veth.
      new RegExp(`ipv4 FORWARD filter ACCEPT IN=${lab.bridge} OUT=${lab.uplink} \\(${lab.wan}\\) PHYSIN=${c1.hostVeth} \\(${c1.netns}\\)`),
    );
    expect(path_[path_.length - 1][4]).toContain(`=> left via ${lab.uplink}`);
    // MASQUERADE: the container's address before nat POSTROUTING, the uplink's after, in one traversal.
    expect(path_.find((r) => r[1] === `${lab.uplink}@ipv4:mangle:POSTROUTING`)![2]).toBe(c1.ip);
    expect(path_.find((r) => r[1] === `${lab.uplink}@ipv4:nat:POSTROUTING`)![2]).toBe(lab.uplinkIp);
    expect(path_.find((r) => r[1] === `${lab.uplink}@ipv4:nat:POSTROUTING`)![4]).toContain(`SNAT ${c1.ip} -> ${lab.uplinkIp}`);
    // Direction flags and the interface description.
    const flags = tshark(pcap, ['frame.interface_name', 'frame.p2p_dir', 'frame.interface_description'], `frame.packet_id == ${id}`);
    expect(flags.find((r) => r[0] === `${lab.uplink}@tx`)![2]).toBe(`${lab.uplink} (${lab.wan}) at tx, traced by bpftrace-net`);
  });

  it('packets mode keeps each packet\'s bytes exactly though the file holds only what changed: a flood of varied packets exports to frames tshark finds whole', async () => {
    const c1 = lab.containers[0];
    const file = path.join(dir, 'flood.bnt');
    const count = 300;
    const rec = await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, '-s', '128', 'icmp'],
      () => lab.exec(c1.netns, 'ping', ['-f', '-c', String(count), '-s', '40', lab.wanIp]), { command: 'record' });
    expect(rec.stderr).toMatch(/ 0 lost/);
    const pcap = path.join(dir, 'flood.pcapng');
    expect(runCli(['export', file, '-o', pcap]).code).toBe(0);
    // Every frame of every hop: IP and ICMP checksums good (a byte put back wrong breaks one), and the
    // echo sequence in the bytes is the one the kernel parsed (the packet comment names it).
    const rows = tshark(pcap, ['frame.packet_id', 'ip.checksum.status', 'icmp.checksum.status', 'icmp.type', 'icmp.seq', 'ip.ttl', 'ip.src'], undefined,
      ['-o', 'ip.check_checksum:TRUE']);
    const requests = rows.filter((r) => r[3] === '8');
    expect(new Set(requests.map((r) => r[0])).size).toBe(count);
    const GOOD = '1'; // Wireshark's PROTO_CHECKSUM_E_GOOD
    for (const r of rows) expect([r[1], r[2]]).toEqual([GOOD, GOOD]);
    const seqs = new Set(requests.map((r) => Number(r[4])));
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // Each request's three headers: TTL 64 from the container, 63 once routed, the uplink's address once NATed.
    for (const id of new Set(requests.map((r) => r[0]))) {
      const hops = requests.filter((r) => r[0] === id).map((r) => `${r[5]} ${r[6]}`);
      expect(new Set(hops)).toEqual(new Set([`64 ${c1.ip}`, `63 ${c1.ip}`, `63 ${lab.uplinkIp}`]));
    }
    // What the packets took (the header's hook table and devices aside): tcpdump -i any would
    // write each 82-byte frame at 3 devices, some 300 bytes a packet with its record headers;
    // the bench compares the two on the same traffic.
    const reader = new TraceReader(file);
    let recordBytes = 0;
    for (const f of reader.frames()) if (f.records) recordBytes += f.batch!.length;
    reader.close();
    expect(recordBytes / (count * 2)).toBeLessThan(200);
  });

  it('a packet queued to a device with a qdisc is a TX_QUEUE hop, then its TX; on a noqueue device only the TX', async () => {
    const c1 = lab.containers[0];
    const kindsOn = async (name: string) => {
      const file = path.join(dir, name);
      await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, '--mode', 'events', 'icmp'], () => {
        lab.ping(c1.netns, lab.wanIp, 2);
      }, { command: 'record' });
      const reader = new TraceReader(file);
      const events: { kind: number; packetId: number; seq: number; ifindex: number }[] = [];
      for (const f of reader.frames()) if (f.batch && !f.records) events.push(...decodeBatchWire(f.batch).events);
      reader.close();
      return events;
    };
    const uplinkIndex = Number(lab.exec(lab.host, 'cat', [`/sys/class/net/${lab.uplink}/ifindex`]).trim());
    const noqueue = await kindsOn('noqueue.bnt');
    expect(noqueue.filter((e) => e.kind === EventKind.TX && e.ifindex === uplinkIndex).length).toBeGreaterThanOrEqual(2);
    expect(noqueue.filter((e) => e.kind === EventKind.TX_QUEUE)).toEqual([]);
    lab.exec(lab.host, 'tc', ['qdisc', 'add', 'dev', lab.uplink, 'root', 'pfifo']);
    let queued: typeof noqueue;
    try {
      queued = await kindsOn('pfifo.bnt');
    } finally {
      lab.exec(lab.host, 'tc', ['qdisc', 'del', 'dev', lab.uplink, 'root']);
    }
    const queuedHops = queued.filter((e) => e.kind === EventKind.TX_QUEUE);
    expect(queuedHops.length).toBeGreaterThanOrEqual(2);
    for (const q of queuedHops) {
      expect(q.ifindex).toBe(uplinkIndex);
      expect(queued.find((e) => e.packetId === q.packetId && e.kind === EventKind.TX && e.ifindex === uplinkIndex && e.seq > q.seq)).toBeDefined();
    }
  });

  it('record --count stops by itself and leaves a complete file; --pcapng exports it', async () => {
    const c1 = lab.containers[0];
    const file = path.join(dir, 'count.bnt');
    const rec = new WatchProcess([lab.bridge, '--netns', lab.host, '-w', file, '--count', '3', '--pcapng', 'icmp'], [], 'record');
    await rec.ready();
    lab.ping(c1.netns, lab.wanIp, 3);
    const code = await Promise.race([rec.wait(), new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
    if (code === 'timeout') await rec.stop('SIGKILL');
    expect(code, rec.stderr).toBe(0);
    expect(rec.stderr).toMatch(/wrote .*count\.pcapng/);
    const replay = runCli(['replay', file, '--json']);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout.trim().split('\n').length).toBe(3);
    expect(rec.stderr).toMatch(/^3 packets, /m);
    expect(tshark(file.replace(/\.bnt$/, '.pcapng'), ['frame.packet_id']).length).toBeGreaterThan(0);
  });

  it('a cut-short or corrupted file replays and exports its valid part, then names the byte offset', async () => {
    const c1 = lab.containers[0];
    const file = path.join(dir, 'cut.bnt');
    await traceWhile([lab.bridge, '--netns', lab.host, '-w', file], () => lab.ping(c1.netns, lab.wanIp, 3), { command: 'record' });
    const whole = fs.readFileSync(file);
    const full = runCli(['replay', file, '--json']);
    expect(full.code).toBe(0);
    const all = full.stdout.trim().split('\n');

    const cut = path.join(dir, 'cut-short.bnt');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.8)));
    const r = runCli(['replay', cut, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cut-short\.bnt: truncated at byte \d+: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const partial = r.stdout.trim().split('\n').filter((l) => l);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThanOrEqual(all.length);

    const e = runCli(['export', cut, '-o', path.join(dir, 'cut.pcapng')]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/truncated at byte \d+/);
    expect(tshark(path.join(dir, 'cut.pcapng'), ['frame.number']).length).toBeGreaterThan(0);

    const bad = Buffer.from(whole);
    bad.write('garbage!', 0);
    fs.writeFileSync(path.join(dir, 'bad.bnt'), bad);
    const b = runCli(['replay', path.join(dir, 'bad.bnt')]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^bpftrace-net: .*bad\.bnt: (not a bpftrace-net trace|corrupt|truncated) at byte 0: /);
  });

  it('Wireshark fields: the shipped Lua dissector filters the drop; --drops-only and --first-last views', async () => {
    const [c1, c2] = lab.containers;
    const file = path.join(dir, 'drop.bnt');
    lab.exec(lab.host, 'iptables', ['-N', 'BN-USER']);
    lab.exec(lab.host, 'iptables', ['-I', 'FORWARD', '-j', 'BN-USER']);
    lab.exec(lab.host, 'iptables', ['-A', 'BN-USER', '-s', c1.ip, '-d', lab.wanIp, '-p', 'icmp', '-j', 'DROP']);
    try {
      await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, '--rules', 'icmp'], () => {
        lab.ping(c1.netns, lab.wanIp, 1);
        lab.ping(c1.netns, c2.ip, 1);
      }, { command: 'record', settleMs: 2500 });
    } finally {
      lab.exec(lab.host, 'iptables', ['-D', 'FORWARD', '-j', 'BN-USER']);
      lab.exec(lab.host, 'iptables', ['-F', 'BN-USER']);
      lab.exec(lab.host, 'iptables', ['-X', 'BN-USER']);
    }
    const replayed = runCli(['replay', file, '--json']);
    const traversals = replayed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Traversal);
    // The rule tracer says, batch by batch, up to when it has read everything: the time a
    // packet waits for its rules. It only moves forward, and it got past the last packet.
    const reader = new TraceReader(file);
    const drainedTo: number[] = [];
    let lastHop = 0;
    // Bare watermarks (no trace message) after the last recorded events: a few for the packets
    // that may wait for them, then one a second, not the tracer's twenty.
    let bareSinceEvents = 0;
    for (const f of reader.frames()) {
      if (f.frame.rules) {
        drainedTo.push(Number(f.frame.rules.drainedTo));
        if (!f.frame.rules.events?.length) bareSinceEvents++;
      }
      if (f.batch && f.records) {
        const events = decodeRecordBatchWire(f.batch).events;
        for (const e of events) lastHop = Math.max(lastHop, e.ts);
        if (events.length) bareSinceEvents = 0;
      }
    }
    reader.close();
    expect(bareSinceEvents).toBeGreaterThanOrEqual(3);
    expect(bareSinceEvents).toBeLessThanOrEqual(8);
    expect(drainedTo.length).toBeGreaterThan(0);
    expect(drainedTo).toEqual([...drainedTo].sort((a, b) => a - b));
    expect(lastHop).toBeGreaterThan(0);
    expect(drainedTo.at(-1)).toBeGreaterThan(lastHop);
    const dropped = traversals.filter((t) => t.end.kind === 'drop').map((t) => String(t.id));
    const passed = traversals.filter((t) => t.end.kind !== 'drop').map((t) => String(t.id));
    expect(dropped.length).toBeGreaterThan(0);
    expect(passed.length).toBeGreaterThan(0);

    const pcap = path.join(dir, 'drop.pcapng');
    expect(runCli(['export', file, '-o', pcap]).code).toBe(0);
    const lua = path.resolve(__dirname, '../../wireshark/bpftrace_net.lua');
    const r = spawnSync('tshark', ['-X', `lua_script:${lua}`, '-r', pcap, '-Y', 'bpftrace_net.verdict == "DROP"', '-T', 'fields', '-E', 'separator=\t',
      ...['packet', 'family', 'hook', 'table', 'chain', 'verdict', 'in', 'out', 'physin', 'rule'].flatMap((f) => ['-e', `bpftrace_net.${f}`])], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l).map((l) => l.split('\t'));
    expect(rows.length).toBeGreaterThan(0);
    expect([...new Set(rows.map((x) => x[0]))].sort()).toEqual([...dropped].sort());
    for (const [, family, hook, table, chain, verdict, inDev, outDev, physin, rule] of rows) {
      expect({ family, hook, table, chain, verdict, inDev, outDev, physin }).toEqual({
        family: 'ipv4', hook: 'FORWARD', table: 'filter', chain: 'FORWARD', verdict: 'DROP', inDev: lab.bridge, outDev: lab.uplink, physin: c1.hostVeth,
      });
      expect(rule).toMatch(/^\d+ in BN-USER: .*ip saddr 192\.168\.222\.2 ip daddr 10\.200\.0\.2 .*drop$/);
    }

    const drops = path.join(dir, 'drops-only.pcapng');
    expect(runCli(['export', file, '-o', drops, '--drops-only']).code).toBe(0);
    expect([...new Set(tshark(drops, ['frame.packet_id']).map((x) => x[0]))].sort()).toEqual([...dropped].sort());

    const ends = path.join(dir, 'first-last.pcapng');
    expect(runCli(['export', file, '-o', ends, '--first-last']).code).toBe(0);
    const perPacket = new Map<string, number>();
    for (const [id] of tshark(ends, ['frame.packet_id'])) perPacket.set(id, (perPacket.get(id) ?? 0) + 1);
    expect([...perPacket.keys()].sort()).toEqual(traversals.map((t) => String(t.id)).sort());
    for (const t of traversals) expect(perPacket.get(String(t.id))).toBeLessThanOrEqual(2 * (1 + t.branches.length));
  });

  it('replay and export take a tcpdump filter, run on each packet as the trace kept it', async () => {
    const [c1, c2] = lab.containers;
    for (const snaplen of ['128', '0']) {
      const file = path.join(dir, `filter-${snaplen}.bnt`);
      await traceWhile([lab.bridge, '--netns', lab.host, '-w', file, '-s', snaplen], () => {
        lab.ping(c1.netns, lab.wanIp, 2);
        lab.ping(c1.netns, c2.ip, 2);
      }, { command: 'record' });
      const all = runCli(['replay', file, '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l) as Traversal);
      const expected = all.filter((t) => t.proto === 'icmp' && (t.src === c2.ip || t.dst === c2.ip)).map((t) => t.id);
      expect(expected.length, snaplen).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(all.length);
      const r = runCli(['replay', file, '--json', 'icmp', 'and', 'host', c2.ip]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Traversal).id), snaplen).toEqual(expected);
      expect(r.stderr).toMatch(new RegExp(`^${expected.length} packets of ${all.length}, `));
      const pcap = path.join(dir, `filter-${snaplen}.pcapng`);
      expect(runCli(['export', file, '-o', pcap, `icmp and host ${c2.ip}`]).code).toBe(0);
      expect([...new Set(tshark(pcap, ['frame.packet_id']).map((x) => Number(x[0])))].sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b));
    }
  });
});
