/** REJECT told apart from DROP: the kernel answers a rejected packet with an ICMP
 * error that it sends from inside the rule, before it frees the packet. That
 * error is a traversal of its own; the two are linked both ways. */
import type { Traversal } from './traversal';

/** Within this long of the rejecting hop (kernel ns): the error is sent synchronously. */
const WINDOW_NS = 2e6;

/** The hop where a dropped packet died, and the time before it (the previous hop). */
function dropPoint(t: Traversal): { at: number; after: number; src: string | null } | undefined {
  if (t.end.kind !== 'drop') return undefined;
  const i = t.hops.findIndex((h) => h.verdict === 'DROP' || h.verdict === 'REJECT');
  if (i < 0) return undefined;
  return { at: t.hops[i].ts, after: i > 0 ? t.hops[i - 1].ts : t.ts, src: t.hops[i].src ?? t.src };
}

/** Links each dropped packet of `fresh` to the ICMP error answering it (in `fresh` or
 * `recent`), and marks its drop a REJECT; a rule tracer that named a `reject` rule
 * marks it so even when the error itself was not traced. */
export function linkRejects(fresh: Traversal[], recent: Traversal[]): void {
  const errors = [...recent, ...fresh].filter((t) => t.icmpError && t.answers === undefined);
  for (const t of fresh) {
    const p = dropPoint(t);
    if (!p) continue;
    const hop = t.hops.find((h) => h.verdict === 'DROP');
    const error = errors.find((e) => e.answers === undefined && e.dst === p.src && e.ts >= p.after - WINDOW_NS && e.ts <= p.at + WINDOW_NS);
    const byRule = hop?.rules?.some((r) => r.verdict === 'drop' && /\breject\b/.test(r.text));
    if (!error && !byRule) continue;
    if (hop) hop.verdict = 'REJECT';
    t.end.rejected = true;
    if (error) {
      t.answeredBy = error.id;
      error.answers = t.id;
    }
  }
}
