/** RecordBatch bytes (packets mode in trace files, format 2) -> the kernel events a Batch
 * would hold: each packet's headers and hops are written as changes to earlier ones
 * (proto/bpftrace_net.proto, PacketRecord), and unfolded here as the reader thread unfolds
 * the kernel's records for a live capture. */
import type { DecodedBatch, KernelEvent, PacketHeaders } from './decode';
import { bpftrace_net as pb } from './gen/bpftrace_net';
import { copyHeaders, Cursor, EMPTY, NO_PRIORITIES, packet, packetInto, plainView, readBatch, utf8, WireError, zigzag } from './wire';

/** Numbers per hop in PacketRecord.hops (native/encoder.h's BN_RECORD_HOP_WORDS): ten, then aux. */
const HOP_AUX = 10;
const NF_TABLE = pb.EventKind.NF_TABLE;
const NF_HOOK_ENTER = pb.EventKind.NF_HOOK_ENTER;
const RECORD_EXEMPLAR = 2;

interface RecordHeader {
  packet: PacketHeaders;
  mark: number;
  data: Uint8Array;
  wireLen: number;
  dataFromMac: boolean;
}

const PACKET_FIELDS: [number, keyof PacketHeaders][] = [
  [1, 'ethertype'], [2, 'ipVersion'], [3, 'saddr'], [4, 'daddr'], [5, 'l4proto'], [6, 'sport'], [7, 'dport'], [8, 'ttl'], [9, 'ipLen'],
  [10, 'icmpType'], [11, 'icmpCode'], [12, 'smac'], [13, 'dmac'], [14, 'ctState'], [15, 'tcpFlags'], [16, 'vlanProto'], [17, 'vlanTci'],
];

/** The fields a header's `cleared` mask names (bit n: Packet field n) back to zero or empty. */
function clearFields(p: PacketHeaders, cleared: number): void {
  const fields = p as unknown as Record<keyof PacketHeaders, unknown>;
  for (const [n, key] of PACKET_FIELDS) if (cleared & (1 << n)) fields[key] = typeof fields[key] === 'number' ? 0 : EMPTY;
}

/** Copies of packet bytes are cut from slabs: a Uint8Array of its own costs an ArrayBuffer and a
 * backing store of its own, and a flood changes a header's bytes at every NAT rewrite. A slab
 * lives as long as any copy cut from it. */
const SLAB_BYTES = 64 << 10;
let slab = new Uint8Array(0);
let slabUsed = 0;

function copyOf(b: Uint8Array): Uint8Array {
  if (slabUsed + b.length > slab.length) {
    slab = new Uint8Array(Math.max(SLAB_BYTES, b.length));
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + b.length);
  out.set(b);
  slabUsed += b.length;
  return out;
}

/** The header as what changed since its base: `samePlace` (that of an earlier record), else
 * `own` (the record's previous header), as the header says. */
function recordHeader(c: Cursor, end: number, samePlace: RecordHeader | undefined, own: RecordHeader): RecordHeader {
  // Where the changed fields are: read once the base is known.
  let deltaAt = -1;
  let deltaEnd = -1;
  let cleared = 0;
  let diff: Uint8Array | undefined;
  const h: RecordHeader = { packet: own.packet, mark: 0, data: EMPTY, wireLen: 0, dataFromMac: false };
  let ownBase = false;
  const m = new Cursor(c.buf, c.pos, end);
  while (m.pos < end) {
    const tag = m.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 2 && (field === 1 || field === 3 || field === 7)) {
      const n = m.length();
      const at = m.pos;
      if (field === 1) {
        deltaAt = at;
        deltaEnd = at + n;
      }
      else if (field === 3) h.data = m.buf.subarray(at, at + n);
      else diff = m.buf.subarray(at, at + n);
      m.pos = at + n;
    } else if (type === 0 && field === 2) h.mark = m.uint32();
    else if (type === 0 && field === 4) h.wireLen = m.uint32();
    else if (type === 0 && field === 5) h.dataFromMac = m.varint() !== 0;
    else if (type === 0 && field === 6) cleared = m.uint32();
    else if (type === 0 && field === 8) ownBase = m.varint() !== 0;
    else m.skip(type);
  }
  c.pos = end;
  const prev = ownBase || !samePlace ? own : samePlace;
  h.packet = prev.packet;
  if (deltaAt >= 0 || cleared) {
    const p = copyHeaders(prev.packet);
    if (deltaAt >= 0) packetInto(p, new Cursor(m.buf, deltaAt, deltaEnd), deltaEnd);
    if (cleared) clearFields(p, cleared);
    h.packet = p;
  }
  if (diff) {
    if (!prev.wireLen) throw new WireError('a header\'s bytes are given as changes to none');
    const data = copyOf(prev.data);
    const runs = new Cursor(diff, 0, diff.length);
    while (runs.pos < diff.length) {
      const at = runs.varint();
      const n = runs.varint();
      if (at + n > data.length || runs.pos + n > diff.length) throw new WireError('a change to a header\'s bytes runs past them');
      data.set(diff.subarray(runs.pos, runs.pos + n), at);
      runs.pos += n;
    }
    h.data = data;
    h.wireLen = prev.wireLen;
    h.dataFromMac = prev.dataFromMac;
  }
  return h;
}

/** A name slot: table then chain, NUL-padded (NF_TABLE), or int32 priorities (NF_HOOK_ENTER). */
function cString(b: Uint8Array, from: number, to: number): string {
  let end = from;
  while (end < Math.min(to, b.length) && b[end] !== 0) end++;
  return end > from ? utf8(b.subarray(from, end)) : '';
}

function priorities(b: Uint8Array, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(count, 8); i++) {
    const at = i * 4;
    out.push(at + 4 <= b.length ? (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) : 0);
  }
  return out;
}

/** The headers and hop words of a record, for the later ones written as changes to them:
 * hop i's words 0-9 (word 0 the time since the hop before) at words[i * 10 ...], its aux at
 * aux[i]. */
interface RecordBase {
  headers: RecordHeader[];
  words: Float64Array;
  aux: bigint[];
}

/** As many as native/encoder.h's RecordEncoder keeps to choose from. */
const RECORD_BASES = 7;

/** What a record takes from those before it in its batch: the identity, time and netns of
 * the one before, and the latest records, which PacketRecord.base may name. */
interface RecordContext {
  packetId: number;
  skb: bigint;
  startTs: number;
  netns: number;
  recent: RecordBase[];
  records: number;
}

/** A record's words go to the next of these in turn, reused from record to record and batch to
 * batch (a batch is unfolded at once, and its events keep none): none of the records a later one
 * may name is overwritten, and a flood's millions of hops allocate nothing for them. */
const WORD_ARRAYS: Float64Array[] = Array.from({ length: RECORD_BASES + 1 }, () => new Float64Array(32 * HOP_AUX));

function newRecordContext(): RecordContext {
  return { packetId: 0, skb: 0n, startTs: 0, netns: 0, recent: [], records: 0 };
}

/** Before a record's first header: all zeros, shared (nothing changes a PacketHeaders once made). */
const NO_HEADER: RecordHeader = Object.freeze({
  packet: Object.freeze(packet(new Cursor(EMPTY, 0, 0), 0)), mark: 0, data: EMPTY, wireLen: 0, dataFromMac: false,
});

/** A sint32's zigzag form (below 2^32) back, as an integer. */
const zigzag32 = (n: number) => (n >>> 1) ^ -(n & 1);

const zigzag64 = (n: bigint) => ((n & 1n) ? -((n + 1n) >> 1n) : n >> 1n);

/** The record's words array, large enough for `hops` (grown by doubling, kept in its slot). */
function wordsFor(before: RecordContext, hops: number): Float64Array {
  const slot = before.records % WORD_ARRAYS.length;
  let w = WORD_ARRAYS[slot];
  if (w.length < hops * HOP_AUX) {
    w = new Float64Array(Math.max(w.length * 2, hops * HOP_AUX));
    WORD_ARRAYS[slot] = w;
  }
  return w;
}

function unfoldRecord(c: Cursor, end: number, out: KernelEvent[], before: RecordContext): void {
  let packetId = before.packetId;
  let skb = before.skb;
  let startTs = before.startTs;
  let netns = before.netns;
  let firstSeq = 0;
  let flags = 0;
  let signature = 0n;
  const headers: RecordHeader[] = [];
  const names: Uint8Array[] = [];
  let hopBytes: Uint8Array = EMPTY;
  let like: RecordBase | undefined;
  const headerSpans: number[] = [];
  const m = new Cursor(c.buf, c.pos, end);
  while (m.pos < end) {
    const tag = m.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 0) {
      switch (field) {
        case 1: packetId = m.varint(); break;
        case 2: skb = m.varint64(); break;
        case 3: startTs = m.varint(); break;
        case 4: netns = m.uint32(); break;
        case 5: firstSeq = m.uint32(); break;
        case 6: flags = m.uint32(); break;
        case 7: signature = m.varint64(); break;
        case 11: startTs = before.startTs + zigzag(m.varint()); break;
        case 12: packetId = before.packetId + zigzag(m.varint()); break;
        case 13: skb = BigInt.asUintN(64, before.skb + zigzag64(m.varint64())); break;
        case 14: {
          const back = m.varint();
          like = before.recent[before.recent.length - back];
          if (!like || back < 1) throw new WireError(`a record based on one ${back} back, of ${before.recent.length}`);
          break;
        }
        default: m.varint64(); break;
      }
    } else if (type === 2 && (field === 8 || field === 9 || field === 10)) {
      const n = m.length();
      const at = m.pos;
      // Headers are read once `base` is known (a writer may put it anywhere).
      if (field === 8) headerSpans.push(at, at + n);
      else if (field === 9) names.push(m.buf.subarray(at, at + n));
      else hopBytes = m.buf.subarray(at, at + n);
      m.pos = at + n;
    } else m.skip(type);
  }
  c.pos = end;
  for (let k = 0; k < headerSpans.length; k += 2) {
    const i = headers.length;
    const spanEnd = headerSpans[k + 1];
    headers.push(recordHeader(new Cursor(m.buf, headerSpans[k], spanEnd), spanEnd, like?.headers[i], headers[i - 1] ?? NO_HEADER));
  }
  const pathSignature = flags & RECORD_EXEMPLAR && signature ? signature.toString(16).padStart(16, '0') : '';
  // The hops, each as a mask of the words that changed from its base (the same hop of the record
  // named, else this record's hop before, else zeros) and their new values. Words 0-9 are
  // numbers; word 10 (aux) can hold a kernel address, kept exact as a bigint.
  // A hop is at least two bytes (its mask and its time): that bounds the words needed.
  const words = wordsFor(before, hopBytes.length >> 1);
  const auxes: bigint[] = [];
  const likeWords = like?.words;
  const likeHops = like ? like.aux.length : 0;
  // The hops of one header and conntrack state share one PacketHeaders (a record has a few).
  const sharedKeys: number[] = [];
  const shared: PacketHeaders[] = [];
  const h = new Cursor(hopBytes, 0, hopBytes.length);
  let hopTs = 0;
  for (let i = 0, at = 0; h.pos < hopBytes.length; i++, at += HOP_AUX) {
    const mask = h.varint();
    if (!(mask & 1)) throw new WireError('a hop without its time');
    if (i < likeHops) {
      for (let k = 0; k < HOP_AUX; k++) words[at + k] = mask & (1 << k) ? h.varint() : likeWords![at + k];
      auxes.push(mask & (1 << HOP_AUX) ? h.varint64() : like!.aux[i]);
    } else if (i > 0) {
      for (let k = 0; k < HOP_AUX; k++) words[at + k] = mask & (1 << k) ? h.varint() : words[at - HOP_AUX + k];
      auxes.push(mask & (1 << HOP_AUX) ? h.varint64() : auxes[i - 1]);
    } else {
      for (let k = 0; k < HOP_AUX; k++) words[at + k] = mask & (1 << k) ? h.varint() : 0;
      auxes.push(mask & (1 << HOP_AUX) ? h.varint64() : 0n);
    }
    hopTs = (hopTs + words[at]) % 2 ** 32;
    const code = words[at + 1];
    // Bytes of the words taken with integer operations (>>> and & read the low 32 bits): the
    // fields they fill stay small integers, where arithmetic on doubles gave them a box each.
    const kind = code & 255;
    const detail = Math.floor(code / 2 ** 32) & 255;
    const placed = words[at + 2];
    const headerIndex = placed & 255;
    const ct = (placed >>> 8) & 255;
    const header = headers.length ? headers[Math.min(headerIndex, headers.length - 1)] : NO_HEADER;
    const key = headerIndex * 256 + ct;
    let k = sharedKeys.indexOf(key);
    if (k < 0) {
      let pkt = header.packet;
      if (pkt.ctState !== ct) {
        pkt = copyHeaders(header.packet);
        pkt.ctState = ct;
      }
      k = shared.length;
      sharedKeys.push(key);
      shared.push(pkt);
    }
    const aux = auxes[i];
    const named = kind === NF_TABLE || kind === NF_HOOK_ENTER;
    const nameAt = named ? Number(aux) : -1;
    const name = nameAt >= 0 && nameAt < names.length ? names[nameAt] : EMPTY;
    out.push({
      ts: startTs + hopTs, packetId, seq: (firstSeq + i) & 65535, kind, cpu: (placed >>> 16) & 255, netns,
      ifindex: words[at + 3] >>> 0, inIfindex: words[at + 4] >>> 0, outIfindex: words[at + 5] >>> 0, physinIfindex: words[at + 6] >>> 0,
      physoutIfindex: words[at + 7] >>> 0,
      nfFamily: (code >>> 8) & 255, nfHook: (code >>> 16) & 255, nfSlot: code >>> 24,
      aux: named ? 0n : aux, reason: words[at + 9] >>> 0, mark: header.mark, skb, packet: shared[k], verdict: zigzag32(words[at + 8]), detail,
      table: kind === NF_TABLE ? cString(name, 0, 16) : '', chain: kind === NF_TABLE ? cString(name, 16, 48) : '',
      priorities: kind === NF_HOOK_ENTER ? priorities(name, detail) : NO_PRIORITIES,
      data: header.wireLen ? header.data : EMPTY, wireLen: header.wireLen, dataFromMac: header.wireLen ? header.dataFromMac : false,
      pathSignature,
    });
  }
  before.packetId = packetId;
  before.skb = skb;
  before.startTs = startTs;
  before.netns = netns;
  before.recent.push({ headers, words, aux: auxes });
  if (before.recent.length > RECORD_BASES) before.recent.shift();
  before.records++;
}

/** Throws WireError for bytes that are not a RecordBatch. Hops come out in time order, as the
 * reader thread hands a Batch over (a flood's copies end before the packet they were copied from). */
export function decodeRecordBatchWire(buf: Uint8Array): DecodedBatch {
  const events: KernelEvent[] = [];
  const context = newRecordContext();
  const { lost, sequence } = readBatch(plainView(buf), (c, end) => unfoldRecord(c, end, events, context));
  events.sort((a, b) => a.ts - b.ts);
  return { events, lost, sequence };
}
