import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskmintError, parseLayout, planImage, parseSizeSpec, layoutJsonSchema } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';

async function layoutProblems(layout: unknown, baseDir?: string): Promise<string[]> {
  try {
    await planImage(layout as never, { baseDir });
  } catch (err) {
    expect(err).toBeInstanceOf(DiskmintError);
    expect((err as DiskmintError).code).toBe('LAYOUT');
    return [...(err as DiskmintError).problems];
  }
  throw new Error('expected the layout to be refused');
}

describe('layout validation names the JSON path and the value', () => {
  it('a bad size', async () => {
    const problems = await layoutProblems({
      scheme: 'gpt',
      partitions: [
        { type: 'efi', size: '1M' },
        { type: 'efi', size: '1M' },
        { type: 'efi', size: '1M' },
        { type: 'freebsd-ufs', size: '12X' },
      ],
    });
    expect(problems).toEqual(['partitions[3].size: "12X" is not a size (use e.g. 512K, 1G, 2T, 2048s, 100%, rest)']);
  });

  it('unknown fields, wrong scheme, nested image errors with full paths', async () => {
    const problems = await layoutProblems({
      scheme: 'mbr',
      colour: 'red',
      partitions: [{ type: 'freebsd', contents: { image: { scheme: 'bsd', partitions: [{ type: '4.2BSD', size: 'x' }] } } }],
    });
    expect(problems).toContain('(root): unknown field "colour"');
    expect(problems).toContain('partitions[0].contents.image.partitions[0].size: "x" is not a size (use e.g. 512K, 1G, 2T, 2048s, 100%, rest)');
    expect(() => parseLayout({ scheme: 'zfs', partitions: [] })).toThrow(/scheme: "zfs" is invalid/);
  });

  it('hostile JSON: deep nesting is refused by path, long values are cut short in messages', async () => {
    let deep: unknown = {};
    for (let i = 0; i < 5000; i++) deep = [deep];
    const nested = await layoutProblems({ scheme: 'gpt', partitions: deep });
    expect(nested).toHaveLength(1);
    expect(nested[0]).toMatch(/^partitions(\[0\]){63}: nested more than 64 levels deep/);
    const long = await layoutProblems({
      scheme: 'gpt',
      partitions: [{ type: 'efi', size: '1M', label: ['x'.repeat(1 << 20), { a: { b: { c: 1 } } }, 3, 4, 5, 6] }],
    });
    expect(long).toEqual([`partitions[0].label: ["${'x'.repeat(57)}...",{"a":{...}},3,4,5,...] is invalid: Invalid input: expected string, received array`]);
  });

  it('type names per scheme', async () => {
    expect(await layoutProblems({ scheme: 'gpt', size: '10M', partitions: [{ type: 'freebsd-ufo', size: '1M' }] })).toEqual([
      'partitions[0].type: "freebsd-ufo" is not a GPT type (use a name such as freebsd-ufs, efi, linux-data, or a GUID)',
    ]);
    expect((await layoutProblems({ scheme: 'mbr', size: '10M', partitions: [{ type: 'nope', size: '1M' }] }))[0]).toMatch(
      /^partitions\[0\]\.type: "nope" is not an MBR type/,
    );
    expect((await layoutProblems({ scheme: 'bsd', size: '10M', partitions: [{ type: 'nope', size: '1M' }] }))[0]).toMatch(
      /^partitions\[0\]\.type: "nope" is not a BSD fstype/,
    );
  });

  it('contents larger than the partition, missing files, overlaps, out of disk', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(3 << 20, 1));
    expect(await layoutProblems({ scheme: 'gpt', size: '16M', partitions: [{ type: 'freebsd-ufs', size: '2M', contents: { file: 'big.bin' } }] }, dir)).toEqual(
      ['partitions[0].contents: "big.bin" is 3 MiB, larger than the partition (2 MiB)'],
    );
    const missing = await layoutProblems({ scheme: 'gpt', partitions: [{ type: 'efi', contents: { file: 'nope.img' } }] }, dir);
    expect(missing[0]).toMatch(/^partitions\[0\]\.contents\.file: "nope\.img" not found \(looked for .*nope\.img\)$/);
    const overlap = await layoutProblems({
      scheme: 'gpt',
      size: '16M',
      partitions: [
        { type: 'efi', size: '4M' },
        { type: 'efi', size: '4M', offset: '2M' },
      ],
    });
    expect(overlap).toEqual(['partitions[1]: overlaps partitions[0] (sectors 4096-12287 and 2048-10239)']);
    const beyond = await layoutProblems({ scheme: 'gpt', size: '4M', partitions: [{ type: 'efi', size: '4M' }] });
    expect(beyond[0]).toMatch(/^partitions\[0\]: ends at sector 10239, beyond the last usable sector 8158/);
  });

  it('alignment, rest and percent rules', async () => {
    expect(await layoutProblems({ scheme: 'gpt', align: 1000, partitions: [{ type: 'efi', size: '1M' }] })).toEqual([
      'align: 1000 is not a multiple of the sector size (512)',
    ]);
    expect(await layoutProblems({ scheme: 'gpt', partitions: [{ type: 'efi', size: 'rest' }] })).toEqual([
      'partitions[0].size: "rest" needs a fixed disk size ("size" of the layout)',
    ]);
    expect(
      await layoutProblems({
        scheme: 'gpt',
        size: '8M',
        partitions: [
          { type: 'efi', size: 'rest' },
          { type: 'efi', size: 'rest' },
        ],
      }),
    ).toContain('partitions: only one partition may use "rest"');
    expect(await layoutProblems({ scheme: 'gpt', partitions: [{ type: 'efi' }] })).toEqual([
      'partitions[0].size: missing: a partition without contents needs a size',
    ]);
  });

  it('MBR limits: four primaries, contiguous logicals, labels only on GPT', async () => {
    const five = Array.from({ length: 5 }, () => ({ type: 'linux', size: '1M' }));
    expect((await layoutProblems({ scheme: 'mbr', partitions: five }))[0]).toMatch(/^partitions: an MBR holds 4 primary partitions/);
    expect(await layoutProblems({ scheme: 'mbr', partitions: [{ type: 'linux', size: '1M', label: 'x' }] })).toEqual([
      'partitions[0].label: MBR partitions have no label; only GPT does',
    ]);
    const split = [
      { type: 'linux', size: '1M', logical: true },
      { type: 'linux', size: '1M' },
      { type: 'linux', size: '1M', logical: true },
    ];
    expect(await layoutProblems({ scheme: 'mbr', partitions: split })).toEqual([
      'partitions[1]: logical partitions must follow one another (they share one extended partition)',
    ]);
  });

  it('rest fills the disk and later partitions shift by whole alignment units', async () => {
    const { plan } = await planImage({
      scheme: 'gpt',
      size: '64M',
      partitions: [
        { type: 'efi', size: '1M' },
        { type: 'freebsd-ufs', size: 'rest' },
        { type: 'freebsd-swap', size: '8M' },
      ],
    });
    const [a, b, c] = plan.partitions;
    expect(a.startLba).toBe(2048);
    expect(b.startLba).toBe(4096);
    expect(c.startLba % 2048).toBe(0);
    expect(c.startLba).toBe(b.startLba + b.sectors);
    expect(c.startLba + c.sectors - 1).toBeLessThanOrEqual(plan.totalSectors - 34);
    expect(plan.totalSectors - 34 - (c.startLba + c.sectors - 1)).toBeLessThan(2048);
  });

  it('percent sizes and auto disk size', async () => {
    const { plan } = await planImage({ scheme: 'gpt', size: '100M', partitions: [{ type: 'efi', size: '50%' }] });
    expect(plan.partitions[0].sectors).toBe(Math.floor((100 * 2048 * 0.5) / 2048) * 2048);
    const auto = await planImage({ scheme: 'gpt', partitions: [{ type: 'efi', size: '3M' }] });
    expect(auto.plan.totalSectors).toBe(5 * 2048); // 1 MiB lead + 3 MiB + backup tables rounded up to 1 MiB
  });
});

describe('sizes', () => {
  it('parses units, sectors, percentages and keywords', () => {
    expect(parseSizeSpec('512K')).toEqual({ kind: 'bytes', bytes: 512 * 1024 });
    expect(parseSizeSpec('1GiB')).toEqual({ kind: 'bytes', bytes: 2 ** 30 });
    expect(parseSizeSpec('1.5M')).toEqual({ kind: 'bytes', bytes: 1.5 * 2 ** 20 });
    expect(parseSizeSpec('2T')).toEqual({ kind: 'bytes', bytes: 2 * 2 ** 40 });
    expect(parseSizeSpec('2048s')).toEqual({ kind: 'sectors', sectors: 2048 });
    expect(parseSizeSpec('25%')).toEqual({ kind: 'percent', percent: 25 });
    expect(parseSizeSpec('rest')).toEqual({ kind: 'rest' });
    expect(parseSizeSpec(4096)).toEqual({ kind: 'bytes', bytes: 4096 });
    for (const bad of ['12X', '', '-1', '0%', '101%', '1.5s', 'K']) expect(parseSizeSpec(bad)).toBeUndefined();
  });

  it('the published JSON Schema carries the size pattern and recursion', () => {
    const schema = JSON.stringify(layoutJsonSchema());
    expect(schema).toContain('"pattern"');
    expect(schema).toContain('freebsd-ufs');
    expect(schema).toMatch(/"\$ref"/);
  });
});

describe('the committed layout.schema.json', () => {
  it('is what `diskmint schema` prints (regenerate with: npx diskmint schema -o layout.schema.json)', async () => {
    const { readFileSync } = await import('node:fs');
    const committed = JSON.parse(readFileSync(new URL('../../layout.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(layoutJsonSchema())));
  });

  it('the demo layout validates', async () => {
    const { readFileSync } = await import('node:fs');
    expect(() => parseLayout(JSON.parse(readFileSync(new URL('../../fixtures/demo/layout.json', import.meta.url), 'utf8')))).not.toThrow();
  });
});
