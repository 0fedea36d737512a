/** top mode: the kernel counts packets per path signature; one exemplar
 * traversal per path says what the path is. This keeps the running table. */
import type { PathCount } from '../native';
import type { Hop, Traversal } from './traversal';

export interface PathRow {
  signature: string;
  packets: number;
  bytes: number;
  /** Packets per second over the last interval. */
  rate: number;
  /** The path in one line, from its exemplar (null until the exemplar arrives). */
  path: string | null;
  end: string | null;
  summary: string | null;
  dropped: boolean;
  /** The same path as fields (--json): each place in order with its tables, and the end. */
  steps: PathStep[] | null;
  endAt: { kind: string; dev: string | null; reason: string | null; location: string | null; table: string | null; chain: string | null } | null;
}

export interface PathStep {
  family: string;
  hook: string;
  /** netdev steps: the device. */
  dev?: string;
  tables: { table: string; chain: string | null; verdict: string | null }[];
}

export interface TopSnapshot {
  at: string;
  intervalS: number;
  totalPackets: number;
  /** Events / records the kernel could not queue (exemplars included). */
  lost: number;
  paths: PathRow[];
  /** Where packets die, summed over paths: place -> packets. */
  drops: { where: string; packets: number; rate: number }[];
}

function hookLabel(h: Hop): string {
  if (h.family === 'netdev') return h.hook === 'RX' ? `in ${h.in}` : `out ${h.out}`;
  return `${h.family} ${h.hook}`;
}

/** "in veth1 > ipv4 PREROUTING[raw,conntrack,mangle,nat] > ... > out enp4s0", one
 * segment per device or hook, tables in order, a verdict where it was not ACCEPT. */
export function pathLine(t: Traversal): string {
  const parts: { label: string; tables: string[] }[] = [];
  for (const h of t.hops) {
    const label = hookLabel(h);
    const last = parts[parts.length - 1];
    const table = h.table ? `${h.table}${h.verdict && h.verdict !== 'ACCEPT' ? `=${h.verdict}` : ''}` : '';
    if (last && last.label === label && h.family !== 'netdev') {
      if (table) last.tables.push(table);
    } else {
      parts.push({ label, tables: table ? [table] : [] });
    }
  }
  const line = parts.map((p) => (p.tables.length ? `${p.label}[${p.tables.join(',')}]` : p.label)).join(' > ');
  // Conntrack state is part of a path: a connection's first packet goes through nat, the rest do not.
  const ct = [...new Set(t.hops.map((h) => h.ct).filter((c): c is string => !!c))];
  return ct.length ? `${line} (ct ${ct.join(', ')})` : line;
}

export function endLine(t: Traversal): string {
  const e = t.end;
  switch (e.kind) {
    case 'tx':
      return `left via ${e.dev}`;
    case 'local':
      return `delivered locally${e.dev ? ` (${e.dev})` : ''}`;
    case 'drop':
      return `DROPPED${e.dev ? ` on ${e.dev}` : ''}: ${e.reason}${e.location ? ` at ${e.location}` : ''}`;
    default:
      return 'end not seen';
  }
}

/** pathLine's segments as fields. */
export function pathSteps(t: Traversal): PathStep[] {
  const steps: PathStep[] = [];
  for (const h of t.hops) {
    const last = steps[steps.length - 1];
    const dev = h.family === 'netdev' ? (h.hook === 'RX' ? h.in : h.out) ?? undefined : undefined;
    const table = h.table ? { table: h.table, chain: h.chain ?? null, verdict: h.verdict } : undefined;
    if (last && h.family !== 'netdev' && last.family === h.family && last.hook === h.hook) {
      if (table) last.tables.push(table);
    } else {
      steps.push({ family: h.family, hook: h.hook, ...(dev ? { dev } : {}), tables: table ? [table] : [] });
    }
  }
  return steps;
}

export class PathTable {
  private readonly exemplars = new Map<string, Traversal>();
  private previous = new Map<string, number>();
  private previousAt = 0;

  /** An exemplar traversal for its path signature (the first packet seen on it). */
  addExemplar(signature: string, t: Traversal): void {
    if (!this.exemplars.has(signature)) this.exemplars.set(signature, t);
  }

  /** Folds in the kernel's counters read at `atMs`. */
  snapshot(counts: PathCount[], atMs: number, lost: number): TopSnapshot {
    const intervalS = this.previousAt ? (atMs - this.previousAt) / 1000 : 0;
    const rows: PathRow[] = counts.map((c) => {
      const t = this.exemplars.get(c.signature);
      const before = this.previous.get(c.signature) ?? 0;
      return {
        signature: c.signature,
        packets: c.packets,
        bytes: c.bytes,
        rate: intervalS > 0 ? (c.packets - before) / intervalS : 0,
        path: t ? pathLine(t) : null,
        end: t ? endLine(t) : null,
        summary: t ? t.summary : null,
        dropped: t?.end.kind === 'drop',
        steps: t ? pathSteps(t) : null,
        endAt: t ? {
          kind: t.end.kind, dev: t.end.dev, reason: t.end.reason, location: t.end.location ?? null,
          table: t.end.table ?? null, chain: t.end.chain ?? null,
        } : null,
      };
    });
    rows.sort((a, b) => b.rate - a.rate || b.packets - a.packets || a.signature.localeCompare(b.signature));
    const drops = new Map<string, { packets: number; rate: number }>();
    for (const r of rows) {
      if (!r.dropped || !r.end) continue;
      const d = drops.get(r.end) ?? { packets: 0, rate: 0 };
      d.packets += r.packets;
      d.rate += r.rate;
      drops.set(r.end, d);
    }
    this.previous = new Map(counts.map((c) => [c.signature, c.packets]));
    this.previousAt = atMs;
    return {
      at: new Date(atMs).toISOString(),
      intervalS,
      totalPackets: rows.reduce((n, r) => n + r.packets, 0),
      lost,
      paths: rows,
      drops: [...drops].map(([where, d]) => ({ where, ...d })).sort((a, b) => b.rate - a.rate || b.packets - a.packets),
    };
  }
}
