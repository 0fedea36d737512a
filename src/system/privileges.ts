import * as fs from 'fs';
import { BnError } from '../errors';

const CAPS: Record<string, number> = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 };

export function effectiveCapabilities(status = fs.readFileSync('/proc/self/status', 'utf8')): Set<string> {
  const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
  const bits = BigInt(`0x${hex}`);
  return new Set(Object.entries(CAPS).filter(([, bit]) => (bits >> BigInt(bit)) & 1n).map(([name]) => name));
}

/** Names what is missing to load BPF, attach netfilter links and enter netns. */
export function missingCapabilities(have: Set<string>): string[] {
  const missing: string[] = [];
  const admin = have.has('CAP_SYS_ADMIN');
  if (!have.has('CAP_BPF') && !admin) missing.push('CAP_BPF');
  if (!have.has('CAP_PERFMON') && !admin) missing.push('CAP_PERFMON');
  if (!have.has('CAP_NET_ADMIN')) missing.push('CAP_NET_ADMIN');
  if (!admin) missing.push('CAP_SYS_ADMIN (to enter network namespaces)');
  return missing;
}

export function requirePrivileges(): void {
  const missing = missingCapabilities(effectiveCapabilities());
  if (missing.length) {
    throw new BnError('NEEDS_PRIVILEGES', `needs root: missing ${missing.join(', ')} (run it with sudo)`);
  }
}
