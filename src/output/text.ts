/** The default, human output: one block per packet, one line per hop, in the
 * spirit of the LOG lines users read in dmesg today. */
import { decidingRule } from '../model/rules';
import type { Decision, Hop, Traversal } from '../model/traversal';
import { savedFormLabel } from '../model/xtablesSave';

function clock(iso: string): string {
  return iso.slice(11, 23);
}

/** A device name with the container behind it: "vethdcc08d7 (web-1)". */
export type DeviceLabel = (name: string) => string;

export function withContainer(name: string, container?: { name: string }): string {
  return container ? `${name} (${container.name})` : name;
}

export function deviceLabel(t: Pick<Traversal, 'devices'>): DeviceLabel {
  return (name) => withContainer(name, t.devices?.[name]?.container);
}

const plain: DeviceLabel = (name) => name;

function devices(h: Hop, label: DeviceLabel): string {
  const parts: string[] = [];
  if (h.in) parts.push(`IN=${label(h.in)}`);
  if (h.out) parts.push(`OUT=${label(h.out)}`);
  if (h.physin) parts.push(`PHYSIN=${label(h.physin)}`);
  if (h.physout) parts.push(`PHYSOUT=${label(h.physout)}`);
  return parts.join(' ');
}

/** nftables' name of the family a hook belongs to: an `ip` table at an ipv4 hook goes without saying. */
function familyTableName(family: string): string {
  return family === 'ipv4' ? 'ip' : family === 'ipv6' ? 'ip6' : family;
}

/** Addresses are printed where they differ from the hop before: that is NAT. */
function rewrites(h: Hop, prev: { src: string | null; dst: string | null }): string {
  const parts: string[] = [];
  if (h.src && prev.src && h.src !== prev.src) parts.push(`SRC ${prev.src} -> ${h.src}`);
  if (h.dst && prev.dst && h.dst !== prev.dst) parts.push(`DST ${prev.dst} -> ${h.dst}`);
  return parts.length ? `  [${parts.join(', ')}]` : '';
}

export function formatHop(h: Hop, prev: { src: string | null; dst: string | null }, label: DeviceLabel = plain, withMacs = false): string {
  const inferred = h.inferred?.includes('table') ? '?' : '';
  const table = h.table === null ? inferred : `${h.tableFamily && h.tableFamily !== familyTableName(h.family) ? `${h.tableFamily} ` : ''}${h.table}${inferred}`;
  const where = h.family === 'netdev' ? h.hook : `${h.family} ${h.hook} ${table}${h.chain && h.chain !== h.hook ? `/${h.chain}` : ''}`.trimEnd();
  const verdict = h.verdict ?? '';
  let line = `  ${where.padEnd(26)} ${verdict.padEnd(6)} ${devices(h, label)}`;
  if (h.rxHandler) line += ` rx_handler=${h.rxHandler}`;
  if (withMacs && h.smac) line += ` MAC=${h.smac}>${h.dmac}`;
  if (withMacs && h.vlan) line += ` VLAN=${h.vlan.id}${h.vlan.pcp ? ` PRIO=${h.vlan.pcp}` : ''}${h.vlan.proto !== '802.1Q' ? ` VLANPROTO=${h.vlan.proto}` : ''}`;
  if (h.ttl) line += ` TTL=${h.ttl}`;
  line += rewrites(h, prev);
  if (!h.observed) line += '  (inferred)';
  if (h.ct) line += ` CT=${h.ct.replace(' ', '-')}`;
  if (h.note) line += `  -- ${h.note}`;
  return line.trimEnd();
}

/** --rules: under a hop, the jumps the packet took and the rule that decided (with its
 * iptables-save form where it has one). */
export function formatRules(h: Hop): string[] {
  const rules = h.rules ?? [];
  const last = decidingRule(rules);
  return rules
    .filter((r) => r === last || r.verdict.startsWith('jump') || r.verdict.startsWith('goto'))
    .flatMap((r) => [
      r.handle === null ? `${' '.repeat(6)}${r.text} in ${r.chain}` : `${' '.repeat(6)}rule ${r.handle} in ${r.chain}: ${r.text}`,
      ...(r.saved ? [`${' '.repeat(8)}${savedFormLabel(h.tableFamily ?? '')}: ${r.saved}`] : []),
    ]);
}

export function formatEnd(t: Traversal): string {
  const e = t.end;
  const label = deviceLabel(t);
  switch (e.kind) {
    case 'tx':
      return `  => left via ${label(e.dev ?? '?')}`;
    case 'local':
      return `  => delivered locally${e.dev ? ` (${label(e.dev)})` : ''}`;
    case 'drop':
      return `  => ${e.rejected ? 'REJECTED' : 'DROPPED'}${e.dev ? ` on ${label(e.dev)}` : ''}: ${e.reason}${e.location ? ` at ${e.location}` : ''}${e.rule ? ` by rule ${e.rule.handle} in ${e.table} ${e.chain}` : ''}${t.answeredBy !== undefined ? `; answered by #${t.answeredBy}` : ''}`;
    default:
      return '  => end not seen (timed out)';
  }
}

export function formatDecision(d: Decision): string {
  // Aligned under the devices column of the hop lines.
  return `${' '.repeat(36)}* ${d.text}`;
}

/** macs (-e): each hop's Ethernet addresses too, as tcpdump -e prints them. */
export function formatTraversal(t: Traversal, macs = false): string {
  const lines = [`#${t.id} ${clock(t.time)} ${t.summary}${t.answers !== undefined ? ` (answers #${t.answers}, which was rejected)` : ''}`];
  let prev = { src: t.src, dst: t.dst };
  const label = deviceLabel(t);
  const decisions = [...(t.decisions ?? [])];
  for (const h of t.hops) {
    while (decisions.length && decisions[0].ts <= h.ts) lines.push(formatDecision(decisions.shift()!));
    lines.push(formatHop(h, prev, label, macs), ...formatRules(h));
    prev = { src: h.src ?? prev.src, dst: h.dst ?? prev.dst };
  }
  for (const d of decisions) lines.push(formatDecision(d));
  for (const b of t.branches ?? []) {
    lines.push(`  + copy #${b.id}:`);
    let prevB = { src: t.src, dst: t.dst };
    for (const h of b.hops) {
      lines.push(`  ${formatHop(h, prevB, label, macs)}`);
      prevB = { src: h.src ?? prevB.src, dst: h.dst ?? prevB.dst };
    }
    lines.push(`  ${formatEnd({ ...t, end: b.end })}`);
  }
  lines.push(formatEnd(t));
  if (t.missing) lines.push(`  ! ${t.missing} event(s) of this packet were lost: hops are incomplete`);
  return lines.join('\n');
}
