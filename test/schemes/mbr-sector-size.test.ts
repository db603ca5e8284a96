/**
 * An MBR does not record its sector size: info and verify read it both ways and keep the
 * reading whose partitions start at recognisable contents (a FAT boot sector, a BSD label).
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, inspectImage, verifyImage, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';

function layout(sectorSize: 512 | 4096): Layout {
  return {
    scheme: 'mbr',
    sectorSize,
    size: '64M',
    partitions: [
      { type: 'fat16', size: '24M', active: true, contents: { fat: { from: 'boot', label: 'BOOT' } } },
      {
        type: 'freebsd',
        size: '16M',
        contents: {
          image: {
            scheme: 'bsd',
            partitions: [
              { type: '4.2BSD', size: '8M' },
              { type: 'swap', size: '4M' },
            ],
          },
        },
      },
      { type: 'linux', size: '8M' },
    ],
  };
}

describe('MBR sector size', () => {
  for (const sectorSize of [512, 4096] as const) {
    it(`info and verify find ${sectorSize}-byte sectors without being told`, async () => {
      const dir = tempDir();
      mkdirSync(join(dir, 'boot'));
      writeFileSync(join(dir, 'boot', 'config.txt'), 'hello\n');
      const layoutPath = join(dir, 'layout.json');
      writeFileSync(layoutPath, JSON.stringify(layout(sectorSize)));
      const img = join(dir, 'disk.img');
      await buildImage(layoutPath, { output: img });

      const info = await inspectImage(img);
      expect(info.table?.scheme).toBe('mbr');
      expect(info.table?.sectorSize).toBe(sectorSize);
      const [fat, slice, linux] = info.table!.partitions;
      expect(fat.sizeBytes).toBe(24 << 20);
      expect(fat.filesystem?.kind).toMatch(/^fat(12|16)$/);
      expect(slice.sizeBytes).toBe(16 << 20);
      expect(slice.nested?.scheme).toBe('bsd');
      expect(slice.nested?.partitions.map((p) => p.sizeBytes)).toContain(8 << 20);
      expect(linux.sizeBytes).toBe(8 << 20);

      const verdict = await verifyImage(img, { expect: layoutPath });
      expect(
        verdict.findings.filter((f) => f.severity === 'error'),
        JSON.stringify(verdict.findings),
      ).toEqual([]);
      expect(verdict.ok).toBe(true);
      // Told the wrong size, the reading is different: the option still wins.
      const wrong = await inspectImage(img, { sectorSize: sectorSize === 512 ? 4096 : 512 });
      expect(wrong.table?.sectorSize).not.toBe(sectorSize);
    });
  }
});
