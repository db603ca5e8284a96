/**
 * Whole-pipeline robustness: files that start like every container diskmint reads (and carry
 * MBR/GPT/VHD signatures) but hold garbage go through info, verify --boot, slot status and
 * convert; only typed errors may come out, never a crash or a hang.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { convertImage, DiskmintError, FormatError, inspectImage, verifyImage } from '../../src/index.js';
import { slotStatus } from '../../src/ops/slots/slots.js';
import { tempDir } from '../helpers/golden.js';

const MAGICS = [
  Buffer.from('QFI\xfb', 'latin1'),
  Buffer.from('KDMV'),
  Buffer.from('vhdxfile'),
  Buffer.from('# Disk DescriptorFile\ncreateType="monolithicSparse"\nRW 100 SPARSE "x.vmdk"\n'),
  Buffer.alloc(0),
];

it('garbage behind every magic gives typed errors only', async () => {
  const dir = tempDir();
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...MAGICS),
      fc.uint8Array({ minLength: 1024, maxLength: 12 * 1024, size: 'max' }),
      fc.boolean(),
      fc.boolean(),
      async (magic, random, vhdFooter, gpt) => {
        const body = Buffer.from(random.subarray(0, random.length - (random.length % 512)));
        magic.copy(body, 0);
        if (vhdFooter) Buffer.from('conectix').copy(body, body.length - 512);
        if (gpt) {
          body[510] = 0x55;
          body[511] = 0xaa;
          Buffer.from('EFI PART').copy(body, 512);
        }
        const path = join(dir, `f${n++}.img`);
        writeFileSync(path, body);
        const steps = [
          () => inspectImage(path),
          () => verifyImage(path, { boot: true }),
          () => slotStatus(path),
          () => convertImage(path, join(dir, `o${n}.qcow2`)),
        ];
        for (const step of steps) {
          try {
            await step();
          } catch (err) {
            expect(err instanceof DiskmintError || err instanceof FormatError, String((err as Error)?.stack)).toBe(true);
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});
