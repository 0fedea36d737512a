/** --rules: the capture filter, where nft can say it, narrows what the rule tracer
 * marks, so only packets the filter admits cost trace messages. Handled: `and` of
 * `ip`, `ip6`, `arp`, `icmp`, `icmp6`, `tcp`, `udp`, `[src|dst] host ADDR`,
 * `[src|dst] net PREFIX`, `[src|dst] port N`; an `or`, a `not`, parentheses, byte
 * offsets or anything else leave the marking as wide as the traced devices (the BPF
 * filter still decides what is shown). */

/** The nft rule bodies whose union is the filter in a table of `family` (one per
 * alternative; none: nothing there can match), or undefined: nft cannot say it. */
export function pcapToNft(filter: string, family: 'inet' | 'bridge'): string[] | undefined {
  const words = filter.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return undefined;
  // Each conjunct: its alternatives (host and port match either direction).
  const conjuncts: string[][] = [];
  let i = 0;
  const isV6 = (a: string) => a.includes(':');
  while (i < words.length) {
    let w = words[i++];
    let dir: 'src' | 'dst' | undefined;
    if (w === 'src' || w === 'dst') {
      dir = w;
      w = words[i++];
    }
    switch (w) {
      // `meta nfproto` exists in inet tables only; bridge tables see the frame's ether type.
      case 'ip': conjuncts.push([family === 'inet' ? 'meta nfproto ipv4' : 'ether type ip']); break;
      case 'ip6': conjuncts.push([family === 'inet' ? 'meta nfproto ipv6' : 'ether type ip6']); break;
      // ARP never crosses an inet hook: nothing to mark there.
      case 'arp': if (family === 'inet') return []; conjuncts.push(['ether type arp']); break;
      case 'icmp': conjuncts.push(['meta l4proto icmp']); break;
      case 'icmp6': conjuncts.push(['meta l4proto ipv6-icmp']); break;
      case 'tcp': conjuncts.push(['meta l4proto tcp']); break;
      case 'udp': conjuncts.push(['meta l4proto udp']); break;
      case 'host':
      case 'net': {
        const addr = words[i++];
        if (!addr || !/^[0-9a-fA-F.:/]+$/.test(addr)) return undefined;
        const fam = isV6(addr) ? 'ip6' : 'ip';
        conjuncts.push(dir ? [`${fam} ${dir === 'src' ? 'saddr' : 'daddr'} ${addr}`] : [`${fam} saddr ${addr}`, `${fam} daddr ${addr}`]);
        break;
      }
      case 'port': {
        const port = words[i++];
        if (!port || !/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
        conjuncts.push(dir ? [`th ${dir === 'src' ? 'sport' : 'dport'} ${port}`] : [`th sport ${port}`, `th dport ${port}`]);
        break;
      }
      default:
        return undefined;
    }
    if (i < words.length) {
      if (words[i] !== 'and' && words[i] !== '&&') return undefined;
      i++;
      if (i >= words.length) return undefined;
    }
  }
  // The union of the products: one rule per combination of alternatives.
  let rules: string[][] = [[]];
  for (const alts of conjuncts) rules = rules.flatMap((r) => alts.map((a) => [...r, a]));
  return rules.length <= 16 ? rules.map((r) => r.join(' ')) : undefined;
}
