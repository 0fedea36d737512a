/** `report`: a capture summed up as the notes' bridge/netfilter diagram, the paths
 * packets took (as `top` sees them) and a bounded sample of packets per path. The
 * aggregation is done here, once, while the trace is read; the page only draws it. */
import type { Link } from '../topology/links';
import type { Hop, Traversal } from '../model/traversal';
import { endLine, pathLine } from '../model/paths';
import { decidingRule } from '../model/rules';
import { formatTraversal, withContainer } from './text';

/** Packets kept per path for the page (their text as replay prints it). */
export const SAMPLE_PER_PATH = 25;
/** Paths that keep packets: the busiest; the rest are listed with their counts only. */
export const SAMPLED_PATHS = 200;

export interface ReportFacts {
  host: string;
  kernel: string;
  backend: string;
  bridge: string;
  netns: string;
  filter: string;
  mode: string;
  startedAt: string;
  durationS: number | null;
  lost: number;
  links: Link[];
  ports: number[];
  uplinks: number[];
  /** --rules was on: hops carry their rules. */
  rules: boolean;
}

export interface ReportNode {
  id: string;
  /** What kind of place: port, uplink, device, bridge hook, L3 hook, decision, local. */
  kind: 'port' | 'uplink' | 'device' | 'bridge' | 'l3' | 'decision' | 'local';
  label: string;
  /** The tables and chains the trace found at a hook ("ip filter/FORWARD"). */
  tables: string[];
  packets: number;
  drops: number;
  /** Where it dropped: "ip filter/DOCKER-USER rule 12: ..." -> packets. */
  dropWhere: Record<string, number>;
}

export interface ReportPath {
  index: number;
  line: string;
  end: string;
  dropped: boolean;
  packets: number;
  nodes: string[];
  sample: { id: number; summary: string; text: string }[];
}

export interface ReportData {
  facts: ReportFacts;
  packets: number;
  dropped: number;
  nodes: ReportNode[];
  edges: { from: string; to: string; packets: number }[];
  paths: ReportPath[];
  samplePerPath: number;
}

const BRIDGE_HOOKS = new Set(['BROUTING', 'PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export class ReportBuilder {
  private readonly nodes = new Map<string, ReportNode>();
  private readonly edges = new Map<string, { from: string; to: string; packets: number }>();
  private readonly paths = new Map<string, ReportPath>();
  private packets = 0;
  private dropped = 0;
  private readonly portNames: Set<string>;
  private readonly uplinkNames: Set<string>;

  constructor(private facts: ReportFacts) {
    this.portNames = new Set(facts.links.filter((l) => facts.ports.includes(l.ifindex)).map((l) => l.name));
    this.uplinkNames = new Set(facts.links.filter((l) => facts.uplinks.includes(l.ifindex)).map((l) => l.name));
    for (const name of this.portNames) this.node(`port:${name}`, 'port', this.deviceLabel(name));
    // The notes' whole picture, every time: what no packet touched is drawn faint.
    for (const hook of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) this.node(`ipv4:${hook}`, 'l3', `ipv4 ${hook}`);
    for (const hook of ['BROUTING', 'PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) this.node(`bridge:${hook}`, 'bridge', `bridge ${hook}`);
    this.node('decision:bridge', 'decision', 'bridging decision');
    this.node('decision:route', 'decision', 'routing decision');
    this.node('local', 'local', 'local delivery');
    this.node('bridge-up', 'device', `${facts.bridge}: up to L3`);
    this.node('bridge-down', 'device', `${facts.bridge}: down from L3`);
    for (const name of this.uplinkNames) this.node(`uplink:${name}`, 'uplink', this.deviceLabel(name));
  }

  /** The capture's facts as they end (loss counted to the last batch, duration). */
  setFacts(facts: Partial<ReportFacts>): void {
    this.facts = { ...this.facts, ...facts };
  }

  add(t: Traversal): void {
    this.packets++;
    const copies = [{ hops: t.hops, end: t.end }, ...t.branches.map((b) => ({ hops: b.hops, end: b.end }))];
    const all: string[] = [];
    let dropped = false;
    copies.forEach((copy, i) => {
      const seq = this.sequence(copy.hops, i === 0 ? t : undefined, copy.end);
      // A copy starts where the bridge made it: its way from the decision on.
      for (let k = 1; k < seq.length; k++) this.edge(seq[k - 1], seq[k]);
      for (const id of new Set(seq)) this.nodes.get(id)!.packets++;
      all.push(...seq);
      if (copy.end.kind === 'drop') {
        dropped = true;
        const at = [...copy.hops].reverse().find((h) => h.verdict === 'DROP' || h.verdict === 'REJECT');
        const where = at ? this.nodeOf(at) : seq[seq.length - 1];
        const node = this.nodes.get(where ?? '') ?? this.nodes.get(seq[seq.length - 1]);
        if (node) {
          node.drops++;
          const text = dropText(t, at);
          node.dropWhere[text] = (node.dropWhere[text] ?? 0) + 1;
        }
      }
    });
    if (dropped) this.dropped++;
    const line = pathLine(t);
    const end = endLine(t);
    const key = `${line}|${end}`;
    let path = this.paths.get(key);
    if (!path) {
      path = { index: this.paths.size, line, end, dropped, packets: 0, nodes: [...new Set(all)], sample: [] };
      this.paths.set(key, path);
    }
    path.packets++;
    if (path.sample.length < SAMPLE_PER_PATH) path.sample.push({ id: t.id, summary: t.summary, text: formatTraversal(t) });
  }

  build(): ReportData {
    return {
      facts: this.facts,
      packets: this.packets,
      dropped: this.dropped,
      nodes: [...this.nodes.values()],
      edges: [...this.edges.values()],
      paths: [...this.paths.values()].sort((a, b) => b.packets - a.packets)
        .map((p, rank) => (rank < SAMPLED_PATHS ? p : { ...p, sample: [] })),
      samplePerPath: SAMPLE_PER_PATH,
    };
  }

  /** The places a copy passed, in order, each once in a row; decisions between hops. */
  private sequence(hops: Hop[], t: Traversal | undefined, end: Traversal['end']): string[] {
    const steps: { ts: number; id: string }[] = [];
    for (const h of hops) {
      const id = this.nodeOf(h);
      if (id) steps.push({ ts: h.ts, id });
    }
    for (const d of t?.decisions ?? []) {
      if (d.kind === 'bridge') steps.push({ ts: d.ts, id: this.node('decision:bridge', 'decision', 'bridging decision').id });
      if (d.kind === 'route') steps.push({ ts: d.ts, id: this.node('decision:route', 'decision', 'routing decision').id });
    }
    steps.sort((a, b) => a.ts - b.ts);
    if (end.kind === 'local') steps.push({ ts: Infinity, id: this.node('local', 'local', 'local delivery').id });
    const out: string[] = [];
    for (const s of steps) if (out[out.length - 1] !== s.id) out.push(s.id);
    return out;
  }

  private nodeOf(h: Hop): string | undefined {
    if (h.family === 'netdev') {
      const dev = h.hook === 'RX' ? h.in : h.out;
      if (!dev) return undefined;
      if (dev === this.facts.bridge) {
        return h.hook === 'RX'
          ? this.node('bridge-up', 'device', `${dev}: up to L3`).id
          : this.node('bridge-down', 'device', `${dev}: down from L3`).id;
      }
      if (this.portNames.has(dev)) return this.node(`port:${dev}`, 'port', this.deviceLabel(dev)).id;
      if (this.uplinkNames.has(dev)) return this.node(`uplink:${dev}`, 'uplink', this.deviceLabel(dev)).id;
      return this.node(`device:${dev}`, 'device', this.deviceLabel(dev)).id;
    }
    const kind = h.family === 'bridge' && BRIDGE_HOOKS.has(h.hook) ? 'bridge' : 'l3';
    const node = this.node(`${h.family}:${h.hook}`, kind, `${h.family} ${h.hook}`);
    if (h.table) {
      const table = `${h.tableFamily ?? ''} ${h.table}${h.chain && h.chain !== h.table ? `/${h.chain}` : ''}${h.inferred?.includes('table') ? ' (deduced)' : ''}`.trim();
      if (!node.tables.includes(table)) node.tables.push(table);
    }
    return node.id;
  }

  private node(id: string, kind: ReportNode['kind'], label: string): ReportNode {
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, kind, label, tables: [], packets: 0, drops: 0, dropWhere: {} };
      this.nodes.set(id, n);
    }
    return n;
  }

  private edge(from: string, to: string): void {
    const key = `${from}>${to}`;
    const e = this.edges.get(key);
    if (e) e.packets++;
    else this.edges.set(key, { from, to, packets: 1 });
  }

  private deviceLabel(name: string): string {
    const link = this.facts.links.find((l) => l.name === name);
    return withContainer(name, link?.container);
  }
}

function dropText(t: Traversal, at: Hop | undefined): string {
  const e = t.end;
  const rule = e.rule ?? (at?.rules ? decidingRule(at.rules) : undefined);
  const table = e.table ?? at?.table;
  const chain = e.chain ?? at?.chain;
  const where = table ? `${at?.tableFamily ? `${at.tableFamily} ` : ''}${table}${chain ? `/${chain}` : ''}` : at ? `${at.family} ${at.hook}` : e.dev ?? 'unknown';
  const what = e.rejected ? 'REJECT' : 'DROP';
  return `${what} at ${where}${rule && rule.handle !== null ? `, rule ${rule.handle}: ${rule.text}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
}
