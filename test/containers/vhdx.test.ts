/**
 * VHDX writer and reader in-process: CRC-32C, options, BAT geometry, round trips. Hostile input
 * is in vhdx-hostile.test.ts, log replay in vhdx-log.test.ts.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { batGeometry, decodeBatEntry, encodeBatEntry, payloadEntryIndex } from '../../formats/containers/vhdx-bat.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import { defaultVhdxBlockSize, parseVhdxOptions } from '../../src/containers/vhdx/writer.js';
import { diskFromRecipe, expectPrefixThenZeros, fill, readAll, sampleDisk, writeWithHandler } from '../helpers/containers.js';
import { MIB, dir, openBuf, writeVhdx } from './vhdx-helpers.js';

const GIB = 1024 * MIB;

describe('CRC-32C', () => {
  it('matches the check value and continues across calls', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.from('6789'), crc32c(Buffer.from('12345')))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  });
});

describe('VHDX options', () => {
  it('defaults like qemu and refuses unknown keys and bad values', () => {
    expect(defaultVhdxBlockSize(GIB)).toBe(8 * MIB);
    expect(defaultVhdxBlockSize(2 * GIB)).toBe(16 * MIB);
    expect(defaultVhdxBlockSize(200 * GIB)).toBe(32 * MIB);
    expect(defaultVhdxBlockSize(33 * 1024 * GIB)).toBe(64 * MIB);
    expect(parseVhdxOptions({ block_size: '1M', log_size: '2M', subformat: 'fixed' }, 1)).toMatchObject({
      blockSize: MIB,
      logSize: 2 * MIB,
      subformat: 'fixed',
    });
    expect(parseVhdxOptions({ block_size: '33554432' }, 1).blockSize).toBe(32 * MIB);
    expect(() => parseVhdxOptions({ block_size: '3M' }, 1)).toThrow(/block_size/);
    expect(() => parseVhdxOptions({ block_size: '512M' }, 1)).toThrow(/block_size/);
    expect(() => parseVhdxOptions({ log_size: '1500k' }, 1)).toThrow(/log_size/);
    expect(() => parseVhdxOptions({ compat6: 'on' }, 1)).toThrow(/"compat6"/);
    expect(() => parseVhdxOptions({ subformat: 'diff' }, 1)).toThrow(DiskmintError);
  });
});

describe('VHDX BAT geometry (MS-VHDX 2.5)', () => {
  it('interleaves sector bitmap entries every chunk ratio', () => {
    // 1 MiB blocks, 512-byte sectors: chunk ratio 4096.
    expect(batGeometry(5000 * MIB, MIB, 512)).toEqual({ ratio: 4096, dataBlocks: 5000, totalEntries: 5001 });
    expect(batGeometry(4096 * MIB, MIB, 512).totalEntries).toBe(4096);
    expect(batGeometry(4097 * MIB, MIB, 512).totalEntries).toBe(4098);
    expect(payloadEntryIndex(4096, 4096)).toBe(4097);
    const dv = new DataView(new ArrayBuffer(8));
    encodeBatEntry(dv, 0, 6, 123456 * MIB);
    expect(decodeBatEntry(dv, 0)).toEqual({ state: 6, fileOffset: 123456 * MIB });
  });
});

describe('VHDX write and read back', () => {
  const cases: Array<Record<string, string>> = [{}, { subformat: 'fixed' }, { block_size: '1M' }, { block_size: '2M', log_size: '2M', subformat: 'fixed' }];
  for (const options of cases) {
    it(`round-trips ${JSON.stringify(options)}`, async () => {
      const { disk, expected } = sampleDisk();
      const buf = await writeVhdx(disk, options);
      const r = await openBuf(buf);
      expect(r.size).toBe(Math.ceil(disk.size / 512) * 512);
      const o = parseVhdxOptions(options, disk.size);
      expect(r.subformat).toBe(o.subformat);
      expect(r.details()).toMatchObject({ blockSize: o.blockSize, logicalSectorSize: 512, creator: 'diskmint', logLength: o.logSize });
      expectPrefixThenZeros(await readAll(r), expected);
      await r.close();
      expect((await writeVhdx(disk, options)).equals(buf)).toBe(true);
    });
  }

  it('stores only blocks that hold data and reports them', async () => {
    const disk = new VirtualDisk(9 * MIB).placeBytes(5 * MIB, fill(100, 9));
    const buf = await writeVhdx(disk, { block_size: '1M' });
    expect(buf.length).toBe(5 * MIB);
    const r = await openBuf(buf);
    const ranges = [];
    for await (const x of r.allocatedRanges()) ranges.push(x);
    expect(ranges).toEqual([{ offset: 5 * MIB, length: MIB }]);
    expect(r.details().presentBlocks).toBe(1);
  });

  it('a dynamic file and a pipe (BAT first, after a pre-scan) both leave out blocks whose data is all zeros: the same bytes', async () => {
    const disk = new VirtualDisk(9 * MIB).placeBytes(0, new Uint8Array(MIB)).placeBytes(5 * MIB, fill(100, 9));
    const file = await writeVhdx(disk, { block_size: '1M' });
    const piped = (await writeWithHandler(vhdxHandler, disk, join(dir, 'zeros.vhdx'), { options: { block_size: '1M' }, pipe: true }))!;
    expect(file.length).toBe(5 * MIB);
    expect(piped.equals(file)).toBe(true);
    const r = await openBuf(file);
    expect(r.details().presentBlocks).toBe(1);
    expect((await r.read(5 * MIB, 100)).every((b, i) => b === fill(100, 9)[i])).toBe(true);
    expect((await r.read(0, MIB)).every((b) => b === 0)).toBe(true);
    await r.close();
  });

  it('random disks round-trip; pipe output equals file output', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 7 * MIB }),
        fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 200_000 }), seed: fc.nat(255) }), { maxLength: 5 }),
        fc.constantFrom<Record<string, string>>({ block_size: '1M' }, { block_size: '2M', subformat: 'fixed' }, {}),
        async (size, pieces, options) => {
          const { disk, expected } = diskFromRecipe({ size, pieces });
          const file = await writeVhdx(disk, options);
          const piped = await writeWithHandler(vhdxHandler, disk, join(dir, 'pipe.vhdx'), { options, pipe: true });
          expect(piped!.equals(file)).toBe(true);
          const r = await openBuf(file);
          expectPrefixThenZeros(await readAll(r), expected);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('refuses an empty disk', async () => {
    await expect(writeVhdx(new VirtualDisk(0))).rejects.toThrow(/0 bytes/);
  });

  it('detects VHDX by its identifier', async () => {
    expect(await vhdxHandler.detect(memoryDiskReader(await writeVhdx(sampleDisk(100_000).disk)))).toBe(true);
    expect(await vhdxHandler.detect(memoryDiskReader(new Uint8Array(10)))).toBe(false);
  });
});
