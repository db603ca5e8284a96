/** VHD writer and reader in-process: option handling, CHS sizing, round trips, hostile input. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { sourceDateEpoch } from '../../src/model/source-date.js';
import { FormatError } from '../../formats/common/errors.js';
import {
  VHD_MAX_CHS_SECTORS,
  chsSectors,
  decodeVhdDynamicHeader,
  decodeVhdFooter,
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  vhdChecksum,
  vhdChsFor,
  vhdSizeFor,
  vhdTimestamp,
} from '../../formats/containers/vhd.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { parseVhdOptions, vhdLayoutSize } from '../../src/containers/vhd/writer.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { diskFromRecipe, expectPrefixThenZeros, fill, readAll, sampleDisk, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

const MIB = 1 << 20;
const dir = tempDir('diskmint-vhd-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function writeVhd(disk: VirtualDisk, options: Record<string, string> = {}): Promise<Buffer> {
  const path = join(dir, `w${n++}.vhd`);
  await writeWithHandler(vhdHandler, disk, path, { options });
  return readFileSync(path);
}

function openBuf(buf: Uint8Array): Promise<ContainerReader> {
  return vhdHandler.open(memoryDiskReader(buf), {
    path: 'mem.vhd',
    openSibling: async () => {
      throw new Error('no siblings');
    },
  });
}

async function readBuf(buf: Uint8Array): Promise<Buffer> {
  const r = await openBuf(buf);
  try {
    return await readAll(r);
  } finally {
    await r.close();
  }
}

/** Re-checksum the footer at `at` after patching it. */
function refooter(buf: Buffer, at: number): void {
  buf.writeUInt32BE(vhdChecksum(buf.subarray(at, at + 512), 64), at + 64);
}
function reheader(buf: Buffer): void {
  buf.writeUInt32BE(vhdChecksum(buf.subarray(512, 1536), 36), 512 + 36);
}

async function expectFormatError(buf: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await openBuf(buf).then(
    async (r) => {
      await readAll(r);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  expect((err as FormatError).format).toBe('vhd');
  expect((err as Error).message).toMatch(pattern);
}

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

describe('VHD reader: footers', () => {
  it('detects fixed and dynamic images, not other bytes', async () => {
    const { disk } = sampleDisk(600_000);
    expect(await vhdHandler.detect(memoryDiskReader(await writeVhd(disk)))).toBe(true);
    expect(await vhdHandler.detect(memoryDiskReader(await writeVhd(disk, { subformat: 'fixed' })))).toBe(true);
    expect(await vhdHandler.detect(memoryDiskReader(new Uint8Array(4096)))).toBe(false);
    expect(await vhdHandler.detect(memoryDiskReader(new Uint8Array(3)))).toBe(false);
  });

  it('refuses a fixed image whose footer checksum is wrong', async () => {
    const buf = await writeVhd(sampleDisk(600_000).disk, { subformat: 'fixed' });
    buf[buf.length - 512 + 100] ^= 1;
    await expectFormatError(buf, /checksum/);
  });

  it('reads a dynamic image through the footer copy at 0 when the end footer is damaged', async () => {
    const { disk, expected } = sampleDisk(600_000);
    const buf = await writeVhd(disk);
    buf[buf.length - 512 + 100] ^= 1;
    const r = await openBuf(buf);
    expect(String(r.details().footer)).toMatch(/copy at offset 0/);
    expectPrefixThenZeros(await readAll(r), expected);
  });

  it('reads an old 511-byte footer', async () => {
    const { disk, expected } = sampleDisk(600_000);
    const buf = await writeVhd(disk, { subformat: 'fixed' });
    const r = await openBuf(buf.subarray(0, buf.length - 1));
    expect(r.details().footer).toMatch(/511/);
    expectPrefixThenZeros(await readAll(r), expected);
  });

  it('uses the footer current_size, not the CHS size', async () => {
    const buf = await writeVhd(sampleDisk(600_000).disk, { subformat: 'fixed' });
    const at = buf.length - 512;
    buf.writeUInt16BE(1, at + 56); // cylinders 1: CHS says 68 sectors
    refooter(buf, at);
    const r = await openBuf(buf);
    expect(r.size).toBe(buf.readUInt32BE(at + 52));
    expect(r.details().chsSize).toBe(1 * 4 * 17 * 512);
  });
});

describe('VHD reader: hostile input', () => {
  async function dyn(): Promise<Buffer> {
    return writeVhd(sampleDisk(3 * MIB).disk);
  }
  /** Patch both footer copies consistently. */
  function patchFooters(buf: Buffer, f: (at: number) => void): void {
    for (const at of [0, buf.length - 512]) {
      f(at);
      refooter(buf, at);
    }
  }

  it('refuses a truncated fixed image', async () => {
    const buf = await writeVhd(sampleDisk(600_000).disk, { subformat: 'fixed' });
    await expectFormatError(Buffer.concat([buf.subarray(0, 1000), buf.subarray(buf.length - 512)]), /fixed VHD claims/);
  });
  it('refuses files with no footer', async () => {
    await expectFormatError(new Uint8Array(4096), /conectix/);
    await expectFormatError(new Uint8Array(100), /too short/);
  });
  it('refuses differencing and unknown disk types', async () => {
    const a = await dyn();
    patchFooters(a, (at) => a.writeUInt32BE(4, at + 60));
    await expectFormatError(a, /differencing/);
    const b = await dyn();
    patchFooters(b, (at) => b.writeUInt32BE(9, at + 60));
    await expectFormatError(b, /disk type 9/);
  });
  it('refuses a dynamic header with a bad checksum or cookie', async () => {
    const a = await dyn();
    a[512 + 100] ^= 1;
    await expectFormatError(a, /dynamic header checksum/);
    const b = await dyn();
    b.write('xxxxxxxx', 512, 'latin1');
    await expectFormatError(b, /cxsparse/);
  });
  it('refuses a header offset outside the file', async () => {
    const a = await dyn();
    patchFooters(a, (at) => a.writeBigUInt64BE(1n << 40n, at + 16));
    await expectFormatError(a, /header offset/);
  });
  it('refuses odd block sizes and too-small BATs', async () => {
    const a = await dyn();
    a.writeUInt32BE(3 * MIB, 512 + 32);
    reheader(a);
    await expectFormatError(a, /block size/);
    const b = await dyn();
    b.writeUInt32BE(1, 512 + 28);
    reheader(b);
    await expectFormatError(b, /BAT has 1 entries/);
  });
  it('refuses a BAT or block past the end of the file', async () => {
    const a = await dyn();
    a.writeBigUInt64BE(BigInt(a.length), 512 + 16);
    reheader(a);
    await expectFormatError(a, /BAT at .* runs past/);
    const b = await dyn();
    b.writeUInt32BE(0x7fffffff, 1536 + 4);
    await expectFormatError(b, /block 1 .* past the end/);
  });
  it('refuses sizes over 2 TiB', async () => {
    const a = await dyn();
    patchFooters(a, (at) => a.writeBigUInt64BE(1n << 45n, at + 48));
    await expectFormatError(a, /more than 2 TiB/);
  });
  it('honours sector bitmaps: a clear bit reads as zeros', async () => {
    const { disk, expected } = sampleDisk(3 * MIB);
    const buf = await writeVhd(disk);
    const block0 = buf.readUInt32BE(1536) * 512;
    buf[block0] = 0x7f; // sector 0 of block 0 not present
    const got = await readBuf(buf);
    expect(got.subarray(0, 512).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(got.subarray(512, expected.length), Buffer.from(expected.subarray(512)))).toBe(0);
  });

  it('fuzz: mutated images fail only with FormatError', async () => {
    const dynamic = await writeVhd(sampleDisk(3 * MIB).disk);
    const fixed = await writeVhd(sampleDisk(600_000).disk, { subformat: 'fixed' });
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.record({ where: fc.nat(), value: fc.nat(255), tail: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (useDynamic, edits, fixChecksums) => {
          const buf = Buffer.from(useDynamic ? dynamic : fixed);
          for (const e of edits) {
            // Aim at the metadata: footer copies, dynamic header, BAT, first bitmap.
            const at = e.tail ? buf.length - 512 + (e.where % 512) : e.where % 4096;
            buf[at] = e.value;
          }
          if (fixChecksums) {
            refooter(buf, buf.length - 512);
            if (useDynamic) {
              refooter(buf, 0);
              reheader(buf);
            }
          }
          try {
            const r = await openBuf(buf);
            if (r.size <= 64 * MIB) await readAll(r);
            else await r.read(r.size - 4096, 4096);
            for await (const x of r.allocatedRanges()) void x;
          } catch (e) {
            if (!(e instanceof FormatError) && !(e instanceof DiskmintError)) throw e;
          }
        },
      ),
      { numRuns: 300 },
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
