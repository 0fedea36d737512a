/** JSON lines: one Traversal per line, the `--json` contract. */
import type { Traversal } from '../model/traversal';

export function formatJsonLine(t: Traversal): string {
  return JSON.stringify(t);
}
