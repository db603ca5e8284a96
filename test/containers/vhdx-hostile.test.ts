/**
 * VHDX reader on hostile input: headers, region tables, metadata, the BAT and overlapping
 * structures, each refused with a FormatError; blocks that read as zeros; a mutation fuzz.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { encodeGuid } from '../../formats/common/guid.js';
import { META } from '../../formats/containers/vhdx.js';
import { encodeBatEntry } from '../../formats/containers/vhdx-bat.js';
import { expectPrefixThenZeros, fill, readAll, sampleDisk } from '../helpers/containers.js';
import { BAT_AT, META_AT, MIB, expectFormatError, openBuf, resealHeaders, resealRegions, writeVhdx } from './vhdx-helpers.js';

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
