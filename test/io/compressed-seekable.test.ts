/**
 * Compressed images read by unit (src/io/compressed/seekable.ts): an .xz of many blocks (made by
 * xz itself) and a zstd of many frames read as the raw bytes they hold at any offset, decoding
 * only what a read covers; `info` reads the tables without a temp file, the data ranges decode
 * the image once into one; a container inside reads as that container; a damaged unit fails the
 * reads that need it, naming it, and no other; one block or one frame keeps the decode-it-all path.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openSeekableCompressed } from '../../src/io/compressed/seekable.js';
import { openDisk } from '../../src/io/open-disk.js';
import { createCompressor } from '../../src/containers/compress.js';
import { buildImage, convertImage, flashImage, inspectImage } from '../../src/index.js';
import { concatBytes } from '../../formats/common/bytes.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const KiB = 1024;
const MiB = 1 << 20;

let dir: string;
/** A 6 MiB disk: patterned data, a hole, data again. */
let plain: Uint8Array;

beforeAll(() => {
  dir = tempDir('diskmint-seekable-');
  plain = new Uint8Array(6 * MiB);
  for (let i = 0; i < 2 * MiB; i++) plain[i] = (i * 131 + (i >> 9)) & 0xff;
  for (let i = 4 * MiB + 1000; i < 5 * MiB; i++) plain[i] = (i * 7) & 0xff || 1;
  writeFileSync(join(dir, 'disk.raw'), plain);
});

/** `data` as an .xz of `blockSize` blocks, by xz. */
function xzOf(name: string, data: Uint8Array, blockSize: number): string {
  const path = join(dir, name);
  writeFileSync(path, execFileSync('xz', ['-c', '-T1', `--block-size=${blockSize}`], { input: data, maxBuffer: 64 * MiB }));
  return path;
}

/** `data` as a zstd stream of one frame per `frameSize` bytes (each records its size), as diskmint's .zst output writes. */
async function zstdOf(name: string, data: Uint8Array, frameSize: number): Promise<string> {
  const compressor = createCompressor({ threads: 1 });
  try {
    const frames = [];
    for (let at = 0; at < data.length; at += frameSize) frames.push(await compressor.compress(data.subarray(at, at + frameSize), 'zstd'));
    const path = join(dir, name);
    writeFileSync(path, concatBytes(frames));
    return path;
  } finally {
    await compressor.close();
  }
}

const tempEntries = () => readdirSync(process.env.TMPDIR ?? tmpdir()).filter((n) => n.startsWith('.diskmint-decompressed.img.')).length;

describe('seekable compressed images', () => {
  it('an .xz of many blocks and a zstd of many frames read as the raw bytes at any offset (property)', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const files = [xzOf('blocks.xz', plain, 256 * KiB), await zstdOf('frames.zst', plain, 384 * KiB)];
    for (const path of files) {
      const seekable = await openSeekableCompressed(path, path.endsWith('.xz') ? 'xz' : 'zstd');
      expect(seekable).toBeDefined();
      try {
        expect(seekable!.size).toBe(plain.length);
        expect(seekable!.units).toBe(path.endsWith('.xz') ? 24 : 16);
        await fc.assert(
          fc.asyncProperty(fc.nat(plain.length + 100), fc.nat(3 * MiB), async (offset, length) => {
            const got = await seekable!.read(offset, length);
            const start = Math.min(offset, plain.length);
            expect(Buffer.from(got).equals(Buffer.from(plain.subarray(start, Math.min(plain.length, start + length))))).toBe(true);
          }),
          { numRuns: 40 },
        );
      } finally {
        await seekable!.close();
      }
    }
  });

  it('info reads the tables without a temp file; the data ranges decode the image once into one, removed at close', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const card = join(dir, 'card.img');
    await buildImage(
      { scheme: 'gpt', size: '40M', partitions: [{ type: 'freebsd-ufs', label: 'os', size: '8M', contents: { file: 'disk.raw' } }] },
      { output: card, baseDir: dir, progress: false },
    );
    const packed = xzOf('card.img.xz', readFileSync(card), 1 * MiB);
    const before = tempEntries();
    const info = await inspectImage(packed);
    expect(info.table?.partitions.map((p) => p.label)).toEqual(['os']);
    expect(tempEntries()).toBe(before);
    const { reader } = await openDisk(packed);
    try {
      const ranges = [];
      for await (const r of reader.allocatedRanges()) ranges.push(r);
      expect(tempEntries()).toBe(before + 1);
      const { reader: direct } = await openDisk(card);
      const expected = [];
      for await (const r of direct.allocatedRanges()) expected.push(r);
      await direct.close();
      expect(ranges).toEqual(expected);
      const back = await reader.read(0, reader.size);
      expect(Buffer.from(back).equals(readFileSync(card))).toBe(true);
    } finally {
      await reader.close();
    }
    expect(tempEntries()).toBe(before);
  });

  it('a qcow2 inside a many-block .xz opens as that qcow2 and converts to the raw disk (qemu-img compare)', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils') || !requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const qcow2 = join(dir, 'disk.qcow2');
    await convertImage(join(dir, 'disk.raw'), qcow2, { format: 'qcow2' });
    const packed = xzOf('disk.qcow2.xz', readFileSync(qcow2), 128 * KiB);
    const before = tempEntries();
    const { reader, format, compression } = await openDisk(packed);
    await reader.close();
    expect({ format, compression }).toEqual({ format: 'qcow2', compression: 'xz' });
    const out = join(dir, 'back.raw');
    await convertImage(packed, out, { format: 'raw' });
    expect(tempEntries()).toBe(before); // the qcow2's own tables say where its data is
    expect(runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', out, join(dir, 'disk.raw')])).toEqual({ status: 0, out: 'Images are identical.\n' });
  });

  it('a damaged block fails the reads that need it, naming the block; the others still read', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = xzOf('damaged.xz', plain, 512 * KiB);
    const layout = execFileSync('xz', ['--robot', '-lvv', path], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('block\t'))
      .map((l) => l.split('\t'));
    // xz --robot -lvv block lines: 'block', stream, block in stream, block in file, compressed offset, uncompressed offset, compressed size, ...
    const [, , , , compressedOffset, , compressedSize] = layout[2];
    const bytes = readFileSync(path);
    bytes[Number(compressedOffset) + Math.floor(Number(compressedSize) / 2)] ^= 0x55;
    writeFileSync(path, bytes);
    const seekable = await openSeekableCompressed(path, 'xz');
    try {
      await expect(seekable!.read(2 * 512 * KiB + 10, 100)).rejects.toThrow(`${path}: block 3 of 12 is damaged`);
      const around = await seekable!.read(0, 2 * 512 * KiB);
      expect(Buffer.from(around).equals(Buffer.from(plain.subarray(0, 2 * 512 * KiB)))).toBe(true);
      const after = await seekable!.read(3 * 512 * KiB, 512 * KiB);
      expect(Buffer.from(after).equals(Buffer.from(plain.subarray(3 * 512 * KiB, 4 * 512 * KiB)))).toBe(true);
    } finally {
      await seekable!.close();
    }
  });

  it('flash decodes a many-block qcow2.xz whole first: a damaged last block is refused before any write', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const qcow2 = join(dir, 'flash.qcow2');
    await convertImage(join(dir, 'disk.raw'), qcow2, { format: 'qcow2' });
    const path = xzOf('flash.qcow2.xz', readFileSync(qcow2), 128 * KiB);
    const blocks = execFileSync('xz', ['--robot', '-lvv', path], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('block\t'))
      .map((l) => l.split('\t'));
    const [, , , , compressedOffset, , compressedSize] = blocks[blocks.length - 1];
    const bytes = readFileSync(path);
    bytes[Number(compressedOffset) + Math.floor(Number(compressedSize) / 2)] ^= 0x55;
    writeFileSync(path, bytes);
    const dev = join(dir, 'flash.dev');
    writeFileSync(dev, new Uint8Array(8 * MiB).fill(0xa5));
    const before = readFileSync(dev);
    await expect(flashImage(path, dev, { yes: true })).rejects.toThrow(/damaged or truncated .*nothing was written/);
    expect(readFileSync(dev).equals(before)).toBe(true);
  });

  it('reads all over the image decode it whole once, past twice the cache, and the temp file serves them from then on; removed at close', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = xzOf('scattered.xz', plain, 256 * KiB);
    const before = tempEntries();
    const seekable = await openSeekableCompressed(path, 'xz', { cacheBytes: 512 * KiB }); // two units
    try {
      // Every unit in turn, twice: 12 MiB decoded unit by unit would be far past 1.5 MiB (a quarter of the image).
      for (let pass = 0; pass < 2; pass++)
        for (let at = 0; at < plain.length; at += 256 * KiB) {
          const got = await seekable!.read(at + 7, 1000);
          expect(Buffer.from(got).equals(Buffer.from(plain.subarray(at + 7, at + 1007)))).toBe(true);
          if (pass === 0 && at < 4 * 256 * KiB) expect(tempEntries()).toBe(before); // not yet: 1 MiB decoded
        }
      expect(tempEntries()).toBe(before + 1);
      const spans = (await seekable!.spooled()).spans;
      expect(spans.length).toBeGreaterThan(0);
    } finally {
      await seekable!.close();
    }
    expect(tempEntries()).toBe(before);
  });

  it('one block or one frame is not read by unit (decoded whole instead)', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    expect(await openSeekableCompressed(xzOf('one.xz', plain, 64 * MiB), 'xz')).toBeUndefined();
    expect(await openSeekableCompressed(await zstdOf('one.zst', plain, 64 * MiB), 'zstd')).toBeUndefined();
  });
});
