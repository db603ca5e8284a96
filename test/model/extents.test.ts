import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualDisk, writeRawImage, DiskmintError } from '../../src/index.js';
import { FileCache, readVirtualRange } from '../../src/io/run-reader.js';
import { isAllZero, readBlocks } from '../../src/containers/blocks.js';
import { tempDir } from '../helpers/golden.js';

/** A random disk: non-overlapping extents of bytes, file ranges and nested disks, plus the bytes it should read as. */
const MiB = 1 << 20;

const diskArb = fc.record({
  size: fc.integer({ min: 1, max: 300_000 }),
  pieces: fc.array(
    fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 70_000 }), kind: fc.constantFrom('bytes', 'file', 'disk', 'zeros'), seed: fc.nat(255) }),
    { maxLength: 8 },
  ),
});

function makeDisk(spec: { size: number; pieces: Array<{ at: number; len: number; kind: string; seed: number }> }, dir: string) {
  const disk = new VirtualDisk(spec.size);
  const expected = new Uint8Array(spec.size);
  const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff || 1);
  let cursor = 0;
  for (const [i, p] of spec.pieces.entries()) {
    const at = cursor + (p.at % 20_000);
    const len = Math.min(p.len, spec.size - at);
    if (len <= 0) break;
    const data = p.kind === 'zeros' ? new Uint8Array(len) : fill(len, p.seed);
    if (p.kind === 'bytes' || p.kind === 'zeros') disk.placeBytes(at, data);
    else if (p.kind === 'file') {
      const path = join(dir, `f${i}.bin`);
      writeFileSync(path, Buffer.concat([Buffer.alloc(100, 9), data]));
      disk.place(at, len, { kind: 'file', path, offset: 100 });
    } else {
      const inner = new VirtualDisk(len + 10).placeBytes(10, data.subarray(0, len));
      inner.placeBytes(0, new Uint8Array(10).fill(5));
      // place only the last `len` bytes of the inner disk: offset 10 skips its first 10.
      disk.place(at, len, { kind: 'disk', disk: inner, offset: 10 });
    }
    expected.set(data, at);
    cursor = at + len;
  }
  return { disk, expected };
}

describe('VirtualDisk', () => {
  it('refuses overlapping and out-of-range extents', () => {
    const d = new VirtualDisk(1000).placeBytes(100, new Uint8Array(100));
    expect(() => d.placeBytes(150, new Uint8Array(10))).toThrow(DiskmintError);
    expect(() => d.placeBytes(50, new Uint8Array(51))).toThrow(/overlaps/);
    expect(() => d.placeBytes(995, new Uint8Array(10))).toThrow(/does not fit/);
    d.placeBytes(200, new Uint8Array(10)); // touching is fine
    expect(d.list().map((e) => e.offset)).toEqual([100, 200]);
  });

  it('file, pipe and in-memory reads agree for random extent maps (property)', async () => {
    const dir = tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(diskArb, async (spec) => {
        const { disk, expected } = makeDisk(spec, dir);
        const out = join(dir, `out${n++}.img`);
        await writeRawImage(disk, out);
        expect(Buffer.compare(readFileSync(out), Buffer.from(expected))).toBe(0);
        const pipe = new PassThrough();
        const chunks: Buffer[] = [];
        pipe.on('data', (c: Buffer) => chunks.push(c));
        await writeRawImage(disk, '-', { stdout: pipe });
        expect(Buffer.compare(Buffer.concat(chunks), Buffer.from(expected))).toBe(0);
        const mid = Math.floor(spec.size / 3);
        expect(Buffer.from(await readVirtualRange(disk, mid, mid + 7)).equals(Buffer.from(expected.subarray(mid, 2 * mid + 7)))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('readBlocks gives every touched block with its bytes, fresh or from reused buffers (property)', async () => {
    const dir = tempDir();
    await fc.assert(
      fc.asyncProperty(diskArb, fc.constantFrom(512, 4096, 65536, 1 << 20), async (spec, blockSize) => {
        const { disk, expected } = makeDisk(spec, dir);
        const padded = new Uint8Array(Math.ceil(spec.size / blockSize) * blockSize);
        padded.set(expected);
        const seen: Record<string, number[]> = {};
        for (const reuseBuffers of [false, true]) {
          const fresh: Uint8Array[] = [];
          const indexes: number[] = [];
          for await (const { index, data } of readBlocks(disk, blockSize, { reuseBuffers })) {
            expect(data.length).toBe(blockSize);
            expect(Buffer.from(data).equals(Buffer.from(padded.subarray(index * blockSize, (index + 1) * blockSize))), `block ${index}`).toBe(true);
            indexes.push(index);
            fresh.push(data);
          }
          seen[String(reuseBuffers)] = indexes;
          // Fresh buffers stay valid after the loop: compare them again at the end.
          if (!reuseBuffers)
            fresh.forEach((d, k) =>
              expect(Buffer.from(d).equals(Buffer.from(padded.subarray(indexes[k] * blockSize, (indexes[k] + 1) * blockSize)))).toBe(true),
            );
        }
        expect(seen.true).toEqual(seen.false);
        // Blocks left out hold only zeros.
        const listed = new Set(seen.false);
        for (let b = 0; b * blockSize < spec.size; b++) if (!listed.has(b)) expect(isAllZero(padded.subarray(b * blockSize, (b + 1) * blockSize))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('readBlocks with reused buffers keeps the last heldBlocks blocks intact, whatever the read-ahead (property)', async () => {
    const dir = tempDir();
    await fc.assert(
      fc.asyncProperty(
        diskArb,
        fc.constantFrom(512, 4096, 65536),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom(undefined, 0, 65536, 2 * MiB),
        async (spec, blockSize, heldBlocks, readAheadBytes) => {
          const { disk, expected } = makeDisk(spec, dir);
          const padded = new Uint8Array(Math.ceil(spec.size / blockSize) * blockSize + blockSize);
          padded.set(expected);
          const window: Array<{ index: number; data: Uint8Array }> = [];
          for await (const block of readBlocks(disk, blockSize, { reuseBuffers: true, heldBlocks, readAheadBytes })) {
            window.push(block);
            if (window.length > heldBlocks) window.shift();
            for (const { index, data } of window) {
              expect(Buffer.from(data).equals(Buffer.from(padded.subarray(index * blockSize, (index + 1) * blockSize))), `held block ${index}`).toBe(true);
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('readBlocks keeps held blocks intact when each group holds one block (scattered data)', async () => {
    // fast-check's counterexample (seed -539938958): 512-byte blocks far apart, so every group
    // holds one block; 4 held blocks then spanned 4 groups where the ring counted 2 full ones,
    // and block 0's buffer was refilled while still held.
    const disk = new VirtualDisk(64 * MiB);
    const at = [0, 7 * MiB + 3, 19 * MiB + 5, 33 * MiB + 7, 50 * MiB + 9, 63 * MiB + 11];
    for (const [k, offset] of at.entries()) disk.placeBytes(offset, new Uint8Array([k + 1]));
    const window: Array<{ index: number; data: Uint8Array }> = [];
    for await (const block of readBlocks(disk, 512, { reuseBuffers: true, heldBlocks: 4, readAheadBytes: 2 * MiB })) {
      window.push(block);
      if (window.length > 4) window.shift();
      for (const { index, data } of window) {
        const k = at.findIndex((o) => Math.floor(o / 512) === index);
        expect(data[at[k] % 512], `held block ${index}`).toBe(k + 1);
      }
    }
  });

  it('readBlocks reads a block larger than its read piece (4 MiB) from several pieces', async () => {
    const dir = tempDir();
    const data = Buffer.alloc(9 * MiB + 3);
    for (let i = 0; i < data.length; i += 4093) data[i] = (i / 4093) % 251 || 1;
    writeFileSync(join(dir, 'big.bin'), data);
    const disk = new VirtualDisk(40 * MiB).place(MiB + 5, data.length, { kind: 'file', path: join(dir, 'big.bin'), offset: 0 });
    for (const reuseBuffers of [false, true]) {
      const got: number[] = [];
      for await (const { index, data: block } of readBlocks(disk, 16 * MiB, { reuseBuffers })) {
        got.push(index);
        const expected = Buffer.alloc(16 * MiB);
        data.copy(expected, MiB + 5);
        expect(Buffer.from(block).equals(expected)).toBe(true);
      }
      expect(got).toEqual([0]);
    }
  });

  it('isAllZero agrees with a byte loop (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 << 20 }), fc.option(fc.nat(), { nil: undefined }), (n, at) => {
        const data = new Uint8Array(n);
        if (at !== undefined && n) data[at % n] = 1 + (at % 255);
        expect(isAllZero(data)).toBe(data.every((b) => b === 0));
      }),
      { numRuns: 60 },
    );
  });

  it('leaves zero ranges, and zero blocks inside file data, as holes', async () => {
    const dir = tempDir();
    const data = Buffer.alloc(8 << 20);
    data.fill(7, 0, 64 << 10); // one 64 KiB block of data, then zeros
    writeFileSync(join(dir, 'in.bin'), data);
    const disk = new VirtualDisk(1 << 30).place(512 << 20, data.length, { kind: 'file', path: join(dir, 'in.bin'), offset: 0 });
    const out = join(dir, 'sparse.img');
    const r = await writeRawImage(disk, out);
    const st = statSync(out);
    expect(st.size).toBe(1 << 30);
    expect(r.bytesWritten).toBe(64 << 10);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
  });

  it('copies a file of many chunks, with zero blocks between data, byte for byte', async () => {
    const dir = tempDir();
    // 21 MiB + 5 bytes: 1 MiB copy pieces (little data: the smallest unit), four in flight at
    // once, the last one short.
    const data = Buffer.alloc((21 << 20) + 5);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0 || 1, i);
    data.fill(0, 3 << 20, 9 << 20); // zero blocks across two piece boundaries become holes
    writeFileSync(join(dir, 'in.bin'), data);
    const disk = new VirtualDisk(64 << 20)
      .placeBytes(0, Buffer.from('head'))
      .place(1 << 20, data.length, { kind: 'file', path: join(dir, 'in.bin'), offset: 0 });
    const out = join(dir, 'big.img');
    const r = await writeRawImage(disk, out);
    const image = readFileSync(out);
    expect(image.subarray(0, 4).toString()).toBe('head');
    expect(image.subarray(1 << 20, (1 << 20) + data.length).equals(data)).toBe(true);
    expect(r.bytesWritten).toBe(4 + data.length - (6 << 20));
    expect(statSync(out).blocks * 512).toBeLessThan(17 << 20);
  });

  it('copies a sparse 160 MiB input (4 MiB pieces for that much data) byte for byte, holes kept', async () => {
    const dir = tempDir();
    const input = join(dir, 'sparse-in.bin');
    const size = 160 << 20;
    const fd = openSync(input, 'w');
    ftruncateSync(fd, size);
    // Data that straddles 1, 2 and 4 MiB boundaries (relative to the input and to the image), at odd offsets.
    const spans = [
      [0, 5000],
      [(4 << 20) - 777, 3000],
      [(99 << 20) + 13, 9 << 20],
      [size - 4097, 4097],
    ] as const;
    for (const [at, length] of spans) {
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = ((at + i) * 31) % 251 || 1;
      writeSync(fd, bytes, 0, length, at);
    }
    closeSync(fd);
    const offset = (1 << 20) + 512;
    const disk = new VirtualDisk(offset + size + (1 << 20)).place(offset, size, { kind: 'file', path: input, offset: 0 });
    const out = join(dir, 'out.img');
    const r = await writeRawImage(disk, out);
    const image = readFileSync(out);
    expect(image.length).toBe(disk.size);
    expect(image.subarray(offset, offset + size).equals(readFileSync(input))).toBe(true);
    expect(image.subarray(0, offset).every((b) => b === 0)).toBe(true);
    expect(r.bytesWritten).toBeLessThan(16 << 20); // the holes between the spans stay holes
    expect(statSync(out).blocks * 512).toBeLessThan(24 << 20);
  });

  it('keeps few input files open, whatever the number of files (no EMFILE on big trees)', async () => {
    const dir = tempDir();
    const count = 300;
    const disk = new VirtualDisk(count * 4096);
    for (let i = 0; i < count; i++) {
      writeFileSync(join(dir, `f${i}`), Buffer.alloc(4096, (i % 255) + 1));
      disk.place(i * 4096, 4096, { kind: 'file', path: join(dir, `f${i}`), offset: 0 });
    }
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = openFds();
    const files = new FileCache();
    let most = 0;
    for (let i = 0; i < count; i++) await files.withFile(join(dir, `f${i}`), async () => void (most = Math.max(most, openFds() - before)));
    await files.closeAll();
    // 64 idle + the one in use, plus evicted handles whose close() is still in flight: far below 300.
    expect(most).toBeLessThanOrEqual(70);
    // The synchronous reads (small file parts) keep as few, and give each file's bytes.
    let mostSync = 0;
    const one = new Uint8Array(4096);
    for (let i = 0; i < count; i++) {
      files.readSync(join(dir, `f${i}`), one, 0);
      expect(one[4095]).toBe((i % 255) + 1);
      mostSync = Math.max(mostSync, openFds() - before);
    }
    expect(mostSync).toBeLessThanOrEqual(64);
    await files.closeAll();
    expect(openFds()).toBe(before);
    const out = join(dir, 'all.img');
    await writeRawImage(disk, out);
    const image = readFileSync(out);
    for (let i = 0; i < count; i++) expect(image[i * 4096 + 4095]).toBe((i % 255) + 1);
  });

  it('writes atomically: a failing input leaves neither the target nor a temp file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'short.bin'), Buffer.alloc(10, 1));
    const disk = new VirtualDisk(4096).place(0, 100, { kind: 'file', path: join(dir, 'short.bin'), offset: 0 });
    const out = join(dir, 'never.img');
    await expect(writeRawImage(disk, out)).rejects.toThrow(/shorter than expected/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual(['short.bin']);
  });

  it('replaces an existing target only when the new image is complete', async () => {
    const dir = tempDir();
    const out = join(dir, 'img');
    writeFileSync(out, 'old');
    const bad = new VirtualDisk(10).place(0, 5, { kind: 'file', path: join(dir, 'missing'), offset: 0 });
    await expect(writeRawImage(bad, out)).rejects.toThrow();
    expect(readFileSync(out, 'utf8')).toBe('old');
    await writeRawImage(new VirtualDisk(10).placeBytes(0, Buffer.from('new')), out);
    expect(readFileSync(out).subarray(0, 3).toString()).toBe('new');
  });
});
