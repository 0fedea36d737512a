/** Kernel symbol names from a /proc/kallsyms-shaped file: read ahead in the background or on
 * first use, the same answers; a table read again after invalidate() has the new names. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Kallsyms } from '../../src/topology/kallsyms';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-kallsyms-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function table(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const LINES = [
  'ffffffff81000000 T _stext',
  'ffffffff82159760 T br_handle_frame\t[bridge]',
  'ffffffff82159a00 t br_handle_frame_finish\t[bridge]',
  'ffffffff81a00000 D some_data',
  'ffffffff81b00000 T nf_hook_slow',
];
const ASKED = [0xffffffff82159760n, 0xffffffff82159770n, 0xffffffff82159a10n, 0xffffffff81b0009cn, 0xffffffff81a00004n, 0x1000n, 0n];

describe('kallsyms', () => {
  it('names addresses the same whether read ahead or on first use', async () => {
    const file = table('a', LINES);
    const ahead = new Kallsyms(file);
    await ahead.preload();
    const onUse = new Kallsyms(file);
    expect(ASKED.map((a) => ahead.lookup(a))).toEqual(ASKED.map((a) => onUse.lookup(a)));
    expect(ASKED.map((a) => ahead.lookup(a))).toEqual([
      'br_handle_frame', 'br_handle_frame+0x10', 'br_handle_frame_finish+0x10', 'nf_hook_slow+0x9c', '_stext+0xa00004', undefined, undefined,
    ]);
  });

  it('reads the table again after invalidate(): a module loaded since has its names', async () => {
    const file = table('b', LINES.slice(0, 1));
    const k = new Kallsyms(file);
    await k.preload();
    expect(k.lookup(0xffffffff82159760n)).toBe('_stext+0x1159760');
    table('b', LINES);
    await k.invalidate();
    expect(k.lookup(0xffffffff82159760n)).toBe('br_handle_frame');
  });

  it('a lookup while the read ahead is under way reads the table itself; the late read changes nothing', async () => {
    const file = table('c', LINES);
    const k = new Kallsyms(file);
    const ahead = k.preload();
    expect(k.lookup(0xffffffff82159760n)).toBe('br_handle_frame');
    await ahead;
    expect(k.lookup(0xffffffff81b0009cn)).toBe('nf_hook_slow+0x9c');
  });

  it('reads a table larger than one read, lines cut anywhere, as one read of the whole file would', async () => {
    // ~40k symbols (~2 MB), shuffled, with data symbols, other address ranges, a line longer
    // than a read and a last line without its newline.
    const lines: string[] = [];
    const expected = new Map<bigint, string>();
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 40000; i++) {
      const addr = 0xffffffff81000000n + BigInt(i) * 0x40n;
      const name = `fn_${i}_${'x'.repeat(Math.floor(random() * 30))}`;
      const text = i % 7 !== 3;
      lines.push(`${addr.toString(16)} ${text ? (i % 2 ? 'T' : 't') : 'D'} ${name}${i % 5 === 0 ? '\t[mod]' : ''}`);
      if (text) expected.set(addr, name);
    }
    lines.push(`ffffffff81000011 D ${'y'.repeat(3 << 20)}`);
    lines.push('0000000000001000 T user_space_like');
    lines.sort(() => random() - 0.5);
    const file = path.join(dir, 'big');
    fs.writeFileSync(file, lines.join('\n'));
    const k = new Kallsyms(file);
    await k.preload();
    const onUse = new Kallsyms(file);
    const wrong: string[] = [];
    for (const [addr, name] of expected) {
      if (k.lookup(addr) !== name) wrong.push(`${addr.toString(16)}: ${k.lookup(addr)} for ${name}`);
      if (onUse.lookup(addr + 5n) !== `${name}+0x5`) wrong.push(`${addr.toString(16)}+5: ${onUse.lookup(addr + 5n)}`);
    }
    expect(wrong).toEqual([]);
    expect(k.lookup(0x1000n)).toBeUndefined();
  });
});
