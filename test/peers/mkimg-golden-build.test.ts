/**
 * diskmint's builder against FreeBSD mkimg's own golden images: the same recipe
 * (usr.bin/mkimg/tests/mkimg_test.sh, see fixtures/mkimg/README.md) expressed as
 * a layout must give the same bytes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage } from '../../src/index.js';
import { decodeGolden, tempDir, writeMkimgInputs } from '../helpers/golden.js';

const ID = (b: string) => `${b.repeat(4)}-${b.repeat(2)}-${b.repeat(2)}-${b.repeat(2)}-${b.repeat(6)}`;

function firstDifference(a: Buffer, b: Buffer): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `first difference at byte 0x${i.toString(16)}: ${a[i]} vs ${b[i]}`;
  return a.length === b.length ? 'identical' : `lengths ${a.length} vs ${b.length}`;
}

function bsdSlice(inputs: ReturnType<typeof writeMkimgInputs>, extra: Record<string, unknown> = {}) {
  return {
    scheme: 'bsd' as const,
    bootcode: inputs.boot8k,
    ...extra,
    partitions: [
      { type: '4.2BSD', contents: { file: inputs.data4m } },
      { type: 'swap', size: '128K' },
    ],
  };
}

describe('mkimg goldens rebuilt from layouts', () => {
  it('img-1x1-512-gpt.raw: GPT with 4 entries, pmbr-style boot code, fixed GUIDs', async () => {
    const dir = tempDir();
    const inputs = writeMkimgInputs(dir);
    const golden = readFileSync(decodeGolden('img-1x1-512-gpt.raw.hex', dir));
    const out = join(dir, 'ours.img');
    await buildImage(
      {
        scheme: 'gpt',
        align: '1s',
        entries: 4,
        bootcode: inputs.boot512,
        diskGuid: ID('03'),
        partitions: [
          { type: 'freebsd-ufs', uuid: ID('01'), contents: { file: inputs.data4m } },
          { type: 'freebsd-swap', uuid: ID('02'), size: '128K' },
        ],
      },
      { output: out },
    );
    const ours = readFileSync(out);
    expect(firstDifference(ours, golden)).toBe('identical');
  });

  it('img-1x1-512-mbr.raw: MBR slice holding a BSD label, 1x1 geometry', async () => {
    const dir = tempDir();
    const inputs = writeMkimgInputs(dir);
    const golden = readFileSync(decodeGolden('img-1x1-512-mbr.raw.hex', dir));
    const out = join(dir, 'ours.img');
    await buildImage(
      {
        scheme: 'mbr',
        align: '1s',
        bootcode: inputs.boot512,
        geometry: { heads: 1, sectors: 1 },
        partitions: [{ type: 'freebsd', active: true, contents: { image: bsdSlice(inputs, { geometry: { heads: 1, sectors: 1 } }) } }],
      },
      { output: out },
    );
    expect(firstDifference(readFileSync(out), golden)).toBe('identical');
  });

  it('img-63x255-4096-mbr.raw: slice at sector 63, one-cylinder BSD slice', async () => {
    const dir = tempDir();
    const inputs = writeMkimgInputs(dir);
    const golden = readFileSync(decodeGolden('img-63x255-4096-mbr.raw.hex', dir));
    const out = join(dir, 'ours.img');
    const geometry = { heads: 255, sectors: 63 };
    await buildImage(
      {
        scheme: 'mbr',
        align: '63s',
        bootcode: inputs.boot512,
        geometry,
        partitions: [{ type: 'freebsd', active: true, contents: { image: bsdSlice(inputs, { geometry, size: '16065s', align: '4K' }) } }],
      },
      { output: out },
    );
    expect(firstDifference(readFileSync(out), golden)).toBe('identical');
  });
});
