/** The README's JSON lines contract: every key the CLI prints is one the README names. */
import * as fs from 'fs';
import * as path from 'path';

let documented: Set<string> | undefined;

/** The quoted words of the README's `### JSON lines` block. */
export function documentedKeys(): Set<string> {
  if (documented) return documented;
  const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### JSON lines'));
  const block = section.slice(section.indexOf('```') + 3, section.indexOf('```', section.indexOf('```') + 3));
  documented = new Set([...block.matchAll(/"([A-Za-z][A-Za-z0-9]*)"/g)].map((m) => m[1]));
  return documented;
}

/** Keys of a printed traversal (at any depth) the README does not name; `devices` is keyed by device name. */
export function undocumentedKeys(value: unknown, where = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => undocumentedKeys(v, where));
  if (!value || typeof value !== 'object') return [];
  const keys = documentedKeys();
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    if (where.endsWith('.devices')) return undocumentedKeys(v, `${where}.*`);
    return [...(keys.has(k) ? [] : [`${where}.${k}`]), ...undocumentedKeys(v, `${where}.${k}`)];
  });
}
