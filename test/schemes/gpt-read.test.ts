/**
 * The one GPT reader (src/schemes/gpt/read.ts) behind probeGpt and readGptForEdit: both see the
 * same sector size and the same copies, at 512 and 4096 bytes, whole or damaged.
 */
import { describe, expect, it } from 'vitest';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { planLayout } from '../../src/layout/plan.js';
import { schemeHandler } from '../../src/schemes/registry.js';
import { locateGpt, readGpt } from '../../src/schemes/gpt/read.js';
import { probeGpt } from '../../src/schemes/gpt/probe.js';
import { gptNeedsRepair, readGptForEdit, writeGptAttributes } from '../../src/schemes/gpt/edit.js';

async function gptImage(sectorSize: 512 | 4096, extraSectors = 0): Promise<Uint8Array> {
  const layout = {
    scheme: 'gpt' as const,
    sectorSize,
    align: '4K',
    partitions: [
      { type: 'freebsd-ufs', label: 'os1', size: '64K', attributes: ['bootme'] },
      { type: 'freebsd-ufs', label: 'os2', size: '64K' },
    ],
  };
  const plan = await planLayout(layout, { baseDir: '/', seed: 'gpt-read', path: '' });
  const img = new Uint8Array((plan.totalSectors + extraSectors) * sectorSize);
  for (const t of schemeHandler('gpt').encode(plan)) img.set(t.bytes, t.offset);
  return img;
}

/** An in-memory TableWriter over `img`. */
function writerFor(img: Uint8Array) {
  return { disk: memoryDiskReader(img), writeBytes: async (offset: number, bytes: Uint8Array) => void img.set(bytes, offset), barrier: async () => {} };
}

describe.each([512, 4096] as const)('the GPT reader at %i-byte sectors', (ss) => {
  it('probe and editor read the same sector size and entries from a whole table', async () => {
    const img = await gptImage(ss);
    const disk = memoryDiskReader(img);
    expect(await locateGpt(disk)).toEqual({ sectorSize: ss, viaBackup: false });
    const read = (await readGpt(disk))!;
    expect([read.primary.valid, read.backup.valid, read.findings]).toEqual([true, true, []]);
    const probed = (await probeGpt(disk))!;
    const edit = await readGptForEdit(disk);
    expect([probed.table.sectorSize, edit.sectorSize]).toEqual([ss, ss]);
    expect(edit.entries.filter((e) => e.typeGuid !== '00000000-0000-0000-0000-000000000000').map((e) => [e.index, e.name, e.firstLba])).toEqual(
      probed.table.partitions.map((p) => [p.index, p.label, p.firstLba]),
    );
    expect(gptNeedsRepair(edit)).toBe(false);
  });

  it('with the primary header wiped both find the backup; an edit rebuilds the primary', async () => {
    const img = await gptImage(ss);
    img.fill(0, ss, 2 * ss);
    const disk = memoryDiskReader(img);
    expect(await locateGpt(disk)).toEqual({ sectorSize: ss, viaBackup: true });
    expect((await probeGpt(disk))!.findings.map((f) => f.code)).toContain('gpt.using-backup');
    const edit = await readGptForEdit(disk);
    expect(edit.good).toBe(edit.backup);
    expect(gptNeedsRepair(edit)).toBe(true);
    await writeGptAttributes(writerFor(img), edit, new Map([[2, 1n << 59n]]));
    const after = (await probeGpt(memoryDiskReader(img)))!;
    expect(after.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(after.table.partitions.map((p) => p.attributes)).toEqual([['bootme'], ['bootme']]);
  });

  it('a grown image (backup not at the end) with a damaged primary array: the editor follows the primary header to the backup, as the probe does', async () => {
    const img = await gptImage(ss, 8);
    const entriesLba = 2;
    img[entriesLba * ss + 56] ^= 0xff; // a byte of entry 1's name: the primary array's CRC fails
    const disk = memoryDiskReader(img);
    const codes = (await probeGpt(disk))!.findings.map((f) => f.code);
    expect(codes).toEqual(expect.arrayContaining(['gpt.backup-not-at-end', 'gpt.primary-entries-crc', 'gpt.using-backup']));
    const edit = await readGptForEdit(disk);
    expect(edit.good).toBe(edit.backup);
    expect(edit.backup!.lba).toBe(img.length / ss - 1 - 8);
  });

  it('neither copy valid: the editor refuses, the probe reports', async () => {
    const img = await gptImage(ss);
    img[ss + 20] ^= 0xff; // primary header CRC
    img[img.length - ss + 20] ^= 0xff; // backup header CRC
    const disk = memoryDiskReader(img);
    await expect(readGptForEdit(disk)).rejects.toThrow(/neither GPT copy is valid/);
    expect((await probeGpt(disk))!.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['gpt.primary-header-crc', 'gpt.backup-header-crc']));
  });
});

it('no GPT: the reader finds none and the editor says so', async () => {
  const disk = memoryDiskReader(new Uint8Array(1 << 16));
  expect(await readGpt(disk)).toBeNull();
  await expect(readGptForEdit(disk)).rejects.toThrow(/no GPT found/);
});
