/**
 * NanoBSD MBR slots on a 4096-byte-sector image: the slice table says nothing of its sector
 * size, so slot status, write and activate take the one the probe detected (code slices whose
 * BSD labels sit where 4096-byte sectors put them), not 512.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, inspectImage } from '../../src/index.js';
import { slotActivate, slotBootonce, slotConfirm, slotStatus, slotWrite } from '../../src/ops/slots/slots.js';
import { slotSimulate } from '../../src/ops/slots/simulate.js';
import type { Layout, PartitionSpec } from '../../src/layout/schema.js';
import { tempDir } from '../helpers/golden.js';

let dir = '';
const OS_BYTES = 256 * 1024;

/** A code slice as the nanobsd-mbr preset makes it: a BSD label whose `a` partition holds the OS. */
function codeSlice(os?: string): PartitionSpec {
  return {
    type: 'freebsd',
    size: '2M',
    contents: { image: { scheme: 'bsd', align: '4K', partitions: [{ type: '4.2BSD', size: 'rest', ...(os ? { contents: { file: os } } : {}) }] } },
  };
}

beforeAll(() => {
  dir = tempDir('diskmint-slots-4k-');
  writeFileSync(join(dir, 'os-a'), Buffer.alloc(OS_BYTES, 0xa1));
  writeFileSync(join(dir, 'os-b'), Buffer.alloc(OS_BYTES, 0xb2));
});

describe('nanobsd-mbr style image with 4096-byte sectors', () => {
  it('status finds both code slices at 4096-byte offsets; write and activate use them', async () => {
    const layout: Layout = {
      scheme: 'mbr',
      sectorSize: 4096,
      size: '8M',
      align: '64K',
      partitions: [{ ...codeSlice('os-a'), active: true }, codeSlice(), { type: 'freebsd', size: '256K' }],
    };
    const img = join(dir, 'mbr4k.img');
    await buildImage(layout, { output: img, baseDir: dir });
    const t = (await inspectImage(img)).table!;
    expect([t.scheme, t.sectorSize]).toEqual(['mbr', 4096]);
    const nested = t.partitions.slice(0, 2).map((p) => p.nested!);
    expect(nested.map((n) => n.sectorSize)).toEqual([4096, 4096]);

    const s = await slotStatus(img);
    expect(s.scheme).toBe('mbr');
    expect(s.slots.map((x) => [x.index, x.label, x.isDefault])).toEqual([
      [1, 's1a', true],
      [2, 's2a', false],
    ]);
    // Each slot's data: the slice start plus the `a` partition's offset, in 4096-byte sectors.
    const expected = t.partitions.slice(0, 2).map((p) => (p.firstLba + p.nested!.partitions.find((q) => q.label === 'a')!.firstLba) * 4096);
    expect(s.slots.map((x) => x.firstLba * 4096)).toEqual(expected);
    expect(s.slots.map((x) => x.sizeBytes)).toEqual(t.partitions.slice(0, 2).map((p) => p.nested!.partitions.find((q) => q.label === 'a')!.sizeBytes));
    const bytes = readFileSync(img);
    expect(bytes.subarray(expected[0], expected[0] + OS_BYTES).every((b) => b === 0xa1)).toBe(true);

    await expect(slotWrite(img, 1, join(dir, 'os-b'))).rejects.toThrow(/active/);
    await slotWrite(img, 2, join(dir, 'os-b'));
    const after = readFileSync(img);
    expect(after.subarray(expected[1], expected[1] + OS_BYTES).every((b) => b === 0xb2)).toBe(true);
    // Nothing else changed: the write went into slot 2's data only.
    after.fill(0, expected[1], expected[1] + OS_BYTES);
    bytes.fill(0, expected[1], expected[1] + OS_BYTES);
    expect(Buffer.compare(after, bytes)).toBe(0);

    await slotActivate(img, 2);
    const activated = await slotStatus(img);
    expect(activated.slots.map((x) => [x.index, x.isDefault, x.attributes])).toEqual([
      [1, false, []],
      [2, true, ['active']],
    ]);
    expect(activated.next).toMatchObject({ index: 2, reason: 'slice 2 is marked active' });
    expect(activated.slots[0].sha256).not.toBe(activated.slots[1].sha256);
    // The active flag lives in the MBR's first 512 bytes, whatever the sector size.
    const mbr = readFileSync(img).subarray(446, 446 + 64);
    expect([mbr[0], mbr[16], mbr[32]]).toEqual([0x00, 0x80, 0x00]);

    // No one-time boot on MBR: confirm says so, bootonce and simulate refuse, nothing is written.
    const before = readFileSync(img);
    expect(await slotConfirm(img)).toEqual(['MBR images have no one-time boot state to confirm']);
    await expect(slotBootonce(img, 1)).rejects.toThrow(/no one-time boot/);
    await expect(slotWrite(img, 1, join(dir, 'os-b'), { bootonce: true, force: true })).rejects.toThrow(/no one-time boot/);
    await expect(slotSimulate(img, ['ok'])).rejects.toThrow(/no one-time boot/);
    expect(Buffer.compare(readFileSync(img), before)).toBe(0);
  });
});
