import type { Hop, Traversal } from '../../src/model/traversal';

export const label = (h: Hop) => (h.family === 'netdev' ? h.hook : `${h.family} ${h.hook} ${h.table}`);

/** Is `wanted` a subsequence of the traversal's hop labels (same order, gaps allowed)? */
export function hasInOrder(t: Traversal, wanted: string[]): boolean {
  let i = 0;
  for (const h of t.hops) if (i < wanted.length && label(h) === wanted[i]) i++;
  return i === wanted.length;
}

export function hop(t: Traversal, wanted: string): Hop {
  const h = t.hops.find((x) => label(x) === wanted);
  if (!h) throw new Error(`no hop ${wanted} in ${t.hops.map(label).join(' -> ')}`);
  return h;
}

export function findIcmp(ts: Traversal[], kind: 'request' | 'reply', from: string): Traversal | undefined {
  return ts.find((t) => t.proto === 'icmp' && t.summary.includes(`echo ${kind}`) && t.src === from);
}
