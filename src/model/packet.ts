/** Packet headers -> the words people read in tcpdump and LOG output. */
import type { PacketHeaders } from '../decode';

const L4_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp', 47: 'gre', 50: 'esp' };
const ICMP_TYPES: Record<number, string> = {
  0: 'echo reply', 3: 'unreachable', 5: 'redirect', 8: 'echo request', 11: 'time exceeded',
};
const ICMP6_TYPES: Record<number, string> = {
  1: 'unreachable', 3: 'time exceeded', 128: 'echo request', 129: 'echo reply',
  133: 'router solicitation', 134: 'router advertisement', 135: 'neighbor solicitation', 136: 'neighbor advertisement',
};
const ETH_P_ARP = 0x0806;

const CT_STATES = ['established', 'related', 'new', 'established reply', 'related reply', 'ctinfo 5', 'ctinfo 6', 'untracked'];

/** skb->_nfct's ip_conntrack_info, as the event carries it (0 = no entry yet). */
export function ctStateName(ctState: number): string | null {
  return ctState ? CT_STATES[ctState - 1] ?? `ctinfo ${ctState - 1}` : null;
}

const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;

/** The nat table runs only for a connection's first packet, or a related
 * connection's, and never without a conntrack entry (none, or untracked). A
 * related ICMP error is translated from its connection without the table
 * (nf_nat_ipv4_fn / nf_nat_ipv6_fn). */
export function natTableConsulted(p: PacketHeaders): boolean {
  const name = ctStateName(p.ctState);
  if (name === 'new') return true;
  if (name === null || !name.startsWith('related')) return false;
  return p.l4proto !== IPPROTO_ICMP && p.l4proto !== IPPROTO_ICMPV6;
}

/** Addresses and other header bytes compared as they are (no formatting on the hot path). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true; // hops of one header share its arrays
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const ICMP_ERROR_TYPES: Record<number, Set<number>> = { 1: new Set([3, 4, 5, 11, 12]), 58: new Set([1, 2, 3, 4]) };

/** An ICMP or ICMPv6 error (unreachable, time exceeded, ...): what a REJECT answers with. */
export function isIcmpError(p: PacketHeaders): boolean {
  return ICMP_ERROR_TYPES[p.l4proto]?.has(p.icmpType) ?? false;
}

export function formatAddress(bytes: Uint8Array): string | null {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return null;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // RFC 5952: compress the longest run (length >= 2) of zero groups.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** On every hop of every packet: a table, not a string per byte. */
export function formatMac(b: Uint8Array): string | null {
  return b.length === 6 ? `${HEX_BYTE[b[0]]}:${HEX_BYTE[b[1]]}:${HEX_BYTE[b[2]]}:${HEX_BYTE[b[3]]}:${HEX_BYTE[b[4]]}:${HEX_BYTE[b[5]]}` : null;
}

export function protoName(p: PacketHeaders): string {
  if (p.ethertype === ETH_P_ARP) return 'arp';
  if (!p.ipVersion) return p.ethertype ? `ethertype 0x${p.ethertype.toString(16).padStart(4, '0')}` : 'unknown';
  return L4_NAMES[p.l4proto] ?? `ip proto ${p.l4proto}`;
}

/** An 802.1Q tag control field, as tcpdump -e reads it. */
export function vlanTag(proto: number, tci: number): { id: number; pcp: number; dei: number; proto: string } {
  return { id: tci & 0xfff, pcp: tci >> 13, dei: (tci >> 12) & 1, proto: proto === 0x88a8 ? '802.1ad' : proto === 0x8100 ? '802.1Q' : `0x${proto.toString(16)}` };
}

/** TCP flags as tcpdump writes them: [S], [S.], [.], [P.], [F.], [R.] (print-tcp.c's order, '.' for ACK). */

export function tcpFlags(flags: number): string {
  const letters: [number, string][] = [[0x01, 'F'], [0x02, 'S'], [0x04, 'R'], [0x08, 'P'], [0x10, '.'], [0x20, 'U'], [0x40, 'E'], [0x80, 'W']];
  const out = letters.filter(([bit]) => flags & bit).map(([, c]) => c).join('');
  return out || 'none';
}

/** One line in tcpdump's spirit: "icmp echo request 192.168.222.2 > 10.200.0.2 id 7 seq 1 ttl 64".
 * `src` and `dst`: the addresses as formatted already, where the caller has them. */
export function describePacket(p: PacketHeaders, src = formatAddress(p.saddr), dst = formatAddress(p.daddr)): string {
  const proto = protoName(p);
  if (proto === 'arp') return p.l4proto === 2 ? `arp reply ${src} is-at ${formatMac(p.smac) ?? '?'}` : `arp who-has ${dst} tell ${src}`;
  if (!p.ipVersion) return proto;
  if (proto === 'icmp' || proto === 'icmpv6') {
    const names = proto === 'icmp' ? ICMP_TYPES : ICMP6_TYPES;
    const kind = names[p.icmpType] ?? `type ${p.icmpType} code ${p.icmpCode}`;
    const echo = kind.includes('echo') ? ` id ${p.sport} seq ${p.dport}` : '';
    return `${proto} ${kind} ${src} > ${dst}${echo} ttl ${p.ttl}`;
  }
  if (proto === 'tcp') return `tcp ${src}:${p.sport} > ${dst}:${p.dport} [${tcpFlags(p.tcpFlags)}] len ${p.ipLen} ttl ${p.ttl}`;
  if (proto === 'udp') return `udp ${src}:${p.sport} > ${dst}:${p.dport} len ${p.ipLen} ttl ${p.ttl}`;
  return `${proto} ${src} > ${dst} ttl ${p.ttl}`;
}
