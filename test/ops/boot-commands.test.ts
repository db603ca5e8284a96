/**
 * `boot status | update | confirm | simulate` on images built with "bootcode": "diskmint-fallback"
 * (bootcode/SELECTOR.md): the cycle on raw, qcow2 and VHDX, refusals that change
 * nothing, and sgdisk's view of the results.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bootConfirm, bootSimulate, bootStatus, bootUpdate, convertImage, installSelector } from '../../src/index.js';
import { planImage } from '../../src/ops/build.js';
import { readBootStages } from '../../src/ops/boot/read.js';
import { openDisk } from '../../src/io/open-disk.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';
import { buildFallbackImage, fallbackLayout, stageFile } from '../helpers/boot-commands-image.js';
import { gzipSync } from 'node:zlib';

let dir = '';
let stageA = '';
let stageB = '';

beforeAll(() => {
  dir = tempDir('diskmint-boot-');
  stageA = stageFile(dir, 'a.bin', 40_000, 1);
  stageB = stageFile(dir, 'b.bin', 50_000, 2);
});

const summary = async (img: string) => {
  const s = await bootStatus(img);
  return { next: s.next.index, stages: s.stages.map((x) => `${x.index}:${x.attributes}:${x.check}${x.isDefault ? '*' : ''}`) };
};

describe('a fresh image', () => {
  it('has the selector installed, both stages recorded, and boots the first', async () => {
    const img = await buildFallbackImage(dir, stageA, 'fresh.img');
    const s = await bootStatus(img);
    expect(s.selector).toEqual({ installed: true, partition: 4, missing: [] });
    expect(s.stages.map((x) => x.label)).toEqual(['gptboot0', 'gptboot1']);
    expect(s.stages.map((x) => x.record?.length)).toEqual([40_000, 40_000]);
    expect(s.next.index).toBe(1);
    const disk = readFileSync(img);
    const code = readFileSync(join(new URL('../../bootcode', import.meta.url).pathname, 'fallback-mbr.bin'));
    expect(Buffer.compare(disk.subarray(0, 440), code.subarray(0, 440))).toBe(0);
    expect(disk.readUInt16LE(510)).toBe(0xaa55);
  });

  it('is deterministic, sgdisk finds it sound, and the selector partition holds the table and stage2', async () => {
    const one = readFileSync(await buildFallbackImage(dir, stageA, 'det1.img'));
    const two = readFileSync(await buildFallbackImage(dir, stageA, 'det2.img'));
    expect(Buffer.compare(one, two)).toBe(0);
    const img = join(dir, 'det1.img');
    if (requirePeer('sgdisk', 'gdisk')) {
      const v = runPeer('sgdisk', ['-v', img]);
      expect(v.out).toMatch(/No problems found/);
      expect(runPeer('sgdisk', ['-i', '4', img]).out).toMatch(/21686148-6449-6E6F-744E-656564454649[\s\S]*Partition name: 'selector'/);
    }
    const { reader } = await openDisk(img);
    try {
      const view = await readBootStages(reader);
      expect(view.selector.table!.map((r) => r.partitionGuid)).toEqual(view.stages.map((s) => s.guid));
      const bootcode = new URL('../../bootcode', import.meta.url).pathname;
      const stage2 = readFileSync(join(bootcode, 'fallback-stage2.bin'));
      expect(Buffer.compare(Buffer.from(await reader.read(view.selector.partition!.offset + 512, stage2.length)), stage2)).toBe(0);
    } finally {
      await reader.close();
    }
  });

  it('the nanobsd preset takes --boot diskmint-fallback', async () => {
    const { presetLayoutChecked } = await import('../../src/layout/presets.js');
    const os = join(dir, 'os.ufs');
    writeFileSync(os, Buffer.alloc(65536, 1));
    const layout = await presetLayoutChecked('nanobsd', { boot: 'diskmint-fallback', bootStage: stageA, os, size: '3G', data: 'none' });
    const img = join(dir, 'preset.img');
    const { buildImage } = await import('../../src/index.js');
    await buildImage(layout, { output: img });
    const s = await bootStatus(img, { hash: false });
    expect(s.selector.installed).toBe(true);
    expect(s.stages.map((x) => `${x.label}:${x.check}`)).toEqual(['gptboot0:ok', 'gptboot1:ok']);
  });

  it('a layout without a freebsd-boot partition, or not GPT, is refused', async () => {
    const noStage = fallbackLayout(stageA, { partitions: [{ type: 'freebsd-ufs', size: '1M' }] });
    await expect(planImage(noStage)).rejects.toThrow(/at least one freebsd-boot partition/);
    await expect(planImage({ ...noStage, scheme: 'mbr', partitions: [{ type: 'freebsd', size: '1M' }] })).rejects.toThrow(/chooses among freebsd-boot GPT/);
  });
});

for (const format of ['raw', 'qcow2', 'vhdx'] as const) {
  describe(`the issue's cycle, ${format}`, () => {
    it('update --bootonce, fail, fall back; update, confirm, stay; damage falls back', async () => {
      const raw = await buildFallbackImage(dir, stageA, `cycle-${format}.img`);
      const img = format === 'raw' ? raw : join(dir, `cycle.${format}`);
      if (format !== 'raw') await convertImage(raw, img, { format });
      expect(await summary(img)).toEqual({ next: 1, stages: ['1:-:ok*', '2:-:ok'] });

      const u = await bootUpdate(img, { from: stageB, bootonce: true });
      expect(u).toMatchObject({ stage: 2, label: 'gptboot1', bytes: 50_000, bootonce: true });
      expect(await summary(img)).toEqual({ next: 2, stages: ['1:-:ok*', '2:bootme,bootonce:ok'] });
      const sim = await bootSimulate(img, ['fail', 'ok'], { confirm: false });
      expect(sim.steps.map((s) => s.choice.chosen)).toEqual([2, 1]);
      expect(sim.steps[1].choice.markedStale).toEqual([2]);

      // The selector's own writes at boot (step 5, then step 2 on the next power-up), as simulate predicts.
      await applySelectorBoot(img);
      expect(await summary(img)).toEqual({ next: 1, stages: ['1:-:ok*', '2:bootonce:ok'] });
      await applySelectorBoot(img);
      expect(await summary(img)).toEqual({ next: 1, stages: ['1:-:ok*', '2:bootfailed:ok'] });
      expect((await bootConfirm(img)).messages).toEqual(['Boot stage gptboot1 (p2) failed.']);

      await bootUpdate(img, { from: stageB, bootonce: true });
      await applySelectorBoot(img); // B runs
      const c = await bootConfirm(img);
      expect(c.confirmed).toBe(2);
      expect(await summary(img)).toEqual({ next: 2, stages: ['1:-:ok', '2:bootme:ok*'] });

      // The next update goes into gptboot0, the one that is not the default now.
      expect((await bootUpdate(img, { from: stageA })).stage).toBe(1);
      if (format === 'raw') {
        // Stage B damaged: the selector skips it and reaches A.
        const bytes = readFileSync(img);
        const b = (await bootStatus(img)).stages[1];
        expect(b.index).toBe(2);
        const at = await stageOffset(img, 2);
        bytes.fill(0xee, at + 100, at + 200);
        writeFileSync(img, bytes);
        expect(await summary(img)).toEqual({ next: 1, stages: ['1:-:ok*', '2:bootme:mismatch'] });
      }
      if (requirePeer('sgdisk', 'gdisk') && format === 'raw') {
        const v = runPeer('sgdisk', ['-v', img]);
        expect(v.out).toMatch(/No problems found/);
      }
    });
  });
}

/** What the selector writes at power-up (stage-choice's writes), applied through bootSimulate's model. */
async function applySelectorBoot(img: string): Promise<void> {
  const { openImageEditor } = await import('../../src/io/image-editor.js');
  const { writeGptAttributes } = await import('../../src/schemes/gpt/edit.js');
  const sim = await bootSimulate(img, ['crash']);
  const editor = await openImageEditor(img);
  try {
    const view = await readBootStages(editor.disk);
    await writeGptAttributes(editor, view.gpt, new Map(sim.steps[0].after.map((e) => [e.index, e.attributes])));
    await editor.commit();
  } finally {
    await editor.close();
  }
}

async function stageOffset(img: string, index: number): Promise<number> {
  const { reader } = await openDisk(img);
  try {
    return (await readBootStages(reader)).stages.find((s) => s.index === index)!.offset;
  } finally {
    await reader.close();
  }
}

describe('refusals change nothing', () => {
  it('a stage larger than the partition or than 558,080 bytes, an empty one, a compressed image, one stage only', async () => {
    const img = await buildFallbackImage(dir, stageA, 'refuse.img');
    const before = readFileSync(img);
    await expect(bootUpdate(img, { from: stageFile(dir, 'big.bin', 200_000, 3) })).rejects.toThrow(/larger than freebsd-boot partition (\S+ \()?p2\b/);
    await expect(bootUpdate(img, { from: stageFile(dir, 'huge.bin', 558_081, 3) })).rejects.toThrow(/at most 558080 bytes/);
    writeFileSync(join(dir, 'empty.bin'), '');
    await expect(bootUpdate(img, { from: join(dir, 'empty.bin') })).rejects.toThrow(/empty/);
    expect(Buffer.compare(readFileSync(img), before)).toBe(0);
    const gz = join(dir, 'refuse.img.gz');
    writeFileSync(gz, gzipSync(before));
    await expect(bootUpdate(gz, { from: stageB })).rejects.toThrow(/diskmint convert/);
    const one = join(dir, 'one.img');
    const { buildImage } = await import('../../src/index.js');
    await buildImage(fallbackLayout(stageA, { partitions: [{ type: 'freebsd-boot', size: '128K', contents: { file: stageA } }] }), { output: one });
    await expect(bootUpdate(one, { from: stageB })).rejects.toThrow(/needs a second one/);
  });

  it('installSelector records the stages as they are and installs the code', async () => {
    const { buildImage } = await import('../../src/index.js');
    const img = join(dir, 'plain.img');
    await buildImage(
      fallbackLayout(stageA, {
        bootcode: undefined,
        partitions: [
          { type: 'freebsd-boot', size: '128K', contents: { file: stageA } },
          { type: 'freebsd-boot', size: '128K' },
          { type: 'bios-boot', label: 'selector', size: '64K' },
        ],
      }),
      { output: img },
    );
    expect((await bootStatus(img)).selector.installed).toBe(false);
    expect(await installSelector(img)).toEqual({ selectorPartition: 3, recorded: [1] });
    const s = await bootStatus(img);
    expect(s.selector.installed).toBe(true);
    expect(s.stages.map((x) => x.check)).toEqual(['ok', 'empty']);
    expect(s.next.index).toBe(1);
  });
});
