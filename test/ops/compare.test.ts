/**
 * `diskmint compare` against `qemu-img compare`, the peer it stands in for: the same verdict
 * (exit 0 or 1) and the same mismatch offset (qemu-img reports the start of the first differing
 * 512-byte sector) on random disks in assorted formats, sizes that differ with and without data
 * past the smaller disk's end, and strict mode.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildImage, compareImages, convertImage, VirtualDisk, writeImage } from '../../src/index.js';
import { firstDifference, POOLED_READS, SYNC_READS, type ComparableDisk } from '../../src/ops/compare.js';
import { requirePeer } from '../helpers/peer.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;
const FORMATS = ['raw', 'qcow2', 'vmdk', 'vhdx'] as const;

function qemuCompare(a: string, b: string, strict: boolean): { status: number; offset?: number } {
  const r = spawnSync('qemu-img', ['compare', ...(strict ? ['-s'] : []), a, b], { encoding: 'utf8' });
  const m = /Content mismatch at offset (\d+)!/.exec(r.stdout);
  return { status: r.status ?? -1, offset: m ? Number(m[1]) : undefined };
}

type Piece = { at: number; length: number; seed: number };

/**
 * A disk of `size` bytes with `pieces` of data (each byte non-zero), `edits` written over them
 * (single bytes), each piece one extent.
 */
function diskWith(size: number, pieces: Piece[], edits: Array<[at: number, value: number]> = []): VirtualDisk {
  const model = new Uint8Array(size);
  const extents: Array<[number, number]> = [];
  let end = 0;
  for (const p of [...pieces].sort((x, y) => x.at - y.at)) {
    const at = Math.max(p.at, end);
    const length = Math.min(p.length, size - at);
    if (length <= 0) continue;
    for (let i = 0; i < length; i++) model[at + i] = ((at + i) * 7 + p.seed) % 255 || 1;
    extents.push([at, length]);
    end = at + length;
  }
  for (const [at, value] of edits) {
    model[at] = value;
    if (!extents.some(([s, n]) => at >= s && at < s + n)) extents.push([at, 1]);
  }
  const disk = new VirtualDisk(size);
  for (const [at, length] of extents) disk.placeBytes(at, model.slice(at, at + length));
  return disk;
}

const pieceArb = fc.record({ at: fc.nat(4096 * KiB), length: fc.integer({ min: 1, max: 200 * KiB }), seed: fc.nat(250) });

describe('compareImages', () => {
  it('agrees with qemu-img compare: verdict and mismatch offset, across formats and sizes (property)', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(pieceArb, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(...FORMATS),
        fc.constantFrom(...FORMATS),
        fc.option(fc.nat(4608 * KiB - 1), { nil: undefined }), // a byte of B to change, if any
        fc.constantFrom(0, 512 * KiB), // B is larger by this much
        fc.boolean(), // ... with data in that tail
        fc.boolean(), // strict
        async (pieces, formatA, formatB, change, extra, tailData, strict) => {
          const size = 4608 * KiB;
          const a = join(dir, `a${n}.${formatA}`);
          const b = join(dir, `b${n++}.${formatB}`);
          await writeImage(diskWith(size, pieces), a, { format: formatA, progress: false });
          const edits: Array<[number, number]> = change === undefined ? [] : [[change, 0xee]];
          if (extra && tailData) edits.push([size + extra - 700, 9]);
          await writeImage(diskWith(size + extra, pieces, edits), b, { format: formatB, progress: false });
          const ours = await compareImages(a, b, { strict });
          // qemu-img's -s also fails on allocation that differs (formats allocate differently by
          // design); diskmint's --strict is about sizes only, so equal sizes are judged without it.
          const theirs = qemuCompare(a, b, strict && extra > 0);
          expect(ours.identical ? 0 : 1).toBe(theirs.status);
          if (theirs.offset !== undefined) expect(ours.firstDifferenceSector).toBe(theirs.offset);
          if (!ours.identical && ours.reason === 'content') expect(theirs.offset).toBeDefined();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('reads read ahead (POOLED_READS) or one at a time (SYNC_READS) find the same first difference as a byte loop (property)', async () => {
    /** A disk in memory; `delay` makes its reads settle later, as reads on libuv's threads do. */
    const memoryDisk = (bytes: Uint8Array, delay: boolean): ComparableDisk => ({
      size: bytes.length,
      async read(offset, length, into) {
        if (delay) await new Promise((r) => setImmediate(r));
        const part = bytes.subarray(offset, offset + length);
        if (!into) return part.slice();
        into.set(part);
        return into.subarray(0, part.length);
      },
      allocatedRanges: async function* () {
        yield { offset: 0, length: bytes.length };
      },
      close: async () => {},
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 << 20 }),
        fc.integer({ min: 0, max: 6 << 20 }),
        fc.array(fc.nat(6 << 20), { maxLength: 3 }),
        fc.boolean(),
        async (sizeA, sizeB, changes, delay) => {
          const a = new Uint8Array(sizeA);
          for (let i = 0; i < sizeA; i += 4093) a[i] = (i % 251) + 1;
          const b = new Uint8Array(sizeB);
          b.set(a.subarray(0, sizeB));
          for (const at of changes) if (at < sizeB) b[at] ^= 0x5a;
          let expected: number | undefined;
          for (let i = 0; i < Math.max(sizeA, sizeB) && expected === undefined; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) expected = i;
          for (const reads of [POOLED_READS, SYNC_READS]) expect(await firstDifference(memoryDisk(a, delay), memoryDisk(b, delay), reads)).toBe(expected);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('finds a difference many read-ahead chunks in (buffers reused), and none between equal disks', async () => {
    const dir = tempDir();
    const size = 24 << 20;
    const pieces = [{ at: 0, length: size, seed: 1 }];
    const a = join(dir, 'a.vmdk');
    const same = join(dir, 'same.qcow2');
    const other = join(dir, 'other.qcow2');
    await writeImage(diskWith(size, pieces), a, { format: 'vmdk', progress: false });
    await writeImage(diskWith(size, pieces), same, { format: 'qcow2', progress: false });
    await writeImage(diskWith(size, pieces, [[(19 << 20) + 77, 0]]), other, { format: 'qcow2', progress: false });
    expect((await compareImages(a, same)).identical).toBe(true);
    expect(await compareImages(a, other)).toMatchObject({ identical: false, firstDifference: (19 << 20) + 77 });
  });

  it('IMG:N compares a partition: with the file written into it, through any container', async () => {
    const dir = tempDir();
    const file = join(dir, 'os.bin');
    const bytes = Buffer.alloc(300 * KiB);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) % 251 || 1;
    writeFileSync(file, bytes);
    const img = join(dir, 'fw.img');
    const layout = {
      scheme: 'gpt' as const,
      partitions: [
        { type: 'efi', size: '1M' },
        { type: 'freebsd-ufs', size: '2M', contents: { file: 'os.bin' } },
      ],
    };
    await buildImage(layout, { output: img, baseDir: dir });
    const vmdk = join(dir, 'fw.vmdk');
    await convertImage(img, vmdk, { progress: false });
    for (const image of [img, vmdk]) {
      expect(await compareImages(`${image}:2`, file)).toMatchObject({ identical: true, a: { size: 2 << 20 }, b: { size: bytes.length } });
      expect((await compareImages(`${image}:2`, file, { strict: true })).reason).toBe('size');
      expect((await compareImages(`${image}:1`, file)).firstDifference).toBe(0);
    }
    bytes[123456] ^= 1;
    writeFileSync(file, bytes);
    expect((await compareImages(`${vmdk}:2`, file)).firstDifference).toBe(123456);
    await expect(compareImages(`${img}:9`, file)).rejects.toThrow(/has no partition 9 \(it has 1, 2\)/);
  });

  it('names the first differing byte exactly, and compares both ways the same', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.qcow2');
    const b = join(dir, 'b.img');
    await writeImage(diskWith(1 << 20, [{ at: 1000, length: 5000, seed: 3 }]), a, { format: 'qcow2', progress: false });
    const changed = diskWith(1 << 20, [{ at: 1000, length: 5000, seed: 3 }], [[4321, 0]]);
    await writeImage(changed, b, { format: 'raw', progress: false });
    const ab = await compareImages(a, b);
    expect(ab).toMatchObject({ identical: false, firstDifference: 4321, firstDifferenceSector: 4096, reason: 'content' });
    expect((await compareImages(b, a)).firstDifference).toBe(4321);
    expect((await compareImages(a, a)).identical).toBe(true);
  });
});
