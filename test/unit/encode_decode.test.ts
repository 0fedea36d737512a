/** The native encoder and the protobufjs decoder agree on every field of proto/. */
import { describe, expect, it } from 'vitest';
import { EVENT_SIZE, forwardPathEvents, KIND, RawEvent, rawEvents } from '../../bench/synthetic';
import { decodeBatch } from '../../src/decode';
import { decodeWithProtobufjs } from '../support/protobufjsDecode';
import { native } from '../../src/native';
import { bpftrace_net as pb } from '../../src/gen/bpftrace_net';
import { varint } from '../../src/trace/format';
import { readVarint } from '../../src/wire';

/** What a newer writer may add: one unknown field of each wire type (varint, fixed64, bytes, fixed32). */
const UNKNOWN = Buffer.concat([
  varint((50 << 3) | 0), varint(7),
  varint((51 << 3) | 1), Buffer.alloc(8, 0xab),
  varint((52 << 3) | 2), varint(3), Buffer.from('new'),
  varint((53 << 3) | 5), Buffer.alloc(4, 0xcd),
]);

/** The message with UNKNOWN appended to it and, through `path` (field numbers), to each nested message on the way. */
function withUnknownFields(message: Buffer, path: number[]): Buffer {
  if (!path.length) return Buffer.concat([message, UNKNOWN]);
  const parts: Buffer[] = [];
  let at = 0;
  while (at < message.length) {
    const tag = readVarint(message, at, message.length) as { value: number; next: number };
    const field = Math.floor(tag.value / 8);
    const type = tag.value & 7;
    if (type === 2) {
      const len = readVarint(message, tag.next, message.length) as { value: number; next: number };
      let body = message.subarray(len.next, len.next + len.value);
      if (field === path[0]) body = withUnknownFields(body, path.slice(1));
      parts.push(varint(tag.value), varint(body.length), body);
      at = len.next + len.value;
    } else {
      const end = type === 0 ? (readVarint(message, tag.next, message.length) as { next: number }).next : tag.next + (type === 1 ? 8 : 4);
      parts.push(message.subarray(at, end));
      at = end;
    }
  }
  return Buffer.concat([...parts, UNKNOWN]);
}

describe('encoder <-> decoder', () => {
  it('has the layout of bpf/events.h', () => {
    expect(native().eventSize).toBe(EVENT_SIZE);
  });

  it('round-trips every field, 64-bit values and IPv6 included', () => {
    const e: RawEvent = {
      ts: 0xfffffffffffffn, packetId: 2n ** 53n - 1n, skb: 0xffff8881deadbe00n, aux: 0xffffffff82159760n,
      netns: 4026531840, ifindex: 70000, inIfindex: 1, outIfindex: 2, physinIfindex: 3, physoutIfindex: 4,
      reason: 12, mark: 0xdeadbeef, seq: 65535, cpu: 1, kind: KIND.NF, nfFamily: 10, nfHook: 4, nfSlot: 7,
      ethertype: 0x86dd, ipVersion: 6, l4proto: 58, ttl: 255, icmpType: 128, icmpCode: 0, sport: 65535, dport: 1, ipLen: 1280,
      saddr: [0xfd, 0, ...Array(13).fill(0), 2], daddr: [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1],
      smac: [2, 0x42, 0xc0, 0xa8, 0xde, 2], dmac: [2, 0x42, 0xed, 0x1a, 0x30, 0x67],
      verdict: -1, detail: 4, table: 'broute_table_16b', chain: 'c'.repeat(32),
    };
    const batch = decodeBatch(native().encodeBatch(rawEvents([e]), 42, 7));
    expect(batch.lost).toBe(42);
    expect(batch.sequence).toBe(7);
    const d = batch.events[0];
    expect(d).toMatchObject({
      ts: Number(e.ts), packetId: Number(e.packetId), skb: e.skb, aux: e.aux, netns: e.netns, ifindex: 70000,
      inIfindex: 1, outIfindex: 2, physinIfindex: 3, physoutIfindex: 4, reason: 12, mark: 0xdeadbeef, seq: 65535,
      cpu: 1, kind: KIND.NF, nfFamily: 10, nfHook: 4, nfSlot: 7,
      // names fill their fields without a terminator: still cut at the field's end
      verdict: -1, detail: 4, table: 'broute_table_16b', chain: 'c'.repeat(32),
    });
    expect(d.packet).toMatchObject({ ethertype: 0x86dd, ipVersion: 6, l4proto: 58, ttl: 255, icmpType: 128, sport: 65535, dport: 1, ipLen: 1280 });
    expect([...d.packet.saddr]).toEqual(e.saddr);
    expect([...d.packet.daddr]).toEqual(e.daddr);
    expect([...d.packet.smac]).toEqual(e.smac);
    expect([...d.packet.dmac]).toEqual(e.dmac);
  });

  it('writes 4-byte addresses for IPv4, none for non-IP, and no MACs when the kernel had none', () => {
    const [v4, other] = decodeBatch(native().encodeBatch(rawEvents([
      { ts: 1n, packetId: 1n, seq: 0, kind: KIND.RX, ethertype: 0x0800, ipVersion: 4, saddr: [10, 0, 0, 1], daddr: [10, 0, 0, 2] },
      { ts: 2n, packetId: 2n, seq: 0, kind: KIND.RX, ethertype: 0x88cc },
    ]), 0, 0)).events;
    expect([...v4.packet.saddr]).toEqual([10, 0, 0, 1]);
    expect(v4.packet.smac.length).toBe(0);
    expect(other.packet.saddr.length).toBe(0);
    expect(other.packet.ethertype).toBe(0x88cc);
  });

  it('matches what protobufjs itself would encode', () => {
    const events = forwardPathEvents(9, 1000n);
    const ours = native().encodeBatch(rawEvents(events), 3, 1);
    const reencoded = pb.Batch.encode(pb.Batch.decode(ours)).finish();
    expect(Buffer.from(reencoded).equals(ours)).toBe(true);
  });

  it('rejects a corrupt or truncated batch with a coded error', () => {
    const good = native().encodeBatch(rawEvents(forwardPathEvents(1, 0n)), 0, 0);
    expect(() => decodeBatch(good.subarray(0, good.length - 5))).toThrow(expect.objectContaining({ code: 'CORRUPT_BATCH' }));
    expect(() => decodeBatch(Buffer.from([0xff, 0xff, 0xff]))).toThrow(expect.objectContaining({ code: 'CORRUPT_BATCH' }));
  });

  it('checks its arguments', () => {
    expect(() => native().encodeBatch(Buffer.alloc(EVENT_SIZE + 1), 0, 0)).toThrow(new RegExp(`multiple of ${EVENT_SIZE}`));
    expect(() => (native().encodeBatch as unknown as (a: unknown) => void)('x')).toThrow(/encodeBatch\(rawEvents/);
    const Session = native().TraceSession;
    expect(() => new (Session as unknown as new () => unknown)()).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const s = new Session(() => undefined, () => undefined);
    expect(() => s.start({} as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('the hand-written wire decoder', () => {
  it('reads exactly what protobufjs reads, every field set', () => {
    const events: RawEvent[] = [
      ...forwardPathEvents(7, 123456789n),
      {
        ts: 0xfffffffffffffn, packetId: 9n, skb: 0xffff8881deadbe00n, aux: 0xffffffff82159760n, seq: 3, kind: KIND.NF_TABLE,
        verdict: -22, table: 'filter', chain: 'DOCKER-USER', netns: 4026531840, nfFamily: 7, nfHook: 2,
      },
      { ts: 5n, packetId: 9n, seq: 4, kind: KIND.NF_HOOK_ENTER, priorities: [-2147483647, -300, 0, 300], detail: 4 },
    ];
    const bytes = native().encodeBatch(rawEvents(events), 12345, 678);
    // Buffers and Uint8Arrays alike as plain arrays, bigints as text.
    const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) =>
      typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? Array.from(x) : x?.type === 'Buffer' ? x.data : x));
    const viaProtobufjs = plain(decodeWithProtobufjs(bytes));
    expect(plain(decodeBatch(bytes))).toEqual(viaProtobufjs);
    expect(viaProtobufjs.events[events.length - 2]).toMatchObject({ verdict: -22, table: 'filter', chain: 'DOCKER-USER', aux: `${0xffffffff82159760n}n` });
  });

  it('skips fields it does not know, in batches, events and packets (a newer writer\'s), reading the rest as before', () => {
    const bytes = native().encodeBatch(rawEvents(forwardPathEvents(3, 42n)), 9, 4);
    const BATCH_EVENTS = 1;
    const EVENT_PACKET = 19;
    const newer = withUnknownFields(bytes, [BATCH_EVENTS, EVENT_PACKET]);
    expect(newer.length).toBeGreaterThan(bytes.length + UNKNOWN.length * 3);
    const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? Array.from(x) : x)));
    expect(plain(decodeBatch(newer))).toEqual(plain(decodeBatch(bytes)));
    expect(plain(decodeWithProtobufjs(newer))).toEqual(plain(decodeWithProtobufjs(bytes)));
  });

  it('refuses bytes that are not a batch, in one clear error', () => {
    const bytes = native().encodeBatch(rawEvents(forwardPathEvents(1, 1n)), 0, 0);
    expect(() => decodeBatch(bytes.subarray(0, bytes.length - 3))).toThrow(/cannot decode an event batch: /);
    expect(() => decodeBatch(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow(/runs past its message/);
  });
});
