/**
 * VHD writer and reader in-process: option handling, CHS sizing, round trips, the codec. The
 * footers and hostile input are in vhd-hostile.test.ts.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError } from '../../src/model/errors.js';
import { sourceDateEpoch } from '../../src/model/source-date.js';
import {
  VHD_MAX_CHS_SECTORS,
  chsSectors,
  decodeVhdDynamicHeader,
  decodeVhdFooter,
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  vhdChsFor,
  vhdSizeFor,
  vhdTimestamp,
} from '../../formats/containers/vhd.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { parseVhdOptions, vhdLayoutSize } from '../../src/containers/vhd/writer.js';
import { diskFromRecipe, expectPrefixThenZeros, fill, readAll, sampleDisk, writeWithHandler } from '../helpers/containers.js';
import { MIB, dir, openBuf, readBuf, writeVhd } from './vhd-helpers.js';

describe('VHD options', () => {
  it('takes subformat and force_size, refuses others naming the key', () => {
    expect(parseVhdOptions({})).toEqual({ subformat: 'dynamic', forceSize: false });
    expect(parseVhdOptions({ subformat: 'fixed', force_size: 'on' })).toEqual({ subformat: 'fixed', forceSize: true });
    expect(() => parseVhdOptions({ cluster_size: '64k' })).toThrow(/cluster_size/);
    expect(() => parseVhdOptions({ subformat: 'sparse' })).toThrow(DiskmintError);
    expect(() => parseVhdOptions({ force_size: 'maybe' })).toThrow(/force_size/);
  });
});

describe('VHD CHS sizing (VHD spec appendix, qemu vpc_co_create)', () => {
  it('follows the spec algorithm on known sizes', () => {
    expect(vhdChsFor(9766)).toEqual({ cylinders: 143, heads: 4, sectorsPerTrack: 17 });
    expect(vhdChsFor(VHD_MAX_CHS_SECTORS + 5)).toEqual({ cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
    // 5000000 bytes: qemu-img create -f vpc reports 5013504 (144/4/17).
    expect(vhdSizeFor(5_000_000, false)).toEqual({ size: 5_013_504, geometry: { cylinders: 144, heads: 4, sectorsPerTrack: 17 } });
    expect(vhdSizeFor(5_000_000, true).size).toBe(5_000_192);
  });

  it('rounds up to a CHS product, or keeps the exact size with force_size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (bytes) => {
        const r = vhdSizeFor(bytes, false);
        expect(r.size).toBeGreaterThanOrEqual(bytes);
        if (chsSectors(r.geometry) === VHD_MAX_CHS_SECTORS) expect(r.size).toBe(Math.ceil(bytes / 512) * 512);
        else expect(r.size).toBe(chsSectors(r.geometry) * 512);
        const f = vhdSizeFor(bytes, true);
        expect(f.size).toBe(Math.ceil(bytes / 512) * 512);
        expect(chsSectors(f.geometry)).toBe(VHD_MAX_CHS_SECTORS);
      }),
      { numRuns: 300 },
    );
  });

  it('rounds fixed force_size disks up to a whole MiB (Azure)', () => {
    expect(vhdLayoutSize(5_000_000, { subformat: 'fixed', forceSize: true }).size).toBe(5 * MIB);
    expect(vhdLayoutSize(4 * MIB, { subformat: 'fixed', forceSize: true }).size).toBe(4 * MIB);
    expect(vhdLayoutSize(5_000_000, { subformat: 'dynamic', forceSize: true }).size).toBe(5_000_192);
  });

  it('writes SOURCE_DATE_EPOCH into the footer', async () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '1700000000';
    try {
      const buf = await writeVhd(new VirtualDisk(1000));
      expect(buf.readUInt32BE(buf.length - 512 + 24)).toBe(1700000000 - 946684800);
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  it('refuses a SOURCE_DATE_EPOCH that is not a whole number of seconds, naming it', async () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '17e8';
    try {
      await expect(writeVhd(new VirtualDisk(1000))).rejects.toThrow('SOURCE_DATE_EPOCH=17e8 is not a whole number of seconds');
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  it('stamps seconds since 2000, clamped to the field', () => {
    expect(vhdTimestamp(0)).toBe(0);
    expect(vhdTimestamp(946684800)).toBe(0);
    expect(vhdTimestamp(1700000000)).toBe(1700000000 - 946684800);
    expect(vhdTimestamp(946684800 + 2 ** 33)).toBe(0xffffffff);
  });
});

describe('VHD write and read back', () => {
  const cases: Array<Record<string, string>> = [{}, { subformat: 'fixed' }, { force_size: 'on' }, { subformat: 'fixed', force_size: 'on' }];
  for (const options of cases) {
    it(`round-trips ${JSON.stringify(options)}`, async () => {
      const { disk, expected } = sampleDisk();
      const buf = await writeVhd(disk, options);
      const r = await openBuf(buf);
      const o = parseVhdOptions(options);
      expect(r.size).toBe(vhdLayoutSize(disk.size, o).size);
      expect(r.subformat).toBe(o.subformat);
      expectPrefixThenZeros(await readAll(r), expected);
      const d = r.details();
      expect(d.creatorApp).toBe('dmnt');
      expect(d.currentSize).toBe(r.size);
      expect(d.diskType).toBe(o.subformat);
      const footer = decodeVhdFooter(buf.subarray(buf.length - 512), 'end');
      expect(footer.timestamp).toBe(vhdTimestamp(sourceDateEpoch() ?? 0));
      if (o.subformat === 'dynamic') {
        expect(buf.subarray(0, 512).equals(buf.subarray(buf.length - 512))).toBe(true);
        const ranges = [];
        for await (const x of r.allocatedRanges()) ranges.push(x);
        expect(ranges).toEqual([{ offset: 0, length: r.size }]);
      } else {
        expect(buf.length).toBe(r.size + 512);
      }
      await r.close();
      // Deterministic: the same disk gives the same bytes.
      expect((await writeVhd(disk, options)).equals(buf)).toBe(true);
    });
  }

  it('writes an empty dynamic disk, refuses an empty fixed one', async () => {
    const r = await openBuf(await writeVhd(new VirtualDisk(0)));
    expect(r.size).toBe(0);
    await expect(writeVhd(new VirtualDisk(0), { subformat: 'fixed' })).rejects.toThrow(/0 bytes/);
  });

  it('stores only blocks that hold data and reports them', async () => {
    const disk = new VirtualDisk(9 * MIB).placeBytes(5 * MIB, fill(100, 9));
    const buf = await writeVhd(disk);
    expect(buf.length).toBe(512 + 1024 + 512 + (512 + 2 * MIB) + 512);
    const r = await openBuf(buf);
    const ranges = [];
    for await (const x of r.allocatedRanges()) ranges.push(x);
    expect(ranges).toEqual([{ offset: 4 * MIB, length: 2 * MIB }]);
    expect((await r.read(5 * MIB, 100)).every((b, i) => b === fill(100, 9)[i])).toBe(true);
    expect(r.details().allocatedBlocks).toBe(1);
  });

  it('a file and a pipe (BAT first, after a pre-scan) both leave out blocks whose data is all zeros: the same bytes', async () => {
    const disk = new VirtualDisk(9 * MIB).placeBytes(0, new Uint8Array(2 * MIB)).placeBytes(5 * MIB, fill(100, 9));
    const file = await writeVhd(disk);
    const piped = (await writeWithHandler(vhdHandler, disk, join(dir, 'zeros.vhd'), { pipe: true }))!;
    expect(file.length).toBe(512 + 1024 + 512 + (512 + 2 * MIB) + 512);
    expect(piped.equals(file)).toBe(true);
    const r = await openBuf(file);
    expect(r.details().allocatedBlocks).toBe(1);
    expect((await r.read(5 * MIB, 100)).every((b, i) => b === fill(100, 9)[i])).toBe(true);
    expect((await r.read(0, 2 * MIB)).every((b) => b === 0)).toBe(true);
    await r.close();
  });

  it('random disks round-trip; pipe output equals file output', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 7 * MIB }),
        fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 200_000 }), seed: fc.nat(255) }), { maxLength: 5 }),
        fc.constantFrom<Record<string, string>>({}, { subformat: 'fixed' }, { force_size: 'on' }, { subformat: 'fixed', force_size: 'on' }),
        async (size, pieces, options) => {
          const { disk, expected } = diskFromRecipe({ size, pieces });
          const file = await writeVhd(disk, options);
          const piped = await writeWithHandler(vhdHandler, disk, join(dir, 'pipe.vhd'), { options, pipe: true });
          expect(piped!.equals(file)).toBe(true);
          expectPrefixThenZeros(await readBuf(file), expected);
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('VHD codec', () => {
  it('footer and dynamic header encode/decode', () => {
    const f = {
      features: 2,
      version: 0x10000,
      dataOffset: 512,
      timestamp: 5,
      creatorApp: 'dmnt',
      creatorVersion: 1,
      creatorHostOs: 'Wi2k',
      originalSize: 1234 * 512,
      currentSize: 1234 * 512,
      geometry: { cylinders: 20, heads: 4, sectorsPerTrack: 17 },
      diskType: 3,
      uniqueId: new Uint8Array(16).fill(9),
      savedState: 0,
    };
    expect(decodeVhdFooter(encodeVhdFooter(f), 'x')).toEqual(f);
    expect(decodeVhdFooter(encodeVhdFooter({ ...f, dataOffset: null }), 'x').dataOffset).toBeNull();
    const h = decodeVhdDynamicHeader(encodeVhdDynamicHeader({ tableOffset: 1536, maxTableEntries: 7, blockSize: 2 * MIB }));
    expect(h).toMatchObject({ tableOffset: 1536, maxTableEntries: 7, blockSize: 2 * MIB, headerVersion: 0x10000 });
  });
});
