/** Netfilter families, hooks and verdicts: the BPF side only knows numbers;
 * names are given here, once. Tables and chains come from the netns's own
 * hook table (ruleset.ts), never from a catalogue. */

export type Family = 'bridge' | 'ipv4' | 'ipv6' | 'arp' | 'netdev';
export type HookName = 'RX' | 'BROUTING' | 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING' | 'TX';

export const NFPROTO = { ipv4: 2, ipv6: 10 } as const;
export const NF_INET_HOOKS: HookName[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

export function familyName(nfproto: number): Family {
  if (nfproto === NFPROTO.ipv4) return 'ipv4';
  if (nfproto === NFPROTO.ipv6) return 'ipv6';
  if (nfproto === 3) return 'arp';
  if (nfproto === 7) return 'bridge';
  return 'netdev';
}

const NF_BR_BROUTING = 5;

/** NF_INET_* and NF_BR_* share numbers 0-4; the bridge family adds BROUTING; ARP has its own three. */
/** NF_ARP_IN, NF_ARP_OUT, NF_ARP_FORWARD. */
const NF_ARP_HOOKS: HookName[] = ['INPUT', 'OUTPUT', 'FORWARD'];

export function hookName(hook: number, family?: number): HookName {
  if (family === 7 && hook === NF_BR_BROUTING) return 'BROUTING';
  if (family === 3) return NF_ARP_HOOKS[hook] ?? 'INPUT';
  return NF_INET_HOOKS[hook] ?? 'PREROUTING';
}

/** Netfilter verdicts (NF_DROP 0 ... NF_STOP 5) as the contract names them. */
export function verdictName(v: number): 'ACCEPT' | 'DROP' | 'STOLEN' | 'QUEUE' {
  switch (v) {
    case 0:
      return 'DROP';
    case 2:
      return 'STOLEN';
    case 3:
      return 'QUEUE';
    default:
      return 'ACCEPT'; // NF_ACCEPT, and NF_REPEAT / NF_STOP which let the packet on
  }
}
