/** `top`'s table: the busiest paths first, then where packets are dropped. */
import type { TopSnapshot } from '../model/paths';

function rate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(n < 10 && n % 1 ? 1 : 0);
}

export function formatTop(s: TopSnapshot, limit: number, bridge: string): string {
  const lines = [
    `${s.at.slice(11, 19)}  ${bridge}: ${s.paths.length} paths, ${s.totalPackets} packets${s.lost ? `, ${s.lost} lost` : ''}`,
    `${'PKT/S'.padStart(7)} ${'PACKETS'.padStart(9)}  PATH`,
  ];
  for (const r of s.paths.slice(0, limit)) {
    const path = r.path ?? `(path ${r.signature}: its first packet was not received)`;
    lines.push(`${rate(r.rate).padStart(7)} ${String(r.packets).padStart(9)}  ${r.summary ? `e.g. ${r.summary}` : ''}`);
    lines.push(`${' '.repeat(19)}${path}`);
    if (r.end) lines.push(`${' '.repeat(19)}=> ${r.end}`);
  }
  if (s.paths.length > limit) lines.push(`  ... ${s.paths.length - limit} more paths`);
  if (s.drops.length) {
    lines.push('DROP POINTS');
    for (const d of s.drops) lines.push(`${rate(d.rate).padStart(7)} ${String(d.packets).padStart(9)}  ${d.where}`);
  }
  return lines.join('\n');
}
