/**
 * VHD reader: footers (fixed and dynamic, the copy at 0, the old 511-byte footer, current_size)
 * and hostile input, each refused with a FormatError naming what is wrong; a mutation fuzz.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { vhdChecksum } from '../../formats/containers/vhd.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { expectPrefixThenZeros, readAll, sampleDisk } from '../helpers/containers.js';
import { MIB, openBuf, readBuf, writeVhd } from './vhd-helpers.js';

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
