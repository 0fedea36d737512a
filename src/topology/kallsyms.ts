import * as fs from 'fs';

/** Kernel text addresses -> symbol names, from /proc/kallsyms, loaded on first
 * use (only rx_handler and drop locations need it, a handful per run). */
export class Kallsyms {
  private addrs: bigint[] = [];
  private names: string[] = [];
  private loaded = false;
  private cache = new Map<bigint, string | undefined>();

  constructor(private readonly file = '/proc/kallsyms') {}

  /** "br_handle_frame", or "nf_hook_slow+0x9c" inside a function. */
  lookup(addr: bigint): string | undefined {
    if (addr === 0n) return undefined;
    if (this.cache.has(addr)) return this.cache.get(addr);
    this.load();
    let lo = 0;
    let hi = this.addrs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.addrs[mid] <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    let name: string | undefined;
    if (found >= 0) {
      const off = addr - this.addrs[found];
      name = off === 0n ? this.names[found] : `${this.names[found]}+0x${off.toString(16)}`;
    }
    this.cache.set(addr, name);
    return name;
  }

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return;
    }
    const rows: [bigint, string][] = [];
    for (const line of text.split('\n')) {
      const [addr, type, name] = line.split(/\s+/, 3);
      if (!name || (type !== 't' && type !== 'T')) continue;
      const a = BigInt(`0x${addr}`);
      if (a !== 0n) rows.push([a, name]);
    }
    rows.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    this.addrs = rows.map((r) => r[0]);
    this.names = rows.map((r) => r[1]);
  }
}
