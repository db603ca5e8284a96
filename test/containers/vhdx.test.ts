/** VHDX writer and reader in-process: CRC-32C, options, round trips, hostile input. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { encodeGuid } from '../../formats/common/guid.js';
import { META } from '../../formats/containers/vhdx.js';
import { batGeometry, decodeBatEntry, encodeBatEntry, payloadEntryIndex } from '../../formats/containers/vhdx-bat.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import { defaultVhdxBlockSize, parseVhdxOptions } from '../../src/containers/vhdx/writer.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { diskFromRecipe, expectPrefixThenZeros, fill, readAll, sampleDisk, writeWithHandler } from '../helpers/containers.js';
import { vhdxLogEntry, withVhdxLog } from '../helpers/vhdx-log.js';
import { tempDir } from '../helpers/golden.js';

const MIB = 1 << 20;
const GIB = 1024 * MIB;
const dir = tempDir('diskmint-vhdx-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
// Our layout with the default 1 MiB log: metadata at 2 MiB, BAT at 3 MiB, payload from 4 MiB.
const META_AT = 2 * MIB;
const BAT_AT = 3 * MIB;

async function writeVhdx(disk: VirtualDisk, options: Record<string, string> = {}): Promise<Buffer> {
  const path = join(dir, `w${n++}.vhdx`);
  await writeWithHandler(vhdxHandler, disk, path, { options });
  return readFileSync(path);
}

function openBuf(buf: Uint8Array): Promise<ContainerReader> {
  return vhdxHandler.open(memoryDiskReader(buf), {
    path: 'mem.vhdx',
    openSibling: async () => {
      throw new Error('no siblings');
    },
  });
}

/** Recompute the CRC-32C of the structure at `at` (`len` bytes, checksum at +4). */
function reseal(buf: Buffer, at: number, len: number): void {
  buf.writeUInt32LE(0, at + 4);
  buf.writeUInt32LE(crc32c(buf.subarray(at, at + len)), at + 4);
}
const resealHeaders = (b: Buffer) => [64 * 1024, 128 * 1024].forEach((at) => reseal(b, at, 4096));
const resealRegions = (b: Buffer) => [192 * 1024, 256 * 1024].forEach((at) => reseal(b, at, 64 * 1024));

async function expectFormatError(buf: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await openBuf(buf).then(
    async (r) => {
      await readAll(r);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  expect((err as FormatError).format).toBe('vhdx');
  expect((err as Error).message).toMatch(pattern);
}

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

describe('VHDX reader: hostile input', () => {
  const base = () => writeVhdx(sampleDisk(3 * MIB).disk, { block_size: '1M' });

  it('uses the valid header with the higher sequence number', async () => {
    const a = await base();
    a[64 * 1024 + 200] ^= 1; // header 1 CRC now wrong; header 2 (sequence 2) is current anyway
    expect((await openBuf(a)).details().headerSequence).toBe('2');
    const b = await base();
    b[128 * 1024 + 200] ^= 1;
    expect((await openBuf(b)).details().headerSequence).toBe('1');
    b[64 * 1024 + 200] ^= 1;
    await expectFormatError(b, /header 1 CRC-32C/);
  });
  it('refuses a wrong file identifier and a header version other than 1', async () => {
    const a = await base();
    a.write('vhdxfilz', 0, 'latin1');
    await expectFormatError(a, /vhdxfile/);
    const b = await base();
    for (const at of [64 * 1024, 128 * 1024]) b.writeUInt16LE(2, at + 66);
    resealHeaders(b);
    await expectFormatError(b, /version 2/);
  });
  it('an empty log with a LogGuid, and stray "loge" sectors without a valid entry, need no replay', async () => {
    const a = await base();
    const guid = '11111111-2222-3333-4444-555555555555';
    for (const at of [64 * 1024, 128 * 1024]) encodeGuid(guid, a, at + 48);
    resealHeaders(a);
    expect((await openBuf(a)).size).toBe(3 * MIB); // a LogGuid with an empty log is fine
    a.write('loge', MIB + 8192, 'latin1');
    encodeGuid(guid, a, MIB + 8192 + 32);
    const r = await openBuf(a);
    expect(r.details().logReplayedInMemory).toBeUndefined();
    expectPrefixThenZeros(await readAll(r), sampleDisk(3 * MIB).expected);
  });
  it('refuses broken region tables', async () => {
    const a = await base();
    a[192 * 1024 + 100] ^= 1;
    a[256 * 1024 + 100] ^= 1;
    await expectFormatError(a, /region table 1 CRC-32C/);
    const b = await base();
    for (const at of [192 * 1024, 256 * 1024]) b.writeUInt32LE(5000, at + 8);
    resealRegions(b);
    await expectFormatError(b, /5000 entries/);
    const c = await base();
    for (const at of [192 * 1024, 256 * 1024]) c.writeUInt32LE(2 ** 31, at + 16 + 16 + 4); // BAT offset high word
    resealRegions(c);
    await expectFormatError(c, /BAT region .* outside the file/);
    const d = await base();
    for (const at of [192 * 1024, 256 * 1024]) d[at + 16] ^= 0xff; // BAT GUID changed: unknown required region
    resealRegions(d);
    await expectFormatError(d, /requires region/);
  });
  it('refuses broken metadata', async () => {
    const a = await base();
    a.writeUInt16LE(3000, META_AT + 10);
    await expectFormatError(a, /3000 entries/);
    const b = await base();
    b.writeUInt16LE(4, META_AT + 10); // drop the physical sector size item
    await expectFormatError(b, /Physical Sector Size/);
    const c = await base();
    c.writeUInt32LE(3 * MIB, META_AT + 32 + 16); // file parameters offset outside the region
    await expectFormatError(c, /outside the metadata region/);
    const d = await base();
    d.writeUInt32LE(3 * MIB, META_AT + 64 * 1024); // block size 3 MiB
    await expectFormatError(d, /block size/);
    const e = await base();
    e.writeUInt32LE(2, META_AT + 64 * 1024 + 4); // HasParent
    await expectFormatError(e, /differencing/);
    const f = await base();
    f.writeUInt32LE(0x4000, META_AT + 64 * 1024 + 12); // virtual size 2^46 * 4
    await expectFormatError(f, /64 TiB/);
    const g = await base();
    encodeGuid(META.parentLocator, g, META_AT + 32 + 4 * 32);
    await expectFormatError(g, /parent locator/);
    const h = await base();
    h[META_AT + 32 + 4 * 32] ^= 1; // unknown item, still required
    await expectFormatError(h, /requires metadata item/);
    const j = await base();
    j.writeUInt32LE(100, META_AT + 32 + 20); // file parameters item length
    await expectFormatError(j, /100 bytes long/);
    const i = await base();
    i.writeUInt32LE(1000, META_AT + 64 * 1024 + 32); // logical sector size
    await expectFormatError(i, /logical sector size 1000/);
  });
  it('refuses a BAT too small, blocks outside the file and PARTIALLY_PRESENT', async () => {
    const a = await base();
    a.writeUInt32LE(0x100, META_AT + 64 * 1024 + 12); // 1 TiB virtual size: BAT region too small
    await expectFormatError(a, /too small/);
    const b = await base();
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    encodeBatEntry(dv, BAT_AT + 8, 6, 4096 * MIB);
    await expectFormatError(b, /payload block 1 .* outside the file/);
    const c = await base();
    encodeBatEntry(new DataView(c.buffer, c.byteOffset, c.length), BAT_AT, 7, 4 * MIB);
    await expectFormatError(c, /PARTIALLY_PRESENT/);
  });
  it('refuses BAT entries that point into the header section, the log, the metadata or the BAT itself (issue 17 item 8)', async () => {
    // Our layout: log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB (1 MiB each).
    const cases: Array<[number, RegExp]> = [
      [0, /BAT entry 1 \(payload block 1\) at 0-1048576 overlaps the header section/],
      [MIB, /BAT entry 1 \(payload block 1\) at 1048576-2097152 overlaps the log/],
      [META_AT, /BAT entry 1 \(payload block 1\) .* overlaps the region table entry 1 \(metadata region\)/],
      [BAT_AT, /BAT entry 1 \(payload block 1\) .* overlaps the region table entry 0 \(BAT region\)/],
    ];
    for (const [at, pattern] of cases) {
      const a = await base();
      encodeBatEntry(new DataView(a.buffer, a.byteOffset, a.length), BAT_AT + 8, 6, at); // payload block 1
      await expectFormatError(a, pattern);
    }
    // A 2 MiB block at 2 MiB overlaps the BAT in its second half.
    const big = await writeVhdx(sampleDisk(3 * MIB).disk, { block_size: '2M' });
    encodeBatEntry(new DataView(big.buffer, big.byteOffset, big.length), BAT_AT, 6, META_AT);
    await expectFormatError(big, /payload block 0\) at 2097152-4194304 overlaps the region table entry 1/);
  });
  it('refuses a present sector bitmap block that overlaps a structure', async () => {
    // 1 MiB blocks, 512-byte sectors: chunk ratio 4096, so BAT entry 4096 is the first sector bitmap entry.
    const disk = new VirtualDisk(4097 * MIB).placeBytes(0, fill(100, 3));
    const a = await writeVhdx(disk, { block_size: '1M' });
    encodeBatEntry(new DataView(a.buffer, a.byteOffset, a.length), BAT_AT + 4096 * 8, 6, META_AT);
    await expectFormatError(a, /BAT entry 4096 \(sector bitmap block 0\) .* overlaps the region table entry 1 \(metadata region\)/);
  });
  it('refuses region table entries that overlap each other, the log or the header section', async () => {
    const patchRegion = async (entry: number, offset: number): Promise<Buffer> => {
      const a = await base();
      for (const at of [192 * 1024, 256 * 1024]) a.writeUInt32LE(offset, at + 16 + entry * 32 + 16);
      resealRegions(a);
      return a;
    };
    await expectFormatError(
      await patchRegion(1, BAT_AT),
      /region table entry 1 \(metadata region\) \(3145728-4194304\) overlaps the region table entry 0 \(BAT region\)/,
    );
    await expectFormatError(await patchRegion(0, MIB), /region table entry 0 \(BAT region\) \(1048576-2097152\) overlaps the log/);
    const c = await base();
    for (const at of [192 * 1024, 256 * 1024]) {
      c.writeUInt32LE(3, at + 8); // a third, optional region inside the header section
      c.writeUInt32LE(0x12345678, at + 16 + 64);
      c.writeUInt32LE(512 * 1024, at + 16 + 64 + 16);
      c.writeUInt32LE(MIB, at + 16 + 64 + 24);
    }
    resealRegions(c);
    await expectFormatError(c, /region table entry 2 \(region 12345678-.*\) \(524288-1572864\) overlaps the header section/);
  });
  it('reads ZERO, UNMAPPED and UNDEFINED blocks as zeros', async () => {
    const { disk, expected } = sampleDisk(3 * MIB);
    for (const state of [1, 2, 3, 5]) {
      const buf = await writeVhdx(disk, { block_size: '1M' });
      encodeBatEntry(new DataView(buf.buffer, buf.byteOffset, buf.length), BAT_AT, state, 0);
      const got = await readAll(await openBuf(buf));
      expect(got.subarray(0, MIB).every((x) => x === 0)).toBe(true);
      expect(Buffer.compare(got.subarray(MIB), Buffer.from(expected.subarray(MIB)))).toBe(0);
    }
  });

  it('fuzz: mutated images fail only with FormatError', async () => {
    const img = await base();
    // Where the metadata lives: identifier, headers, region tables, metadata table+items, BAT.
    const zones = [
      [0, 600],
      [64 * 1024, 80],
      [128 * 1024, 80],
      [192 * 1024, 112],
      [256 * 1024, 112],
      [META_AT, 200],
      [META_AT + 64 * 1024, 40],
      [BAT_AT, 64],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ zone: fc.nat(zones.length - 1), where: fc.nat(), value: fc.nat(255) }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (edits, fixChecksums) => {
          const buf = Buffer.from(img);
          for (const e of edits) buf[zones[e.zone][0] + (e.where % zones[e.zone][1])] = e.value;
          if (fixChecksums) {
            resealHeaders(buf);
            resealRegions(buf);
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

describe('VHDX log replay in memory (issue 17 item 9)', () => {
  // sampleDisk(3 MiB) with 1 MiB blocks: blocks 0, 1, 2 stored at 4, 5 and 6 MiB; the file is 7 MiB.
  const FILE = 7 * MIB;
  const base = () => writeVhdx(sampleDisk(3 * MIB).disk, { block_size: '1M' });
  const expected = () => Buffer.from(sampleDisk(3 * MIB).expected);
  const sector = (seed: number) => fill(4096, seed);
  const entry = (
    sequence: bigint,
    tail: number,
    writes: Parameters<typeof vhdxLogEntry>[0]['writes'],
    extra: Partial<Parameters<typeof vhdxLogEntry>[0]> = {},
  ) => vhdxLogEntry({ sequence, tail, writes, flushedFileOffset: FILE, lastFileOffset: FILE, ...extra });
  /** The BAT's first sector with payload block `block` set to `state` at `offset`. */
  async function batSector(img: Buffer, block: number, state: number, offset: number): Promise<Uint8Array> {
    const s = Uint8Array.from(img.subarray(BAT_AT, BAT_AT + 4096));
    encodeBatEntry(new DataView(s.buffer), block * 8, state, offset);
    return s;
  }
  async function readLogged(img: Buffer) {
    const before = Buffer.from(img);
    const r = await openBuf(img);
    const data = await readAll(r);
    expect(img.equals(before)).toBe(true); // nothing written to the input
    return { data, details: r.details() };
  }

  it('a data descriptor on a payload sector: reads see the replayed sector', async () => {
    const img = await base();
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: 5 * MIB + 8192, data: sector(9) }]) }]));
    const want = expected();
    want.set(sector(9), MIB + 8192);
    expect(got.data.equals(want)).toBe(true);
    expect(got.details.logReplayedInMemory).toBe(1);
  });

  it('an entry whose checksum is wrong is no log to replay: the file opens as it is (as qemu)', async () => {
    const img = await base();
    const bad = entry(1n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    bad[200] ^= 1; // inside the descriptor sector, under the CRC
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: bad }]));
    expect(got.data.equals(expected())).toBe(true);
    expect(got.details.logReplayedInMemory).toBeUndefined();
    // The same for another LogGuid, a data sector with another sequence number, and sequence number 0.
    const other = entry(1n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }], { logGuid: '01234567-89ab-cdef-0123-456789abcdef' });
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: other }]))).data.equals(expected())).toBe(true);
    const seq0 = entry(0n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: seq0 }]))).data.equals(expected())).toBe(true);
    const dataSeq = entry(7n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    dataSeq.writeUInt32LE(8, 4096 + 4092); // SequenceLow of the data sector
    dataSeq.writeUInt32LE(0, 4);
    dataSeq.writeUInt32LE(crc32c(dataSeq), 4);
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: dataSeq }]))).data.equals(expected())).toBe(true);
  });

  it('data and zero descriptors on the BAT: a block moved, a block dropped', async () => {
    const img = await base();
    // Block 0 now points at block 2's data; block 1 is NOT_PRESENT.
    const bat = await batSector(img, 0, 6, 6 * MIB);
    encodeBatEntry(new DataView(bat.buffer), 8, 0, 0);
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: BAT_AT, data: bat }]) }]));
    const want = Buffer.alloc(3 * MIB);
    want.set(expected().subarray(2 * MIB), 0);
    want.set(expected().subarray(2 * MIB), 2 * MIB);
    expect(got.data.equals(want)).toBe(true);
    // A zero descriptor over the whole BAT sector: every block reads as zeros.
    const zeroed = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: BAT_AT, zeroLength: 4096 }]) }]));
    expect(zeroed.data.every((b) => b === 0)).toBe(true);
  });

  it('a new block past the end of the file (LastFileOffset), as an allocating write leaves it', async () => {
    const img = await base();
    const bat = await batSector(img, 1, 6, FILE); // block 1 moves to a new block at the end of the file
    const log = entry(
      1n,
      0,
      [
        { fileOffset: BAT_AT, data: bat },
        { fileOffset: FILE + 4096, data: sector(5) },
      ],
      { lastFileOffset: FILE + MIB },
    );
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: log }]));
    const want = expected();
    want.fill(0, MIB, 2 * MIB);
    want.set(sector(5), MIB + 4096);
    expect(got.data.equals(want)).toBe(true);
  });

  it('the active sequence: contiguous sequence numbers, the highest head, replayed from its Tail, wrapping around the ring', async () => {
    const img = await base();
    const at = (seed: number) => ({ fileOffset: 4 * MIB, data: sector(seed) });
    const e1 = entry(5n, 0, [at(1)]); // 2 sectors each
    const e2 = entry(6n, 0, [at(2)]);
    const want = (seed: number) => {
      const w = expected();
      w.set(sector(seed), 0);
      return w;
    };
    // 5 then 6: both applied, in order.
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e2 },
          ]),
        )
      ).data.equals(want(2)),
    ).toBe(true);
    // 5 then 7 (a gap): two sequences; 7 is the higher head and its own tail.
    const e7 = entry(7n, 8192, [at(3)]);
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e7 },
          ]),
        )
      ).data.equals(want(3)),
    ).toBe(true);
    // 7's Tail names an entry outside its sequence: 7 is incomplete, so 5 is the log to replay.
    const e7bad = entry(7n, 0, [at(3)]);
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e7bad },
          ]),
        )
      ).data.equals(want(1)),
    ).toBe(true);
    // An entry across the end of the 1 MiB ring, and the next one at its start.
    const end = MIB - 4096;
    const w1 = entry(10n, end, [at(4)]);
    const w2 = entry(11n, end, [at(5)]);
    const wrapped = await readLogged(
      withVhdxLog(img, [
        { at: end, entry: w1 },
        { at: 4096, entry: w2 },
      ]),
    );
    expect(wrapped.data.equals(want(5))).toBe(true);
    expect(wrapped.details.logReplayedInMemory).toBe(2);
  });

  it('refuses a log that says the file was longer when it was written (FlushedFileOffset past the end), as qemu', async () => {
    const img = await base();
    const log = entry(1n, 0, [{ fileOffset: 4 * MIB, data: sector(1) }], { flushedFileOffset: FILE + MIB });
    await expectFormatError(withVhdxLog(img, [{ at: 0, entry: log }]), /cut short/);
  });

  it('refuses a log of overlapping entries that would have it read the log once per sector', async () => {
    const img = await base();
    // Every sector starts an entry that claims to be as long as the whole log (none with a CRC that holds).
    const entries = Array.from({ length: 256 }, (_, k) => {
      const e = vhdxLogEntry({ sequence: BigInt(k + 1), tail: k * 4096, writes: [], flushedFileOffset: FILE, lastFileOffset: FILE });
      const long = Buffer.alloc(4096);
      e.copy(long, 0, 0, 4096);
      long.writeUInt32LE(MIB, 8); // EntryLength: the whole log
      return { at: k * 4096, entry: long };
    });
    await expectFormatError(withVhdxLog(img, entries), /overlap one another/);
  });

  it('fuzz: mutated logs fail only with FormatError', async () => {
    const img = withVhdxLog(await base(), [
      {
        at: 0,
        entry: entry(5n, 0, [
          { fileOffset: 4 * MIB, data: sector(1) },
          { fileOffset: BAT_AT + 4096, zeroLength: 8192 },
        ]),
      },
      { at: 8192, entry: entry(6n, 0, [{ fileOffset: 5 * MIB, data: sector(2) }]) },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ where: fc.nat(5 * 4096 - 1), value: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async (edits, fixCrc) => {
          const buf = Buffer.from(img);
          for (const e of edits) buf[MIB + e.where] = e.value;
          if (fixCrc)
            for (const [at, len] of [
              [0, 8192],
              [8192, 8192],
            ])
              reseal(buf, MIB + at, len);
          try {
            await readAll(await openBuf(buf));
          } catch (e) {
            if (!(e instanceof FormatError)) throw e;
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
