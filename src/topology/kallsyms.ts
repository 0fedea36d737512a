import * as fs from 'fs';

/** Kernel text (core and modules) sits in the top 2 GiB of the address space, above this: an
 * address there is kept as its 32-bit offset from it, a plain number. */
const TEXT_BASE = 0xffffffff00000000n;

/** Kernel text addresses -> symbol names, from /proc/kallsyms, loaded on first use or ahead
 * of it by preload() (rx_handlers, drop locations and hook functions, a handful per run). One
 * pass over the file's ~10 MB of bytes without regular expressions, a string or a bigint per
 * line; what stays is the text symbols' offsets and their names packed in one buffer (a few
 * MB, where 120k strings sliced from the file kept all of it alive), sorted by offset. */
export class Kallsyms {
  private offsets: Float64Array = new Float64Array(0);
  /** names[nameStarts[i] .. nameStarts[i + 1]) is the name at offsets[i]. */
  private names: Buffer = Buffer.alloc(0);
  private nameStarts: Uint32Array = new Uint32Array(1);
  private loaded = false;
  private cache = new Map<bigint, string | undefined>();
  /** Bumped by invalidate(): a read started before it does not count. */
  private generation = 0;

  constructor(private readonly file = '/proc/kallsyms') {}

  /** Reads the table off the event loop (the kernel takes most of the time, generating the
   * file), so the first lookup does not wait for it; a lookup before it ends reads it itself. */
  async preload(): Promise<void> {
    const generation = this.generation;
    const builder = new TableBuilder();
    try {
      const file = await fs.promises.open(this.file, 'r');
      try {
        while (builder.take((await file.read(builder.chunk, builder.carried, builder.room, null)).bytesRead));
      } finally {
        await file.close();
      }
    } catch {
      return;
    }
    if (this.loaded || generation !== this.generation) return;
    this.loaded = true;
    this.adopt(builder);
  }

  /** Modules may have come (the ruleset changed): read the table again, in the background. */
  invalidate(): Promise<void> {
    this.generation++;
    this.loaded = false;
    this.cache.clear();
    return this.preload();
  }

  /** "br_handle_frame", or "nf_hook_slow+0x9c" inside a function. */
  lookup(addr: bigint): string | undefined {
    if (addr === 0n) return undefined;
    if (this.cache.has(addr)) return this.cache.get(addr);
    this.load();
    let name: string | undefined;
    if (addr >= TEXT_BASE && addr - TEXT_BASE < 0x100000000n) {
      const at = Number(addr - TEXT_BASE);
      let lo = 0;
      let hi = this.offsets.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (this.offsets[mid] <= at) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (found >= 0) {
        const off = at - this.offsets[found];
        const base = this.names.toString('latin1', this.nameStarts[found], this.nameStarts[found + 1]);
        name = off === 0 ? base : `${base}+0x${off.toString(16)}`;
      }
    }
    this.cache.set(addr, name);
    return name;
  }

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    const builder = new TableBuilder();
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        while (builder.take(fs.readSync(fd, builder.chunk, builder.carried, builder.room, null)));
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    this.adopt(builder);
  }

  private adopt(builder: TableBuilder): void {
    ({ offsets: this.offsets, names: this.names, nameStarts: this.nameStarts } = builder.table());
  }
}

/** The table, parsed a piece of the file at a time: only the text symbols' offsets and names
 * are kept, never the file's ~10 MB (read whole, it and the copies fs.readFile makes of a file
 * without a size stayed in the process's memory). */
class TableBuilder {
  /** Where the file is read, after the incomplete line the last piece ended with. */
  chunk: Buffer = Buffer.allocUnsafeSlow(1 << 20);
  carried = 0;
  private offsets = new Float64Array(1 << 16);
  /** Where each name starts in `names`, in the file's order: it ends where the next starts. */
  private starts = new Uint32Array(1 << 16);
  private names: Buffer = Buffer.allocUnsafeSlow(1 << 22);
  private namesSize = 0;
  private count = 0;

  get room(): number {
    return this.chunk.length - this.carried;
  }

  /** Parses what the last read brought; false once it brought nothing (the end). */
  take(bytesRead: number): boolean {
    const end = this.carried + bytesRead;
    const rest = this.lines(end, bytesRead === 0);
    this.chunk.copy(this.chunk, 0, rest, end);
    this.carried = end - rest;
    if (this.carried === this.chunk.length) this.chunk = grownBuffer(this.chunk, this.chunk.length * 2);
    return bytesRead > 0;
  }

  table(): { offsets: Float64Array; names: Buffer; nameStarts: Uint32Array } {
    const n = this.count;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const offsets = this.offsets;
    order.sort((a, b) => offsets[a] - offsets[b]);
    const names = Buffer.allocUnsafeSlow(this.namesSize);
    const nameStarts = new Uint32Array(n + 1);
    const sorted = new Float64Array(n);
    let put = 0;
    for (let k = 0; k < n; k++) {
      const i = order[k];
      sorted[k] = offsets[i];
      nameStarts[k] = put;
      put += this.names.copy(names, put, this.starts[i], i + 1 < n ? this.starts[i + 1] : this.namesSize);
    }
    nameStarts[n] = put;
    return { offsets: sorted, names, nameStarts };
  }

  /** Lines: "ffffffff81234560 T name\t[module]". Only text symbols (t, T) of the top 2 GiB.
   * Returns where the line left incomplete (unless `last`) begins. */
  private lines(size: number, last: boolean): number {
    const text = this.chunk;
    let at = 0;
    while (at < size) {
      let end = text.indexOf(NEWLINE, at);
      if (end < 0 || end >= size) {
        if (!last) return at;
        end = size;
      }
      const type = text[at + 17];
      if (end - at > 19 && text[at + 16] === SPACE && (type === LOWER_T || type === UPPER_T) && topTwoGiB(text, at)) {
        const offset = hex32(text, at + 8);
        let nameEnd = at + 19;
        while (nameEnd < end && text[nameEnd] !== TAB && text[nameEnd] !== SPACE) nameEnd++;
        if (offset > 0) this.add(offset, text, at + 19, nameEnd);
      }
      at = end + 1;
    }
    return size;
  }

  private add(offset: number, text: Buffer, from: number, to: number): void {
    if (this.count === this.offsets.length) {
      const size = this.count * 2;
      this.offsets = grownArray(this.offsets, new Float64Array(size));
      this.starts = grownArray(this.starts, new Uint32Array(size));
    }
    if (this.namesSize + (to - from) > this.names.length) this.names = grownBuffer(this.names, this.names.length * 2 + (to - from));
    this.offsets[this.count] = offset;
    this.starts[this.count] = this.namesSize;
    this.namesSize += text.copy(this.names, this.namesSize, from, to);
    this.count++;
  }
}

function grownArray<T extends Float64Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function grownBuffer(buf: Buffer, size: number): Buffer {
  const bigger = Buffer.allocUnsafeSlow(size);
  buf.copy(bigger);
  return bigger;
}

const NEWLINE = 10;
const TAB = 9;
const SPACE = 32;
const LOWER_T = 116;
const UPPER_T = 84;
const LOWER_F = 102;

/** The line's address starts with "ffffffff". */
function topTwoGiB(text: Buffer, at: number): boolean {
  for (let i = at; i < at + 8; i++) if (text[i] !== LOWER_F) return false;
  return true;
}

/** Eight hex digits at `at` as a number; NaN if one is not. */
function hex32(text: Buffer, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = text[i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return NaN;
    v = v * 16 + d;
  }
  return v;
}
