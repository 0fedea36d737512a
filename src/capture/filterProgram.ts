/** A tcpdump filter expression, compiled once by libpcap (through the addon): the CLI
 * checks it with this before loading anything, the kernel runs the same rows, and
 * replay/export run them here on what the trace kept of each packet. */
import { BnError } from '../errors';
import { EventKind, type KernelEvent, type PacketHeaders } from '../decode';
import { native } from '../native';

/** [code, jt, jf, k], as struct sock_filter. */
export type FilterProgram = [number, number, number, number][];

const compiled = new Map<string, FilterProgram>();

export function compileFilter(expression: string): FilterProgram {
  let program = compiled.get(expression);
  if (!program) {
    try {
      program = native().compileFilter(expression) as FilterProgram;
    } catch (err) {
      throw new BnError('BAD_FILTER', `bad filter '${expression}': ${(err as Error).message}`);
    }
    compiled.set(expression, program);
  }
  return program;
}

const ETH_HLEN = 14;

/** Runs a classic BPF program over a frame as the kernel's interpreter sees it
 * (bpf/filter.bpf.h): an Ethernet header, then the network header and on. */
export function runFilter(program: FilterProgram, frame: Uint8Array): boolean {
  let A = 0;
  let X = 0;
  const M = new Uint32Array(16);
  const load = (off: number, size: number): number | undefined => {
    if (off < 0 || off + size > frame.length) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = (v * 256) + frame[off + i];
    return v >>> 0;
  };
  for (let pc = 0, steps = 0; pc < program.length && steps < 4096; pc++, steps++) {
    const [code, jt, jf, k] = program[pc];
    const cls = code & 0x07;
    if (cls === 0 || cls === 1) {
      const size = (code & 0x18) === 0x00 ? 4 : (code & 0x18) === 0x08 ? 2 : 1;
      const mode = code & 0xe0;
      let v: number | undefined;
      if (mode === 0x00) v = k;
      else if (mode === 0x80) v = frame.length;
      else if (mode === 0x60) v = M[k & 15];
      else if (mode === 0x20) v = load(k, size);
      else if (mode === 0x40) v = load(X + k, size);
      else if (mode === 0xa0) {
        const b = load(k, 1);
        v = b === undefined ? undefined : (b & 0xf) << 2;
      }
      if (v === undefined) return false;
      if (cls === 0) A = v >>> 0;
      else X = v >>> 0;
    } else if (cls === 2) M[k & 15] = A;
    else if (cls === 3) M[k & 15] = X;
    else if (cls === 4) {
      const src = code & 0x08 ? X : k;
      switch (code & 0xf0) {
        case 0x00: A = (A + src) >>> 0; break;
        case 0x10: A = (A - src) >>> 0; break;
        case 0x20: A = Math.imul(A, src) >>> 0; break;
        case 0x30: if (!src) return false; A = Math.floor(A / src) >>> 0; break;
        case 0x40: A = (A | src) >>> 0; break;
        case 0x50: A = (A & src) >>> 0; break;
        case 0x60: A = src < 32 ? (A << src) >>> 0 : 0; break;
        case 0x70: A = src < 32 ? A >>> src : 0; break;
        case 0x80: A = -A >>> 0; break;
        case 0x90: if (!src) return false; A = (A % src) >>> 0; break;
        case 0xa0: A = (A ^ src) >>> 0; break;
        default: return false;
      }
    } else if (cls === 5) {
      const src = code & 0x08 ? X : k;
      let cond: boolean;
      switch (code & 0xf0) {
        case 0x00: pc += k; continue;
        case 0x10: cond = A === src; break;
        case 0x20: cond = A > src; break;
        case 0x30: cond = A >= src; break;
        case 0x40: cond = (A & src) !== 0; break;
        default: return false;
      }
      pc += cond ? jt : jf;
    } else if (cls === 6) return ((code & 0x18) === 0x10 ? A : k) !== 0;
    else if (cls === 7) {
      if ((code & 0xf8) === 0x00) X = A;
      else A = X;
    }
  }
  return false;
}

/** The frame a packet's first event kept: its bytes when the trace has them (behind a made-up
 * Ethernet header when they start at the network header), else headers rebuilt from what
 * the kernel parsed (addresses, protocol, ports, ICMP type, TCP flags, TTL, length). */
export function frameOf(data: Uint8Array, fromMac: boolean, p: PacketHeaders): Uint8Array {
  const eth = new Uint8Array(ETH_HLEN);
  eth.set(p.dmac.length === 6 ? p.dmac : new Uint8Array(6), 0);
  eth.set(p.smac.length === 6 ? p.smac : new Uint8Array(6), 6);
  eth[12] = p.ethertype >> 8;
  eth[13] = p.ethertype & 0xff;
  if (data.length) return fromMac ? data : concat(eth, data);
  let l3: Uint8Array;
  if (p.ipVersion === 4 && p.saddr.length >= 4) {
    l3 = new Uint8Array(20);
    l3[0] = 0x45;
    l3[2] = p.ipLen >> 8;
    l3[3] = p.ipLen & 0xff;
    l3[8] = p.ttl;
    l3[9] = p.l4proto;
    l3.set(p.saddr.subarray(0, 4), 12);
    l3.set(p.daddr.subarray(0, 4), 16);
  } else if (p.ipVersion === 6 && p.saddr.length >= 16) {
    l3 = new Uint8Array(40);
    l3[0] = 0x60;
    l3[4] = p.ipLen >> 8;
    l3[5] = p.ipLen & 0xff;
    l3[6] = p.l4proto;
    l3[7] = p.ttl;
    l3.set(p.saddr.subarray(0, 16), 8);
    l3.set(p.daddr.subarray(0, 16), 24);
  } else {
    return eth;
  }
  const l4 = new Uint8Array(20);
  if (p.l4proto === 1 || p.l4proto === 58) {
    l4[0] = p.icmpType;
    l4[1] = p.icmpCode;
    l4[4] = p.sport >> 8; // ICMP id
    l4[5] = p.sport & 0xff;
    l4[6] = p.dport >> 8; // ICMP sequence
    l4[7] = p.dport & 0xff;
  } else {
    l4[0] = p.sport >> 8;
    l4[1] = p.sport & 0xff;
    l4[2] = p.dport >> 8;
    l4[3] = p.dport & 0xff;
    if (p.l4proto === 6) {
      l4[12] = 0x50;
      l4[13] = p.tcpFlags;
    }
  }
  return concat(eth, l3, l4);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** replay and export with a filter: does the packet's first event (where the kernel would have
 * run the filter) pass it? */
export function admitsPacket(program: FilterProgram, events: KernelEvent[]): boolean {
  let first: KernelEvent | undefined;
  for (const e of events) if (e.kind !== EventKind.LOST && (!first || e.seq < first.seq)) first = e;
  return !!first && runFilter(program, frameOf(first.data, first.dataFromMac, first.packet));
}
