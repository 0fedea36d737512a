/** The hook catalog: netfilter families, hooks, the standard table priorities
 * and where the `hooks` backend places its probes. The BPF side only knows
 * numbers; names are given here, once. */

export type Family = 'bridge' | 'ipv4' | 'ipv6' | 'arp' | 'netdev';
export type HookName = 'RX' | 'BROUTING' | 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING' | 'TX';
export type TableName = 'raw' | 'mangle' | 'nat' | 'filter' | 'security' | 'broute' | 'conntrack';

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

/** NF_INET_* and NF_BR_* share numbers 0-4; the bridge family adds BROUTING. */
export function hookName(hook: number, family?: number): HookName {
  if (family === 7 && hook === NF_BR_BROUTING) return 'BROUTING';
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

const INT_MIN = -2147483648;

/** Probe slots, numbered as enum bn_nf_slot in bpf/events.h. Each probe sits
 * one above its table's standard priority, so reaching it means the table
 * let the packet through. */
export interface Slot {
  id: number;
  table: TableName | null;   // null: the hook's entry, before any table
  priority: number;          // the table's standard priority (NF_IP_PRI_*)
  hooks: HookName[];         // where iptables registers that table
}

export const SLOTS: Slot[] = [
  { id: 0, table: null, priority: INT_MIN, hooks: NF_INET_HOOKS },
  { id: 1, table: 'raw', priority: -300, hooks: ['PREROUTING', 'OUTPUT'] },
  { id: 2, table: 'conntrack', priority: -200, hooks: ['PREROUTING', 'OUTPUT'] },
  { id: 3, table: 'mangle', priority: -150, hooks: NF_INET_HOOKS },
  { id: 4, table: 'nat', priority: -100, hooks: ['PREROUTING', 'OUTPUT'] },
  { id: 5, table: 'filter', priority: 0, hooks: ['INPUT', 'FORWARD', 'OUTPUT'] },
  { id: 6, table: 'security', priority: 50, hooks: ['INPUT', 'FORWARD', 'OUTPUT'] },
  { id: 7, table: 'nat', priority: 100, hooks: ['INPUT', 'POSTROUTING'] },
];

export function slotById(id: number): Slot | undefined {
  return SLOTS[id];
}

/** The slots present at one hook, in priority order. */
export function slotsAt(hook: HookName): Slot[] {
  return SLOTS.filter((s) => s.hooks.includes(hook)).sort((a, b) => a.priority - b.priority);
}

/** The table a packet was inside when it stopped after reaching `lastSlot`:
 * the next probed table at that hook, or null when no standard table follows. */
export function tableAfter(hook: HookName, lastSlot: number): TableName | null {
  const slots = slotsAt(hook);
  const at = slots.findIndex((s) => s.id === lastSlot);
  return at >= 0 && at + 1 < slots.length ? slots[at + 1].table : null;
}

export interface Attachment {
  family: number;
  hook: number;
  slot: number;
  priority: number;
}

/** Every netfilter link the `hooks` backend creates: each slot at each of its
 * hooks, for IPv4 and IPv6. */
export function netfilterAttachments(): Attachment[] {
  const out: Attachment[] = [];
  for (const family of [NFPROTO.ipv4, NFPROTO.ipv6]) {
    for (const slot of SLOTS) {
      for (const hook of slot.hooks) {
        out.push({ family, hook: NF_INET_HOOKS.indexOf(hook), slot: slot.id, priority: slot.priority + 1 });
      }
    }
  }
  return out;
}
