import type { DockerLikeLab } from '../../src/lab/dockerLike';

/** The chains these tests name, made real in the lab's netns (iptables-nft creates a
 * table's chain with its first rule): every table hop the tool shows must be one of them. */
export const TRACED_CHAINS: [string, string][] = [
  ['raw', 'PREROUTING'], ['mangle', 'PREROUTING'], ['nat', 'PREROUTING'],
  ['mangle', 'FORWARD'], ['filter', 'FORWARD'], ['mangle', 'POSTROUTING'],
];

export function addIptablesChains(lab: DockerLikeLab, chains = TRACED_CHAINS): void {
  for (const [table, chain] of chains) lab.exec(lab.host, 'iptables', ['-t', table, '-A', chain, '-j', 'ACCEPT']);
}
