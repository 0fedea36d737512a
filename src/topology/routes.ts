/** The traced netns' routing table (main), loaded once, for explaining where a
 * routed packet went: a longest-prefix match in memory, never a lookup per packet. */
import type { Netns } from './netns';
import { native } from '../native';
import { formatAddress } from '../model/packet';

export interface Route {
  prefix: string;      // "10.200.0.0/24", "default"
  dev?: string;
  via?: string;
  /** Needed for "default", which names no address. */
  family?: 4 | 6;
}

interface Entry extends Route {
  bits: bigint;
  len: number;
  width: number;
}

function parseAddress(a: string): { value: bigint; width: number } | undefined {
  if (a.includes('.')) {
    const parts = a.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return undefined;
    return { value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), width: 32 };
  }
  if (!a.includes(':')) return undefined;
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n), width: 128 };
}

/** Destinations remembered (a flood asks for the same few again and again). */
const LOOKUP_CACHE = 4096;

export class RouteTable {
  private readonly cache = new Map<string, Route | undefined>();

  private constructor(private readonly entries: Entry[]) {}

  /** The main table, read over netlink from a thread inside the netns; devices named
   * from `links`, the netns's links as already listed. */
  static load(ns: Netns, links: Iterable<{ ifindex: number; name: string }>): RouteTable {
    let rows: { family: 4 | 6; dst: Uint8Array | null; dstLen: number; oif: number; gateway: Uint8Array | null }[] = [];
    try {
      rows = native().routesIn(ns.path ?? '');
    } catch {
      // unreadable: no route is named
    }
    const names = new Map([...links].map((l) => [l.ifindex, l.name]));
    // As `ip route show` writes them: a host route without its /32 or /128.
    const routes: Route[] = rows.map((r) => {
      const width = r.family === 4 ? 32 : 128;
      const addr = r.dst ? formatAddress(r.dst) : null;
      const prefix = !addr ? 'default' : r.dstLen === width ? addr : `${addr}/${r.dstLen}`;
      return { prefix, dev: names.get(r.oif), via: r.gateway ? formatAddress(r.gateway) ?? undefined : undefined, family: r.family };
    });
    return RouteTable.fromRoutes(routes);
  }

  static fromRoutes(routes: Route[]): RouteTable {
    const entries: Entry[] = [];
    for (const r of routes) {
      const [addr, lenText] = r.prefix === 'default' ? [r.family === 6 ? '::' : '0.0.0.0', '0'] : r.prefix.split('/');
      const parsed = parseAddress(addr);
      const len = parsed && (lenText === undefined ? parsed.width : Number(lenText));
      // A prefix length that is no length (a damaged trace file) names no route.
      if (parsed && Number.isInteger(len) && (len as number) >= 0 && (len as number) <= parsed.width) {
        entries.push({ ...r, bits: parsed.value, len: len as number, width: parsed.width });
      }
    }
    return new RouteTable(entries.sort((a, b) => b.len - a.len));
  }

  routes(): Route[] {
    return this.entries.map((e) => ({ prefix: e.prefix, dev: e.dev, via: e.via, family: e.width === 32 ? 4 : 6 }));
  }

  lookup(dst: string): Route | undefined {
    if (this.cache.has(dst)) return this.cache.get(dst);
    if (this.cache.size >= LOOKUP_CACHE) this.cache.clear();
    const route = this.match(dst);
    this.cache.set(dst, route);
    return route;
  }

  private match(dst: string): Route | undefined {
    const d = parseAddress(dst);
    if (!d) return undefined;
    for (const e of this.entries) {
      if (e.width !== d.width) continue;
      const shift = BigInt(e.width - e.len);
      if (d.value >> shift === e.bits >> shift) return { prefix: e.prefix, dev: e.dev, via: e.via };
    }
    return undefined;
  }
}
