/** Batch bytes -> kernel events, decoded straight from the protobuf wire
 * format: the hot path of every live capture and replay. protobufjs builds an
 * object per message and a Long per 64-bit field first; this reads each field
 * once into the final shape (3-4x faster), and refuses what it cannot read. */
import type { DecodedBatch, KernelEvent, PacketHeaders } from './decode';

export class WireError extends Error {}

export const EMPTY = new Uint8Array(0);

/** Every event's priorities but NF_HOOK_ENTER's: one shared, never changed. */
export const NO_PRIORITIES: number[] = Object.freeze([]) as unknown as number[];

/** The one varint reader of the JS side (batches here, frame lengths in trace/reader.ts): a
 * varint of at most maxBytes in buf[at, end), exact as a number up to 2^53, and where the
 * next byte is; or why it could not be read. */
export function readVarint(buf: Uint8Array, at: number, end: number, maxBytes = 10): { value: number; next: number } | 'truncated' | 'overlong' {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (at + i >= end) return 'truncated';
    const b = buf[at + i];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return { value, next: at + i + 1 };
    scale *= 128;
  }
  return 'overlong';
}

/** Most 64-bit fields hold small numbers (an aux of 0, a name's index): one bigint each, made once. */
const SMALL_BIGINTS: bigint[] = Array.from({ length: 256 }, (_, i) => BigInt(i));

/** Reads one protobuf message, [pos, end) of buf. */
export class Cursor {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  /** Up to 53 bits exactly, as a number. readVarint's loop, inline: the hot path allocates nothing. */
  varint(): number {
    const buf = this.buf;
    let at = this.pos;
    if (at < this.end && buf[at] < 0x80) {
      this.pos = at + 1;
      return buf[at];
    }
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++, at++) {
      if (at >= this.end) throw new WireError(`truncated varint at ${this.pos}`);
      const b = buf[at];
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = at + 1;
        return value;
      }
      scale *= 128;
    }
    throw new WireError(`overlong varint at ${this.pos}`);
  }

  /** A uint32 field: the varint's low 32 bits, as protobuf readers do. */
  uint32(): number {
    let lo = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError(`truncated varint at ${this.pos}`);
      const b = this.buf[this.pos++];
      if (i < 5) lo |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return lo >>> 0;
    }
    throw new WireError(`overlong varint at ${this.pos}`);
  }

  /** A full 64-bit varint, exactly, as a bigint. */
  varint64(): bigint {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError(`truncated varint at ${this.pos}`);
      const b = this.buf[this.pos++];
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) return hi === 0 && lo >= 0 && lo < SMALL_BIGINTS.length ? SMALL_BIGINTS[lo] : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      shift += 7;
    }
    throw new WireError(`overlong varint at ${this.pos}`);
  }

  length(): number {
    const n = this.varint();
    if (n > this.end - this.pos) throw new WireError(`a field of ${n} bytes at ${this.pos} runs past its message`);
    return n;
  }

  bytes(): Uint8Array {
    const n = this.length();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        // Not `this.pos += this.length()`: that adds to pos as it was before the length was read.
        const n = this.length();
        this.pos += n;
        return;
      }
      case 5:
        this.pos += 4;
        break;
      default:
        throw new WireError(`wire type ${wireType} at ${this.pos}`);
    }
    if (this.pos > this.end) throw new WireError('a fixed field runs past its message');
  }
}

export const zigzag = (n: number) => (n % 2 === 1 ? -(n + 1) / 2 : n / 2);

/** A copy of p, field by field: a spread of it takes V8's slow generic path, and this runs
 * for every header a record changes. */
export function copyHeaders(p: PacketHeaders): PacketHeaders {
  return {
    ethertype: p.ethertype, ipVersion: p.ipVersion, saddr: p.saddr, daddr: p.daddr, l4proto: p.l4proto, sport: p.sport,
    dport: p.dport, ttl: p.ttl, ipLen: p.ipLen, icmpType: p.icmpType, icmpCode: p.icmpCode, smac: p.smac, dmac: p.dmac,
    ctState: p.ctState, tcpFlags: p.tcpFlags, vlanProto: p.vlanProto, vlanTci: p.vlanTci,
  };
}

export function packet(c: Cursor, end: number): PacketHeaders {
  const p: PacketHeaders = {
    ethertype: 0, ipVersion: 0, saddr: EMPTY, daddr: EMPTY, l4proto: 0, sport: 0, dport: 0, ttl: 0, ipLen: 0,
    icmpType: 0, icmpCode: 0, smac: EMPTY, dmac: EMPTY, ctState: 0, tcpFlags: 0, vlanProto: 0, vlanTci: 0,
  };
  packetInto(p, c, end);
  return p;
}

/** A Packet's fields onto p: those it sets (a zero or an empty field is one it leaves as it is,
 * as proto3 writes them: a record's header gives only what changed). */
export function packetInto(p: PacketHeaders, c: Cursor, end: number): void {
  const inner = new Cursor(c.buf, c.pos, end);
  while (inner.pos < end) {
    const tag = inner.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 0) {
      const v = inner.uint32();
      if (v === 0) continue;
      switch (field) {
        case 1: p.ethertype = v; break;
        case 2: p.ipVersion = v; break;
        case 5: p.l4proto = v; break;
        case 6: p.sport = v; break;
        case 7: p.dport = v; break;
        case 8: p.ttl = v; break;
        case 9: p.ipLen = v; break;
        case 10: p.icmpType = v; break;
        case 11: p.icmpCode = v; break;
        case 14: p.ctState = v; break;
        case 15: p.tcpFlags = v; break;
        case 16: p.vlanProto = v; break;
        case 17: p.vlanTci = v; break;
        default: break;
      }
    } else if (type === 2 && (field === 3 || field === 4 || field === 12 || field === 13)) {
      const b = inner.bytes();
      if (b.length === 0) continue;
      if (field === 3) p.saddr = b;
      else if (field === 4) p.daddr = b;
      else if (field === 12) p.smac = b;
      else p.dmac = b;
    } else inner.skip(type);
  }
  c.pos = end;
}

/** The last Packet decoded, by its encoded bytes: a packet's hops mostly carry the same
 * headers, and decoding them once saves most of the objects a trace turns into. */
let lastPacket: { buf: Uint8Array; at: number; end: number; value: PacketHeaders } | undefined;

function sharedPacket(m: Cursor, at: number, end: number): PacketHeaders {
  const last = lastPacket;
  if (last && last.end - last.at === end - at) {
    const a = last.buf;
    const b = m.buf;
    let i = 0;
    const n = end - at;
    while (i < n && a[last.at + i] === b[at + i]) i++;
    if (i === n) return last.value;
  }
  const value = packet(m, end);
  lastPacket = { buf: m.buf, at, end, value };
  return value;
}

export function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

function event(c: Cursor, end: number): KernelEvent {
  const e: KernelEvent = {
    ts: 0, packetId: 0, seq: 0, kind: 0, cpu: 0, netns: 0, ifindex: 0, inIfindex: 0, outIfindex: 0, physinIfindex: 0,
    physoutIfindex: 0, nfFamily: 0, nfHook: 0, nfSlot: 0, aux: 0n, reason: 0, mark: 0, skb: 0n, packet: undefined as unknown as PacketHeaders,
    verdict: 0, detail: 0, table: '', chain: '', priorities: NO_PRIORITIES, data: EMPTY, wireLen: 0, dataFromMac: false, pathSignature: '',
  };
  const m = new Cursor(c.buf, c.pos, end);
  while (m.pos < end) {
    const tag = m.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 0) {
      switch (field) {
        case 15: e.aux = m.varint64(); continue;
        case 18: e.skb = m.varint64(); continue;
        case 28: e.pathSignature = m.varint64().toString(16).padStart(16, '0'); continue;
        default: break;
      }
      if (field === 1 || field === 2) {
        // uint64: exact as numbers up to 2^53, which kernel clocks and packet counts stay below.
        if (field === 1) e.ts = m.varint();
        else e.packetId = m.varint();
        continue;
      }
      const v = m.uint32();
      switch (field) {
        case 3: e.seq = v; break;
        case 4: e.kind = v; break;
        case 5: e.cpu = v; break;
        case 6: e.netns = v; break;
        case 7: e.ifindex = v; break;
        case 8: e.inIfindex = v; break;
        case 9: e.outIfindex = v; break;
        case 10: e.physinIfindex = v; break;
        case 11: e.physoutIfindex = v; break;
        case 12: e.nfFamily = v; break;
        case 13: e.nfHook = v; break;
        case 14: e.nfSlot = v; break;
        case 16: e.reason = v; break;
        case 17: e.mark = v; break;
        case 20: e.verdict = zigzag(v); break;
        case 21: e.detail = v; break;
        case 26: e.wireLen = v; break;
        case 27: e.dataFromMac = v !== 0; break;
        default: break;
      }
    } else if (type === 2) {
      const n = m.length();
      const at = m.pos;
      switch (field) {
        case 19: e.packet = sharedPacket(m, at, at + n); break;
        case 22: e.table = utf8(m.buf.subarray(at, at + n)); break;
        case 23: e.chain = utf8(m.buf.subarray(at, at + n)); break;
        case 24: {
          const p = new Cursor(m.buf, at, at + n);
          if (e.priorities === NO_PRIORITIES) e.priorities = [];
          while (p.pos < at + n) e.priorities.push(zigzag(p.uint32()));
          break;
        }
        case 25: e.data = m.buf.subarray(at, at + n); break;
        default: break;
      }
      m.pos = at + n;
    } else m.skip(type);
  }
  if (!e.packet) e.packet = packet(new Cursor(c.buf, end, end), end);
  c.pos = end;
  return e;
}

/** A Batch or a RecordBatch: its repeated messages (field 1), each handed to `each` as
 * [c.pos, end), then its loss count and sequence (fields 2 and 3). */
export function readBatch(buf: Uint8Array, each: (c: Cursor, end: number) => void): { lost: number; sequence: number } {
  const c = new Cursor(buf, 0, buf.length);
  let lost = 0;
  let sequence = 0;
  while (c.pos < buf.length) {
    const tag = c.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (field === 1 && type === 2) {
      const n = c.length();
      each(c, c.pos + n);
    } else if (field === 2 && type === 0) lost = c.varint();
    else if (field === 3 && type === 0) sequence = c.varint();
    else c.skip(type);
  }
  return { lost, sequence };
}

/** The same bytes as a plain Uint8Array: a Buffer's subarray() runs Buffer's own constructor,
 * and a batch takes several per event (addresses, MACs, packet bytes). */
export function plainView(buf: Uint8Array): Uint8Array {
  return Buffer.isBuffer(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
}

/** Throws WireError for bytes that are not a Batch. */
export function decodeBatchWire(buf: Uint8Array): DecodedBatch {
  const events: KernelEvent[] = [];
  const { lost, sequence } = readBatch(plainView(buf), (c, end) => events.push(event(c, end)));
  return { events, lost, sequence };
}
