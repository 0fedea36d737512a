/** The traversal model: one packet's way through the traced bridge's netns.
 * Its JSON form is the `--json` contract (issue 2): keys stay, new ones may be added. */
import type { Family, HookName, TableName } from './hooks';

export type Verdict = 'ACCEPT' | 'DROP' | 'STOLEN' | 'QUEUE';
export type EndKind = 'tx' | 'local' | 'drop' | 'unknown';

export interface Hop {
  family: Family;
  hook: HookName;
  table: TableName | null;
  verdict: Verdict | null;
  in: string | null;
  out: string | null;
  physin: string | null;
  physout: string | null;
  src: string | null;
  dst: string | null;
  observed: boolean;
  ts: number;
  /** Set where a field was deduced rather than read from the kernel. */
  inferred?: string[];
  rxHandler?: string | null;
  ttl?: number;
  cpu?: number;
  note?: string;
}

export interface TraversalEnd {
  kind: EndKind;
  dev: string | null;
  reason: string | null;
  location?: string | null;
}

export interface Traversal {
  id: number;
  ts: number;
  time: string;
  netns: number;
  src: string | null;
  dst: string | null;
  proto: string;
  summary: string;
  hops: Hop[];
  end: TraversalEnd;
  /** Events lost in the kernel, all packets, since the capture started. */
  lost: number;
  /** Events of this packet that were lost: its hops are incomplete. */
  missing: number;
}
