/**
 * The README's exit statuses, the same for the same kind of input whatever the command or the
 * format (issue 17 items 6, 7 and 17): a partition that is not there, a truncated or corrupt
 * container, an unreadable GPT are input that is not usable, exit 2, with a message naming the file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';

function layoutImage(dir: string): string {
  mkdirSync(join(dir, 'esp'));
  writeFileSync(join(dir, 'esp', 'x'), 'x');
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({
      scheme: 'gpt',
      size: '8M',
      partitions: [
        { type: 'efi', size: '2M', contents: { fat: { from: 'esp' } } },
        { type: 'freebsd-ufs', size: '1M' },
      ],
    }),
  );
  const img = join(dir, 'disk.img');
  const b = diskmint(['build', layout, '-o', img]);
  expect(b.stderr).toBe('');
  return img;
}

describe('IMG:N where the disk has no partition N (item 17)', () => {
  it('exits 2 (the input is not usable) for fat, zfs and compare, naming the partitions it has', () => {
    const dir = tempDir();
    const img = layoutImage(dir);
    for (const args of [
      ['fat', 'ls', `${img}:9`],
      ['fat', 'cat', `${img}:9`, '/x'],
      ['zfs', 'label', `${img}:9`],
      ['compare', `${img}:9`, img],
      ['compare', img, `${img}:9`],
    ]) {
      const r = diskmint(args);
      expect(r.stderr, args.join(' ')).toContain(`${img} has no partition 9 (it has 1, 2)`);
      expect(r.status, args.join(' ')).toBe(2);
    }
  });
});
