import * as fs from 'fs';

/** Kernel text (core and modules) sits in the top 2 GiB of the address space, above this: an
 * address there is kept as its 32-bit offset from it, a plain number. */
const TEXT_BASE = 0xffffffff00000000n;

/** Kernel text addresses -> symbol names, from /proc/kallsyms, loaded on first use or ahead
 * of it by preload() (rx_handlers, drop locations and hook functions, a handful per run). One
 * pass over the file's ~10 MB without regular expressions or a bigint per line, then one sort
 * of a typed array. */
export class Kallsyms {
  private offsets = new Float64Array(0);
  private names: string[] = [];
  private loaded = false;
  private cache = new Map<bigint, string | undefined>();
  /** Bumped by invalidate(): a read started before it does not count. */
  private generation = 0;

  constructor(private readonly file = '/proc/kallsyms') {}

  /** Reads the table off the event loop (the kernel takes most of the time, generating the
   * file), so the first lookup does not wait for it; a lookup before it ends reads it itself. */
  async preload(): Promise<void> {
    const generation = this.generation;
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, 'latin1');
    } catch {
      return;
    }
    if (this.loaded || generation !== this.generation) return;
    this.loaded = true;
    this.parse(text);
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
        name = off === 0 ? this.names[found] : `${this.names[found]}+0x${off.toString(16)}`;
      }
    }
    this.cache.set(addr, name);
    return name;
  }

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'latin1');
    } catch {
      return;
    }
    this.parse(text);
  }

  private parse(text: string): void {
    // Lines: "ffffffff81234560 T name\t[module]". Only text symbols (t, T) of the top 2 GiB.
    const offsets: number[] = [];
    const names: string[] = [];
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      const type = text.charCodeAt(at + 17);
      if (end - at > 19 && text.startsWith('ffffffff', at) && text.charCodeAt(at + 16) === 32 && (type === 116 || type === 84)) {
        const offset = parseInt(text.slice(at + 8, at + 16), 16);
        let nameEnd = at + 19;
        while (nameEnd < end && text.charCodeAt(nameEnd) !== 9 && text.charCodeAt(nameEnd) !== 32) nameEnd++;
        if (offset > 0) {
          offsets.push(offset);
          names.push(text.slice(at + 19, nameEnd));
        }
      }
      at = end + 1;
    }
    const order = Array.from(offsets.keys()).sort((a, b) => offsets[a] - offsets[b]);
    this.offsets = Float64Array.from(order, (i) => offsets[i]);
    this.names = order.map((i) => names[i]);
  }
}
