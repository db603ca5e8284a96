/**
 * VMDK in-process: round trips per subformat, determinism, pipes, options. Hostile input and
 * fuzz are in vmdk-hostile.test.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFile, rm, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { vmdkHandler } from '../../src/containers/vmdk/handler.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { decodeSparseHeader, SECTOR } from '../../formats/containers/vmdk.js';
import { decodeDescriptor, descriptorGeometry } from '../../formats/containers/vmdk-descriptor.js';
import { writeWithHandler, openWithHandler, readAll } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';
import { fresh, randomDisk } from './vmdk-helpers.js';

const SUBFORMATS = ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'] as const;

async function expectDisk(r: ContainerReader, raw: Buffer): Promise<void> {
  const back = await readAll(r);
  expect(back.length).toBeGreaterThanOrEqual(raw.length);
  expect(back.subarray(0, raw.length).equals(raw)).toBe(true);
  expect(back.subarray(raw.length).every((b) => b === 0)).toBe(true);
  // every non-zero byte lies in an allocated range
  const ranges: Array<{ offset: number; length: number }> = [];
  for await (const x of r.allocatedRanges()) ranges.push(x);
  let covered = 0;
  for (const x of ranges) covered += back.subarray(x.offset, x.offset + x.length).reduce((a, b) => a + (b ? 1 : 0), 0);
  expect(covered).toBe(back.reduce((a, b) => a + (b ? 1 : 0), 0));
}

describe('vmdk round trips', () => {
  for (const subformat of SUBFORMATS) {
    it(`${subformat}: random disks read back identical`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 0x7fffffff }), fc.integer({ min: 1, max: 3 * 1024 * 1024 }), async (seed, size) => {
          const { disk, raw } = randomDisk(seed, size);
          const path = fresh();
          await writeWithHandler(vmdkHandler, disk, path, { options: { subformat } });
          const r = await openWithHandler(vmdkHandler, path);
          try {
            expect(r.format).toBe('vmdk');
            expect(r.subformat).toBe(subformat);
            expect(r.size).toBe(Math.ceil(size / 512) * 512); // streamOptimized too: whole sectors, as qemu-img (issue 17 item 16)
            await expectDisk(r, raw);
          } finally {
            await r.close();
          }
        }),
        { numRuns: 8 },
      );
    });
  }

  it('monolithicFlat writes the descriptor and <name>-flat.vmdk, refuses a pipe', async () => {
    const { disk, raw } = randomDisk(7, 300_001);
    const sub = tempDir('diskmint-vmdk-flat-');
    const path = join(sub, 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path, { options: { subformat: 'monolithicFlat' } });
    expect((await readdir(sub)).sort()).toEqual(['disk-flat.vmdk', 'disk.vmdk']);
    const d = decodeDescriptor(await readFile(path));
    expect(d.extents).toEqual([{ access: 'RW', sectors: Math.ceil(300_001 / 512), type: 'FLAT', file: 'disk-flat.vmdk', offset: 0 }]);
    expect((await readFile(join(sub, 'disk-flat.vmdk'))).subarray(0, raw.length).equals(raw)).toBe(true);
    await expect(writeWithHandler(vmdkHandler, disk, join(sub, 'p.vmdk'), { options: { subformat: 'monolithicFlat' }, pipe: true })).rejects.toMatchObject({
      name: 'DiskmintError',
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/pipe/),
    });
    await rm(sub, { recursive: true, force: true });
  });

  for (const subformat of ['monolithicSparse', 'streamOptimized'] as const) {
    it(`${subformat}: 1 vs 4 threads and pipe vs file give identical bytes`, async () => {
      const { disk } = randomDisk(99, 2 * 1024 * 1024 + 777, 10);
      const sub = tempDir('diskmint-vmdk-det-');
      const path = join(sub, 'disk.vmdk'); // a pipe's embedded descriptor names the extent disk.vmdk
      await writeWithHandler(vmdkHandler, disk, path, { options: { subformat }, threads: 1 });
      const one = await readFile(path);
      await writeWithHandler(vmdkHandler, disk, path, { options: { subformat }, threads: 4 });
      expect((await readFile(path)).equals(one)).toBe(true);
      const piped = await writeWithHandler(vmdkHandler, disk, path, { options: { subformat }, threads: 3, pipe: true });
      expect(piped!.equals(one)).toBe(true);
      await rm(sub, { recursive: true, force: true });
    });
  }

  it('monolithicSparse: a file and a pipe (tables first, after a pre-scan) both leave out grains whose data is all zeros: the same bytes', async () => {
    const GRAIN = 64 * 1024;
    const data = Buffer.alloc(GRAIN, 0x5a);
    const disk = new VirtualDisk(4 * 1024 * 1024).placeBytes(0, new Uint8Array(2 * GRAIN)).placeBytes(10 * GRAIN, data);
    const sub = tempDir('diskmint-vmdk-zeros-');
    const path = join(sub, 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const file = await readFile(path);
    const piped = (await writeWithHandler(vmdkHandler, disk, path, { pipe: true }))!;
    const overHead = decodeSparseHeader(file.subarray(0, 512)).overHead * SECTOR;
    expect(file.length).toBe(overHead + GRAIN);
    expect(piped.equals(file)).toBe(true);
    const r = await openWithHandler(vmdkHandler, path);
    const all = await readAll(r);
    expect(all.subarray(10 * GRAIN, 11 * GRAIN).equals(data)).toBe(true);
    expect(all.subarray(0, 10 * GRAIN).every((b) => b === 0)).toBe(true);
    await r.close();
    await rm(sub, { recursive: true, force: true });
  });

  it('header, descriptor and geometry follow the options', async () => {
    const { disk } = randomDisk(3, 100 * 1024 * 1024, 2);
    const path = fresh();
    await writeWithHandler(vmdkHandler, disk, path, { options: { adapter_type: 'lsilogic', hwversion: '7', toolsversion: '10304' } });
    const bytes = await readFile(path);
    const h = decodeSparseHeader(bytes.subarray(0, 512));
    expect(h).toMatchObject({ version: 1, flags: 3, grainSize: 128, numGTEsPerGT: 512, descriptorOffset: 1, rgdOffset: 21 });
    expect(h.overHead % 128).toBe(0);
    const d = decodeDescriptor(bytes.subarray(512, 512 * 21));
    expect(d.ddb).toMatchObject({
      adapterType: 'lsilogic',
      virtualHWVersion: '7',
      toolsVersion: '10304',
      'geometry.heads': '255',
      'geometry.sectors': '63',
      'geometry.cylinders': '12',
    });
    expect(d.createType).toBe('monolithicSparse');
    expect(descriptorGeometry(2 ** 40, 'ide')).toEqual({ cylinders: 16383, heads: 16, sectors: 63 });
    const s = fresh();
    await writeWithHandler(vmdkHandler, disk, s, { options: { subformat: 'streamOptimized' } });
    const sh = decodeSparseHeader((await readFile(s)).subarray(0, 512));
    expect(sh).toMatchObject({ version: 3, flags: 0x30001, gdOffset: 'end', compressAlgorithm: 1, rgdOffset: 0 });
  });

  it('refuses unknown or bad options naming them', async () => {
    const { disk } = randomDisk(1, 100_000, 1);
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ zeroed_grain: 'on' }, /unknown option "zeroed_grain"/],
      [{ subformat: 'vmfs' }, /subformat "vmfs"/],
      [{ adapter_type: 'scsi' }, /adapter_type "scsi"/],
      [{ hwversion: 'x' }, /hwversion "x"/],
      [{ compat6: 'on', hwversion: '7' }, /compat6/],
    ];
    for (const [options, re] of bad) {
      await expect(writeWithHandler(vmdkHandler, disk, fresh(), { options })).rejects.toMatchObject({
        name: 'DiskmintError',
        message: expect.stringMatching(re),
      });
    }
    await expect(writeWithHandler(vmdkHandler, disk, fresh(), { compress: { algorithm: 'deflate' } })).rejects.toThrow(/streamOptimized/);
    expect(vmdkHandler.optionKeys).toContain('subformat');
  });
});
