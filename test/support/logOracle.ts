/** The users' ground truth: a LOG rule at the top of every chain of every table
 * in the traced netns, read back from the kernel log and rebuilt into each
 * packet's ordered hops. The rules are removed before the tool runs. */
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { formatAddress } from '../../src/model/packet';
import type { Hop, Traversal } from '../../src/model/traversal';
import { traceWhile } from './cli';

/** What a LOG line and a tool hop can both say about one hop. */
export interface ComparableHop {
  family: string;
  hook: string;
  table: string;
  in: string | null;
  out: string | null;
  physin: string | null;
  physout: string | null;
  ttl: number | null;
}

export interface OracleHop extends ComparableHop {
  family: 'ipv4' | 'ipv6' | 'bridge';
  src: string | null;
  dst: string | null;
  fields: Record<string, string>;
  /** The rest of the LOG line, for flags such as SYN and ACK. */
  text: string;
}

const IP_CHAINS: [string, string[]][] = [
  ['raw', ['PREROUTING', 'OUTPUT']],
  ['mangle', ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']],
  ['nat', ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']],
  ['filter', ['INPUT', 'FORWARD', 'OUTPUT']],
  ['security', ['INPUT', 'FORWARD', 'OUTPUT']],
];
// ebtables-nft (Debian 12's ebtables) has no broute table; broute is tested apart.
const BRIDGE_CHAINS: [string, string[]][] = [
  ['nat', ['PREROUTING', 'OUTPUT', 'POSTROUTING']],
  ['filter', ['INPUT', 'FORWARD', 'OUTPUT']],
];
const FAMILY_CODE = { ipv4: '4', ipv6: '6', bridge: 'b' } as const;
const SYSCTL = 'net.netfilter.nf_log_all_netns';

function sysctl(name: string, value?: string): string {
  const args = value === undefined ? ['-n', name] : ['-qw', `${name}=${value}`];
  return execFileSync('sysctl', args, { encoding: 'utf8' }).trim();
}

/** IPv6 as LOG prints it (full groups) -> the tool's compressed form. */
function normalizeAddress(a: string | undefined): string | null {
  if (!a) return null;
  if (!a.includes(':')) return a;
  const groups = a.split(':').map((g) => parseInt(g, 16));
  if (groups.length !== 8 || groups.some(Number.isNaN)) return a;
  const bytes = Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
  return formatAddress(bytes);
}

export class LogOracle {
  readonly token = `bn${randomBytes(3).toString('hex')}`;
  private rules: { cmd: string; table: string; chain: string; family: keyof typeof FAMILY_CODE }[] = [];
  private savedSysctl: string | undefined;

  constructor(
    private readonly lab: { host: string; exec(netns: string, cmd: string, args: string[]): string },
    private readonly opts: { ipv6?: boolean; bridge?: boolean } = {},
  ) {}

  install(): void {
    this.savedSysctl = sysctl(SYSCTL);
    sysctl(SYSCTL, '1');
    const add = (cmd: string, family: keyof typeof FAMILY_CODE, chains: [string, string[]][]) => {
      for (const [table, list] of chains) {
        for (const chain of list) {
          this.rules.push({ cmd, table, chain, family });
          this.lab.exec(this.lab.host, cmd, ['-t', table, '-I', chain, '1', ...this.target(family, table, chain)]);
        }
      }
    };
    add('iptables', 'ipv4', IP_CHAINS);
    if (this.opts.ipv6) add('ip6tables', 'ipv6', IP_CHAINS);
    if (this.opts.bridge) add('ebtables', 'bridge', BRIDGE_CHAINS);
  }

  /** Removes every rule it added and restores the sysctl, whatever happened. */
  remove(): void {
    for (const r of this.rules.splice(0)) {
      try {
        this.lab.exec(this.lab.host, r.cmd, ['-t', r.table, '-D', r.chain, ...this.target(r.family, r.table, r.chain)]);
      } catch {
        // the netns may already be gone
      }
    }
    if (this.savedSysctl !== undefined) sysctl(SYSCTL, this.savedSysctl);
    this.savedSysctl = undefined;
  }

  /** The hops the kernel logged under this oracle's token, in the order it printed them.
   * (The token, not a line count, marks them: the kernel log is a ring that wraps.) */
  hops(): OracleHop[] {
    const lines = this.kernelLog();
    const out: OracleHop[] = [];
    // LOG cuts prefixes at 29 characters, which can eat the space after the chain name.
    const re = new RegExp(`${this.token}:([46b]):(\\w+):(BROUTING|PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ?(.*)$`);
    for (const line of lines) {
      const m = re.exec(line);
      if (!m) continue;
      const fields: Record<string, string> = {};
      // "ID=" appears twice for ICMP (IP id, then echo id): keep both apart.
      for (const kv of m[4].matchAll(/(\w+)=(\S*)/g)) fields[fields[kv[1]] !== undefined ? `${kv[1]}2` : kv[1]] = kv[2];
      const family = m[1] === '4' ? 'ipv4' : m[1] === '6' ? 'ipv6' : 'bridge';
      out.push({
        family, table: m[2], hook: m[3],
        in: fields.IN || null, out: fields.OUT || null, physin: fields.PHYSIN || null, physout: fields.PHYSOUT || null,
        src: normalizeAddress(fields.SRC), dst: normalizeAddress(fields.DST),
        ttl: fields.TTL ? Number(fields.TTL) : fields.HOPLIMIT ? Number(fields.HOPLIMIT) : null,
        fields,
        text: m[4],
      });
    }
    return out;
  }

  private target(family: keyof typeof FAMILY_CODE, table: string, chain: string): string[] {
    const prefix = `${this.token}:${FAMILY_CODE[family]}:${table}:${chain} `;
    return family === 'bridge'
      ? ['--log', '--log-level', 'debug', '--log-prefix', prefix.trim(), '-j', 'CONTINUE']
      : ['-j', 'LOG', '--log-level', 'debug', '--log-prefix', prefix];
  }

  private kernelLog(): string[] {
    return execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
  }
}

/** Bridge-family LOG lines print no br_netfilter ports and their own header fields:
 * compare where and in which order, by device. */
export function placeOf(h: { family: string; hook: string; table: string | null; in: string | null; out: string | null }): string {
  return `${h.family} ${h.hook} ${h.table} in=${h.in ?? '-'} out=${h.out ?? '-'}`;
}

/** The tool's hops as LOG rules would show them (netfilter hooks only), all families. */
export function placesFromTool(hops: Hop[]): string[] {
  return hops
    .filter((h) => h.family !== 'netdev' && h.table !== 'conntrack' && h.consulted !== false)
    .map((h) => placeOf({ ...h, table: h.table === null ? null : String(h.table) }));
}

export function fromOracle(h: OracleHop): ComparableHop {
  return { family: h.family, hook: h.hook, table: h.table, in: h.in, out: h.out, physin: h.physin, physout: h.physout, ttl: h.ttl };
}

/** The tool's hops that a LOG rule could have printed: tables it really ran (no
 * conntrack slot, no nat table skipped for an established connection). */
export function fromTool(t: Traversal, families: string[] = ['ipv4', 'ipv6']): ComparableHop[] {
  return t.hops
    .filter((h: Hop) => families.includes(h.family) && h.table !== 'conntrack' && h.consulted !== false)
    .map((h) => ({ family: h.family, hook: h.hook, table: String(h.table), in: h.in, out: h.out, physin: h.physin, physout: h.physout, ttl: h.ttl ?? null }));
}

/** The same scenario twice: under LOG rules (the oracle), then under `watch --json`
 * with the rules gone. */
export async function underOracleThenWatch(
  host: { host: string; exec(netns: string, cmd: string, args: string[]): string },
  watchArgs: string[],
  scenario: () => void,
  opts: { ipv6?: boolean; bridge?: boolean; settleMs?: number; readyMs?: number } = {},
): Promise<{ logged: OracleHop[]; traced: Traversal[] }> {
  const oracle = new LogOracle(host, opts);
  try {
    oracle.install();
    scenario();
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 700));
  } finally {
    oracle.remove();
  }
  const w = await traceWhile(watchArgs, scenario, { settleMs: opts.settleMs ?? 700, readyMs: opts.readyMs });
  return { logged: oracle.hops(), traced: w.traversals() };
}
