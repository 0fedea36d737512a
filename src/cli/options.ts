import { InvalidArgumentError } from 'commander';

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

export function powerOfTwoBytes(value: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(value);
  const n = m ? Number(m[1]) * (m[2] ? (m[2].toLowerCase() === 'k' ? 1024 : 1 << 20) : 1) : NaN;
  if (!Number.isInteger(n) || n < 4096 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError('the ring buffer size must be a power of two of at least 4096 (e.g. 8M)');
  }
  return n;
}

/** "0x10" or "16/0xff": a packet mark and the bits of it that must match. */
export function markFilter(value: string): { value: number; mask: number } {
  const m = /^(0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))?$/i.exec(value);
  const mark = m ? Number(m[1]) : NaN;
  const mask = m?.[2] !== undefined ? Number(m[2]) : 0xffffffff;
  if (!m || mark > 0xffffffff || mask > 0xffffffff || mask === 0 || (mark & ~mask) >>> 0 !== 0) {
    throw new InvalidArgumentError('--mark takes VALUE or VALUE/MASK (e.g. 0x10/0xff), with VALUE inside MASK');
  }
  return { value: mark >>> 0, mask: mask >>> 0 };
}

/** "1/100" or "100": follow one packet in N. */
export function sampleRate(value: string): number {
  const m = /^(?:1\/)?(\d+)$/.exec(value);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new InvalidArgumentError('--sample takes 1/N (e.g. 1/100)');
  return n;
}

export const SNAPLEN_MAX = 256;
/** Ethernet + IPv6 + TCP with options: every header, before and after NAT. */
export const SNAPLEN_DEFAULT = 128;

export function snaplenBytes(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > SNAPLEN_MAX) {
    throw new InvalidArgumentError(`--snaplen takes 0 (metadata only) to ${SNAPLEN_MAX} bytes`);
  }
  return n;
}

/** record -C: millions of bytes, as tcpdump counts them, or with a unit (100k, 50M, 2G). */
export function fileSizeBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(value);
  const unit = m?.[2] ? { k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as 'k' | 'm' | 'g'] : 1e6;
  const n = m ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('-C must be a positive size: millions of bytes (as tcpdump), or 100k, 50M, 2G');
  return n;
}
