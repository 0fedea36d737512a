/** The report as one self-contained HTML file: the diagram drawn here as SVG on a fixed
 * layout (the shape of the notes' bridge/netfilter picture is known, so no layout library:
 * L3 hooks above, the bridge's own below, ports on the left, uplinks on the right); style
 * and script inline; nothing is fetched when it is opened. */
import type { ReportData, ReportNode } from './report';

const BOX_W = 170;
/** Columns: ports, then the hooks left to right as a packet goes, then uplinks. */
const COL = [10, 200, 385, 570, 755, 940, 1125];
const W = COL[6] + BOX_W + 10;
const H = 640;

/** Where each known place sits: the notes' diagram. */
const LAYOUT: Record<string, [number, number]> = {
  'ipv4:INPUT': [COL[3], 70], local: [COL[4], 70], 'ipv4:OUTPUT': [COL[5], 70],
  'ipv4:PREROUTING': [COL[2], 200], 'decision:route': [COL[3], 200], 'ipv4:FORWARD': [COL[4], 200], 'ipv4:POSTROUTING': [COL[5], 200],
  'bridge-up': [COL[2], 335], 'bridge-down': [COL[5], 335],
  'bridge:BROUTING': [COL[1], 470], 'bridge:PREROUTING': [COL[2], 470], 'decision:bridge': [COL[3], 470], 'bridge:FORWARD': [COL[4], 470],
  'bridge:POSTROUTING': [COL[5], 470], 'bridge:INPUT': [COL[3], 580], 'bridge:OUTPUT': [COL[4], 580],
};
/** Other families' hooks sit under their IPv4 counterparts. */
const FAMILY_OFFSET: Record<string, number> = { ipv6: 55, arp: 105 };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function positions(data: ReportData): Map<string, [number, number]> {
  const at = new Map<string, [number, number]>();
  let port = 0;
  let right = 0;
  for (const n of data.nodes) {
    const [family, hook] = n.id.split(':');
    if (LAYOUT[n.id]) at.set(n.id, LAYOUT[n.id]);
    else if (FAMILY_OFFSET[family] !== undefined && LAYOUT[`ipv4:${hook}`]) {
      const [x, y] = LAYOUT[`ipv4:${hook}`];
      at.set(n.id, [x, y + FAMILY_OFFSET[family]]);
    } else if (n.kind === 'port') at.set(n.id, [COL[0], 300 + 60 * port++]);
    else at.set(n.id, [COL[6], 130 + 70 * right++]);
  }
  return at;
}

function nodeHeight(n: ReportNode): number {
  return 34 + 13 * Math.min(n.tables.length, 4);
}

function drawNode(n: ReportNode, [x, y]: [number, number]): string {
  const h = nodeHeight(n);
  const lines = n.tables.slice(0, 4).map((t, i) => `<text class="table" x="${x + 8}" y="${y + 32 + 13 * i}">${esc(t)}</text>`).join('');
  const more = n.tables.length > 4 ? `<title>${esc(n.tables.join('\n'))}</title>` : '';
  const drop = n.drops
    ? `<g class="drop"><circle cx="${x + 10}" cy="${y + h + 14}" r="9"/><text x="${x + 10}" y="${y + h + 18}" text-anchor="middle">✕</text>` +
      `<text class="drop-label" x="${x + 24}" y="${y + h + 18}">${n.drops} dropped here</text>` +
      `<title>${esc(Object.entries(n.dropWhere).map(([w, c]) => `${c}× ${w}`).join('\n'))}</title></g>`
    : '';
  const unseen = n.packets ? '' : '<title>no traced packet passed here</title>';
  return `<g class="node ${n.kind}${n.packets ? ' touched' : ''}" data-node="${esc(n.id)}" data-packets="${n.packets}" data-drops="${n.drops}">${unseen}` +
    `<rect x="${x}" y="${y}" width="${BOX_W}" height="${h}" rx="6"/>` +
    `<text class="label" x="${x + 8}" y="${y + 16}">${esc(n.label)}</text>${lines}${more}${drop}</g>`;
}

/** Where the line from a box's centre towards (tx, ty) leaves the box. */
function border(cx: number, cy: number, hw: number, hh: number, tx: number, ty: number): [number, number] {
  const dx = tx - cx;
  const dy = ty - cy;
  if (!dx && !dy) return [cx, cy];
  const scale = 1 / Math.max(Math.abs(dx) / hw, Math.abs(dy) / hh);
  return [cx + dx * scale, cy + dy * scale];
}

function drawEdge(e: { from: string; to: string; packets: number }, a: [number, number], b: [number, number], ha: number, hb: number, back: boolean): string {
  const ca: [number, number] = [a[0] + BOX_W / 2, a[1] + ha / 2];
  const cb: [number, number] = [b[0] + BOX_W / 2, b[1] + hb / 2];
  // An edge with one the other way: both bend, to their own sides.
  const bend = back ? 14 : 0;
  const len = Math.hypot(cb[0] - ca[0], cb[1] - ca[1]) || 1;
  const nx = (-(cb[1] - ca[1]) / len) * bend;
  const ny = ((cb[0] - ca[0]) / len) * bend;
  const [x1, y1] = border(ca[0], ca[1], BOX_W / 2 + 2, ha / 2 + 2, cb[0] + nx, cb[1] + ny);
  const [x2, y2] = border(cb[0], cb[1], BOX_W / 2 + 4, hb / 2 + 4, ca[0] + nx, ca[1] + ny);
  const mx = (x1 + x2) / 2 + nx;
  const my = (y1 + y2) / 2 + ny;
  const label = String(e.packets);
  return `<g class="edge" data-edge="${esc(`${e.from}>${e.to}`)}"><path d="M${x1.toFixed(1)},${y1.toFixed(1)} Q${mx.toFixed(1)},${my.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}" marker-end="url(#arrow)"/>` +
    `<rect class="count-bg" x="${(mx - 4 - 3.5 * label.length).toFixed(1)}" y="${(my - 8).toFixed(1)}" width="${8 + 7 * label.length}" height="14" rx="3"/>` +
    `<text class="count" x="${mx.toFixed(1)}" y="${(my + 3).toFixed(1)}" text-anchor="middle">${label}</text></g>`;
}

export function reportSvg(data: ReportData): string {
  const at = positions(data);
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const pairs = new Set(data.edges.map((e) => `${e.from}>${e.to}`));
  const edges = data.edges.map((e) => drawEdge(e, at.get(e.from)!, at.get(e.to)!, nodeHeight(byId.get(e.from)!), nodeHeight(byId.get(e.to)!),
    pairs.has(`${e.to}>${e.from}`))).join('');
  const bands = `<text class="band" x="${COL[2]}" y="40">L3: iptables / nftables ip, ip6, inet</text>` +
    `<text class="band" x="${COL[1]}" y="455">bridge ${esc(data.facts.bridge)}: ebtables / nftables bridge family</text>` +
    `<text class="band" x="${COL[0]}" y="285">ports</text><text class="band" x="${COL[6]}" y="115">uplinks, other devices</text>`;
  return `<svg id="diagram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>` +
    `${bands}<g class="edges">${edges}</g><g class="nodes">${data.nodes.map((n) => drawNode(n, at.get(n.id)!)).join('')}</g></svg>`;
}

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; }
.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin-bottom: 12px; }
.facts dt { color: #666; } .facts dd { margin: 0; }
.lost { color: #c00; font-weight: bold; }
#diagram { border: 1px solid #ddd; background: #fcfcfc; max-width: 100%; height: auto; }
.node rect { fill: #f3f3f3; stroke: #bbb; } .node text { fill: #aaa; }
.node.touched rect { fill: #e8f0fe; stroke: #3367d6; stroke-width: 1.5; } .node.touched text { fill: #222; }
.node.port.touched rect, .node.uplink.touched rect { fill: #e6f4ea; stroke: #188038; }
.node.decision.touched rect { fill: #fef7e0; stroke: #b06000; }
.node .label { font-weight: 600; font-size: 13px; } .node .table { font-size: 11px; font-family: monospace; }
.drop circle { fill: #d93025; } .drop text { fill: #fff; font-size: 13px; } .drop .drop-label { fill: #d93025 !important; font-size: 12px; font-weight: 600; }
.edge path { fill: none; stroke: #3367d6; stroke-width: 1.6; opacity: .75; } .edge .count { font-size: 11px; fill: #3367d6; } .edge .count-bg { fill: #fff; stroke: #c6d4f5; }
#arrow path { fill: #3367d6; }
.band { font-size: 12px; fill: #888; }
svg.focus .edge, svg.focus .node { opacity: .2; } svg.focus .hl { opacity: 1; } svg.focus .edge.hl path { stroke: #d93025; stroke-width: 3; }
table { border-collapse: collapse; margin-top: 12px; width: 100%; } td, th { border-bottom: 1px solid #eee; padding: 4px 6px; text-align: left; vertical-align: top; }
tr.path { cursor: pointer; } tr.path:hover { background: #f5f5f5; } tr.path.selected { background: #e8f0fe; }
tr.path.dropped td.end { color: #c00; } td.line { font-family: monospace; font-size: 12px; }
#packets li { cursor: pointer; font-family: monospace; } #packets li.selected { background: #e8f0fe; }
pre#packet { background: #f7f7f7; padding: 8px; overflow-x: auto; }
`;

/** The page's own script: choosing a path highlights it and lists its packets; choosing a
 * packet shows its hops as replay prints them. */
const SCRIPT = `
const data = JSON.parse(document.getElementById('report-data').textContent);
const svg = document.getElementById('diagram');
const rows = document.querySelectorAll('tr.path');
const list = document.getElementById('packets');
const pre = document.getElementById('packet');
const note = document.getElementById('sample-note');
function choosePath(index) {
  const path = data.paths.find((p) => p.index === index);
  rows.forEach((r) => r.classList.toggle('selected', Number(r.dataset.path) === index));
  svg.classList.add('focus');
  const on = new Set(path.nodes);
  svg.querySelectorAll('.node').forEach((n) => n.classList.toggle('hl', on.has(n.dataset.node)));
  svg.querySelectorAll('.edge').forEach((e) => {
    const [a, b] = e.dataset.edge.split('>');
    e.classList.toggle('hl', on.has(a) && on.has(b) && path.nodes.indexOf(b) === path.nodes.indexOf(a) + 1);
  });
  list.replaceChildren(...path.sample.map((p) => {
    const li = document.createElement('li');
    li.dataset.packet = p.id;
    li.textContent = '#' + p.id + ' ' + p.summary;
    li.addEventListener('click', () => choosePacket(path, p.id));
    return li;
  }));
  note.textContent = path.packets > path.sample.length
    ? path.sample.length + ' of ' + path.packets + ' packets of this path are kept in this report'
    : path.packets + ' packet(s)';
  pre.textContent = '';
}
function choosePacket(path, id) {
  const p = path.sample.find((s) => s.id === id);
  list.querySelectorAll('li').forEach((li) => li.classList.toggle('selected', Number(li.dataset.packet) === id));
  pre.textContent = p.text;
}
rows.forEach((r) => r.addEventListener('click', () => choosePath(Number(r.dataset.path))));
`;

export function reportHtml(data: ReportData, version: string): string {
  const f = data.facts;
  const containers = f.links.filter((l) => f.ports.includes(l.ifindex)).map((l) => `${l.name}${l.container ? ` (${l.container.name})` : ''}`).join(', ') || 'none';
  const facts: [string, string, string?][] = [
    ['host', f.host], ['kernel', f.kernel], ['backend', f.backend], ['bridge', f.bridge], ['netns', f.netns],
    ['filter', f.filter || '(none)'], ['started', f.startedAt], ['duration', f.durationS === null ? 'unknown' : `${f.durationS.toFixed(1)} s`],
    ['packets', `${data.packets} (${data.dropped} dropped)`], ['lost events', String(f.lost), f.lost ? 'lost' : undefined],
    ['ports', containers], ['rules', f.rules ? 'traced (--rules)' : 'not traced'],
  ];
  const rows = data.paths.map((p) => `<tr class="path${p.dropped ? ' dropped' : ''}" data-path="${p.index}"><td>${p.packets}</td>` +
    `<td class="line">${esc(p.line)}</td><td class="end">${esc(p.end)}</td></tr>`).join('');
  // JSON inside a script element: '<' escaped so no text in it can close the element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>bpftrace-net report: ${esc(f.bridge)}</title><style>${STYLE}</style></head>
<body>
<h1>bpftrace-net report: ${esc(f.bridge)}</h1>
<dl class="facts">${facts.map(([k, v, cls]) => `<dt>${k}</dt><dd${cls ? ` class="${cls}"` : ''}>${esc(v)}</dd>`).join('')}</dl>
${reportSvg(data)}
<h2>Paths</h2>
<table id="paths"><thead><tr><th>packets</th><th>path</th><th>end</th></tr></thead><tbody>${rows}</tbody></table>
<h2>Packets of the chosen path</h2>
<p id="sample-note">choose a path above</p>
<ul id="packets"></ul>
<pre id="packet"></pre>
<p><small>bpftrace-net ${esc(version)}; at most ${data.samplePerPath} packets kept per path.</small></p>
<script type="application/json" id="report-data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
