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
