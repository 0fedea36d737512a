/** `ports` as a table, one row per port, FDB entries beneath. */
import type { PortInfo } from '../topology/ports';

function cell(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

export function containerText(c: PortInfo['container']): string {
  if (!c) return '-';
  const extra = [c.runtime, c.image, c.pid ? `pid ${c.pid}` : ''].filter((x) => x).join(', ');
  return `${c.name} (${extra})`;
}

export function formatPorts(bridge: string, ports: PortInfo[]): string {
  if (!ports.length) return `${bridge} has no ports`;
  const rows = [['PORT', 'IFINDEX', 'STATE', 'MAC', 'HAIRPIN', 'VLANS', 'PEER', 'CONTAINER']];
  for (const p of ports) {
    rows.push([
      p.name, String(p.ifindex), `${p.state}/${p.operstate}`, p.mac || '-', p.hairpin ? 'on' : 'off',
      p.vlans.map((v) => `${v.vlan}${v.flags.length ? `(${v.flags.join(',')})` : ''}`).join(' ') || '-',
      p.peer ? `${p.peer.name ?? `if${p.peer.ifindex}`}@${p.peer.netns}` : '-', containerText(p.container),
    ]);
  }
  const lines = cell(rows);
  const fdb = ports.filter((p) => p.fdb.length);
  if (fdb.length) {
    lines.push('', 'FDB');
    for (const p of fdb) {
      for (const f of p.fdb) lines.push(`  ${f.mac}  ${p.name}${f.vlan ? `  vlan ${f.vlan}` : ''}${f.state ? `  ${f.state}` : ''}${f.flags.length ? `  ${f.flags.join(',')}` : ''}`);
    }
  }
  return lines.join('\n');
}
