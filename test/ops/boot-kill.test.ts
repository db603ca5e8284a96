/**
 * `boot update --bootonce` stopped at every write (the editor's beforeWrite hook throws before
 * write N, so writes 1..N-1 landed, as after a kill between two writes), on raw, qcow2 and VHDX:
 * the GPT still reads, the selector's model still boots a stage whose bytes are a whole stage
 * (the old one or the new one, never a torn one), and a re-run reaches the new state.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBootStage } from '../../formats/boot/stage-choice.js';
import { bootStatus, bootUpdate, convertImage } from '../../src/index.js';
import { openDisk } from '../../src/io/open-disk.js';
import { checksOf, loadedBytes, readBootStages } from '../../src/ops/boot/read.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';
import { buildFallbackImage, stageFile, useSelectorCode } from '../helpers/fallback-image.js';

class Stop extends Error {}

let dir = '';
let stageA: Uint8Array;
let stageB = '';
let raw = '';

beforeAll(async () => {
  useSelectorCode();
  dir = tempDir('diskmint-boot-kill-');
  const a = stageFile(dir, 'a.bin', 40_000, 1);
  stageA = readFileSync(a);
  stageB = stageFile(dir, 'b.bin', 50_000, 2);
  raw = await buildFallbackImage(dir, a, 'base.img');
});

const startsWith = (bytes: Uint8Array, prefix: Uint8Array) => bytes.length >= prefix.length && Buffer.compare(bytes.subarray(0, prefix.length), prefix) === 0;

/** The stage the model boots, and whether its bytes are a whole stage (A or B). */
async function bootsWholeStage(img: string, b: Uint8Array): Promise<{ chosen?: number; whole: boolean }> {
  const { reader } = await openDisk(img);
  try {
    const view = await readBootStages(reader);
    const choice = chooseBootStage(view.entries, checksOf(view));
    const s = view.stages.find((x) => x.index === choice.chosen);
    if (!s) return { whole: false };
    const bytes = await loadedBytes(reader, s.offset, s.sizeBytes);
    return { chosen: s.index, whole: startsWith(bytes, stageA) || startsWith(bytes, b) };
  } finally {
    await reader.close();
  }
}

for (const format of ['raw', 'qcow2', 'vhdx'] as const) {
  describe(`boot update --bootonce stopped at every write, ${format}`, () => {
    it('always leaves a whole stage to boot, and a re-run finishes', async () => {
      const base = format === 'raw' ? raw : join(dir, `base.${format}`);
      if (format !== 'raw') await convertImage(raw, base, { format });
      const b = readFileSync(stageB);
      let total = 0;
      const counted = join(dir, `count.${format}`);
      copyFileSync(base, counted);
      await bootUpdate(counted, { from: stageB, bootonce: true, beforeWrite: (n) => void (total = n) });
      expect(total).toBeGreaterThan(4); // table, stage, zeros, two GPT copies at least
      for (let n = 1; n <= total; n++) {
        const img = join(dir, `stop-${n}.${format}`);
        copyFileSync(base, img);
        await expect(
          bootUpdate(img, {
            from: stageB,
            bootonce: true,
            beforeWrite: (k) => {
              if (k === n) throw new Stop(`stopped before write ${n}`);
            },
          }),
        ).rejects.toBeInstanceOf(Stop);
        const r = await bootsWholeStage(img, b);
        expect(r, `stopped before write ${n} of ${total}`).toMatchObject({ whole: true });
        if (format === 'qcow2' && requirePeer('qemu-img', 'qemu-utils')) {
          const check = runPeer('qemu-img', ['check', img]);
          expect(check.status === 0 || check.status === 3, check.out).toBe(true); // 3: leaked clusters only
        }
        await bootUpdate(img, { from: stageB, bootonce: true });
        const s = await bootStatus(img, { hash: false });
        expect(s.stages.map((x) => `${x.attributes}:${x.check}`)).toEqual(['-:ok', 'bootme,bootonce:ok']);
        expect(s.next.index).toBe(2);
      }
    });
  });
}
