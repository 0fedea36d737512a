/** Thousands of mutated trace files through replay and export: every one ends
 * in traversals and at most one clear, located error; nothing throws anything
 * else, nothing hangs. The seed file is built from synthetic kernel events by
 * the real native encoder and the real frame writer. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { forwardPathEvents, KIND, LAB, LAB_PLAN, labSlot, rawEvents } from '../../bench/synthetic';
import { bpftrace_net as pb } from '../../src/gen/bpftrace_net';
import type { ContextData } from '../../src/capture/context';
import { BnError } from '../../src/errors';
import { native } from '../../src/native';
import { exportPcapng } from '../../src/output/pcapngExport';
import { encodeFrame, TRACE_FORMAT_VERSION, traceHeader, varint } from '../../src/trace/format';
import { TraceFileError } from '../../src/trace/reader';
import { replayTrace } from '../../src/trace/replay';
import type { Traversal } from '../../src/model/traversal';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-fuzz-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const context: ContextData = {
  netns: LAB.netns, bridgeIfindex: LAB.bridge,
  links: [
    { ifindex: LAB.bridge, name: 'br-d13c50d4c15b', kind: 'bridge' },
    { ifindex: LAB.veth, name: 'vethdcc08d7', kind: 'veth', master: 'br-d13c50d4c15b' },
    { ifindex: LAB.uplink, name: 'enp4s0', kind: '' },
  ],
  dropReasons: ['NOT_SPECIFIED', 'NO_SOCKET'], epochOffsetNs: 1.7e18, brNetfilter: { iptables: true, ip6tables: true },
  routes: [{ prefix: '10.200.0.0/24', dev: 'enp4s0', family: 4 }],
  probePlans: [LAB_PLAN],
};

function seedTrace(formatVersion = TRACE_FORMAT_VERSION): Buffer {
  const header = traceHeader(context, {
    bridge: 'br-d13c50d4c15b', netns: '', backend: 'hooks', filter: '', snaplen: 0, mode: 'events', sampleEvery: 1,
    command: 'test', toolVersion: 'test', ports: [LAB.veth], uplinks: [LAB.uplink],
  });
  const frames = [encodeFrame({ header: { ...header, formatVersion } })];
  for (let b = 0; b < 4; b++) {
    const events = [0, 1, 2].flatMap((i) => forwardPathEvents(b * 3 + i + 1, BigInt(1e9 + (b * 3 + i) * 1e6)));
    const batch = native().encodeBatch(rawEvents(events), b, b);
    frames.push(frameOfBatch(batch));
    frames.push(encodeFrame({ loss: { lost: b, lostPerCpu: [b, 0] } }));
  }
  frames.push(encodeFrame({ records: recordBatch() }));
  frames.push(encodeFrame({ symbols: { symbols: [{ address: '18446744071597545312' as unknown as number, name: 'br_handle_frame' }] } }));
  frames.push(encodeFrame({ trailer: { events: 12 * forwardPathEvents(1, 0n).length + RECORD_HOPS * 2, packets: 14, lost: 3 } }));
  return Buffer.concat(frames);
}

const RECORD_HOPS = 4;

/** Packets mode's frame (format 2): two packets of one flow, the second as changes to the first. */
function recordBatch(): pb.IRecordBatch {
  const words = (...w: (number | bigint)[]) => Buffer.concat(w.map((v) => varintBig(BigInt(v))));
  const code = (kind: number, family = 0, hook = 0, slot = 0) => kind | (family << 8) | (hook << 16) | (slot * 2 ** 24);
  const ALL = 0x7ff;
  // Words: ts since the previous hop, code, header | ct << 8 | cpu << 16, ifindex, in, out, physin, physout, verdict, reason, aux.
  const first = Buffer.concat([
    words(ALL, 0, code(KIND.RX), 0, LAB.veth, 0, 0, 0, 0, 0, 0, 0xffffffff82159760n),
    words(ALL, 1000, code(KIND.NF, 2, 0, labSlot(0, null)), 0, 0, LAB.bridge, 0, LAB.veth, 0, 0, 0, 0),
    words(ALL, 1000, code(KIND.NF, 2, 4, labSlot(4, 100)), 1, 0, LAB.bridge, LAB.uplink, LAB.veth, 0, 0, 0, 0),
    words(ALL, 1000, code(KIND.TX), 1, LAB.uplink, 0, 0, 0, 0, 0, 0, 0),
  ]);
  // The second packet: the same hops but for their times.
  const second = Buffer.concat(Array.from({ length: RECORD_HOPS }, () => words(1, 1500)));
  const frame = Buffer.alloc(64);
  frame.set([0x08, 0x00, 0x45], 12);
  frame[22] = 64;
  const udp = { ethertype: 0x0800, ipVersion: 4, saddr: Buffer.from(LAB.container), daddr: Buffer.from(LAB.wan), l4proto: 17, sport: 4000, dport: 9, ttl: 64, ipLen: 50 };
  return {
    records: [
      {
        packetId: 100, skb: 0xffff888012345600 as unknown as number, startTs: 5e9, netns: LAB.netns,
        headers: [
          { packet: udp, data: frame, wireLen: 64, dataFromMac: true },
          { packet: { saddr: Buffer.from(LAB.uplinkIp), ttl: 63 }, ownBase: true, dataDiff: Buffer.from([22, 1, 63, 26, 4, ...LAB.uplinkIp]) },
        ],
        hops: first,
      },
      { packetIdDelta: 2, skbDelta: 512, startTsDelta: 1e6, base: 1, headers: [{ dataDiff: Buffer.from([18, 2, 0, 7]) }, { dataDiff: Buffer.from([18, 2, 0, 7]) }], hops: second },
    ],
    lost: 0, sequence: 4,
  };
}

function varintBig(v: bigint): Buffer {
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** A Batch's bytes as the native writer frames them: field 2 of TraceFrame. */
function frameOfBatch(batch: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([0x12]), varint(batch.length), batch]);
  return Buffer.concat([varint(body.length), body]);
}

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
}

function mutate(seed: Buffer, rand: (n: number) => number): Buffer {
  const b = Buffer.from(seed);
  switch (rand(5)) {
    case 0: { // flip bits
      const n = 1 + rand(8);
      for (let i = 0; i < n; i++) b[rand(b.length)] ^= 1 << rand(8);
      return b;
    }
    case 1: // cut short
      return b.subarray(0, rand(b.length));
    case 2: { // overwrite a span with random bytes
      const at = rand(b.length);
      for (let i = at; i < Math.min(b.length, at + 1 + rand(32)); i++) b[i] = rand(256);
      return b;
    }
    case 3: { // delete a span
      const at = rand(b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(64))]);
    }
    default: { // duplicate a span
      const at = rand(b.length);
      const span = b.subarray(at, at + 1 + rand(64));
      return Buffer.concat([b.subarray(0, at), span, span, b.subarray(at + span.length)]);
    }
  }
}

describe('trace file fuzzing', () => {
  const seed = seedTrace();

  it('the seed itself replays cleanly', () => {
    const file = path.join(dir, 'seed.bnt');
    fs.writeFileSync(file, seed);
    const shown: Traversal[] = [];
    const r = replayTrace(file, { traversal: (t) => shown.push(t) });
    expect(r.error?.message).toBeUndefined();
    expect(r.traversals).toBe(14);
    // The packets-mode records: each header and hop, the second packet's as changes to the first's.
    const fromRecords = shown.filter((t) => t.summary.startsWith('udp'));
    expect(fromRecords.map((t) => t.id)).toEqual([100, 102]);
    for (const t of fromRecords) {
      // (The PREROUTING probe sits before any chain: it names no hop of its own.)
      expect(t.hops.map((h) => `${h.hook} ${h.table} ${h.src} ${h.ttl}`)).toEqual([
        'RX null 192.168.222.2 64', 'POSTROUTING nat 10.200.0.1 63', 'TX null 10.200.0.1 63',
      ]);
      expect(t.end).toMatchObject({ kind: 'tx', dev: 'enp4s0' });
    }
    expect(fromRecords[1].ts - fromRecords[0].ts).toBe(1e6 + 1500); // its start, and its first hop 1.5 us on
    expect(r.events).toBe(12 * forwardPathEvents(1, 0n).length + RECORD_HOPS * 2);
  });

  it('a file of a newer format is refused in one line naming its version, before any packet', () => {
    const file = path.join(dir, 'newer.bnt');
    fs.writeFileSync(file, seedTrace(TRACE_FORMAT_VERSION + 1));
    const r = replayTrace(file, { traversal: () => undefined });
    expect(r.traversals).toBe(0);
    expect(r.error).toBeInstanceOf(TraceFileError);
    expect(r.error!.message).toMatch(new RegExp(`format version ${TRACE_FORMAT_VERSION + 1} is not one this bpftrace-net reads \\(1 to ${TRACE_FORMAT_VERSION}\\)`));
    expect(r.error!.message.split('\n')).toHaveLength(1);
  });

  it('replay and export survive 3000 mutated files with at most one located error each', () => {
    const rand = rng(Number(process.env.BN_FUZZ_SEED ?? 20261126));
    const file = path.join(dir, 'mutant.bnt');
    const out = path.join(dir, 'mutant.pcapng');
    const errors = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      fs.writeFileSync(file, mutate(seed, rand));
      for (const run of [
        () => replayTrace(file, { traversal: () => undefined }).error,
        () => exportPcapng(file, out).error,
      ]) {
        let error: Error | undefined;
        try {
          error = run();
        } catch (err) {
          error = err as Error;
          if (!(err instanceof BnError)) throw new Error(`mutant ${i} threw ${(err as Error).stack}`);
        }
        if (error) {
          expect(error).toBeInstanceOf(TraceFileError);
          expect(error.message).toMatch(/ at byte \d+: \S/);
          const kind = (error as TraceFileError).code;
          errors.set(kind, (errors.get(kind) ?? 0) + 1);
        }
      }
    }
    // The mutations reach every kind of failure, not just one.
    expect(errors.get('TRACE_TRUNCATED')).toBeGreaterThan(100);
    expect(errors.get('TRACE_CORRUPT')).toBeGreaterThan(100);
  }, 120_000);
});
