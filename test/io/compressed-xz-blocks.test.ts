/**
 * Multi-block .xz files (xz -T) decoded block by block on worker threads (xz-blocks.ts,
 * xz-parallel.ts): the blocks come from the file's index; each batch, made a stream of its own,
 * decodes to the same bytes as `xz -dc` gives for the whole file. A one-block file, a truncated
 * file and a damaged block take the streaming path or fail with a DecodeError.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32 } from '../../formats/common/crc32.js';
import { DecodeError, decompressedChunks } from '../../src/io/compressed/decode.js';
import { XZ_HEADER_SIZE, xzBlocksStream, xzIndexSize, xzLayout, type XzBlock, type XzLayout } from '../../src/io/compressed/xz-blocks.js';
import { parallelXzLayout } from '../../src/io/compressed/xz-parallel.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;
let dir: string;
let raw: Buffer;

async function decoded(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of decompressedChunks(path, 'xz')) parts.push(Buffer.from(c)); // a copy: chunks are reused
  return Buffer.concat(parts);
}

beforeAll(() => {
  dir = tempDir('diskmint-xz-blocks-');
  // Data, a long zero run, data again: blocks that compress well and blocks that do not.
  raw = Buffer.alloc(12 * MiB);
  for (let i = 0; i < 3 * MiB; i++) raw[i] = (i * 2654435761) >>> 24;
  for (let i = 9 * MiB; i < raw.length; i++) raw[i] = (i * 131 + (i >> 9)) & 0xff;
  writeFileSync(join(dir, 'card.img'), raw);
});

describe('multi-block xz', () => {
  it('xz -T2 with 256 KiB blocks: the index gives every block, and the parallel decode equals the image', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = join(dir, 'blocks.img.xz');
    writeFileSync(path, execFileSync('xz', ['-c', '-0', '-T2', '--block-size=256KiB', join(dir, 'card.img')], { maxBuffer: 64 * MiB }));
    const layout = await parallelXzLayout(path);
    expect(layout?.blocks.length).toBe(48);
    expect(layout?.size).toBe(raw.length);
    expect((await decoded(path)).equals(raw)).toBe(true);
  });

  it('a one-block file (xz -T1) is streamed, and decodes the same', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = join(dir, 'one.img.xz');
    writeFileSync(path, execFileSync('xz', ['-c', '-0', '-T1', join(dir, 'card.img')], { maxBuffer: 64 * MiB }));
    expect(await parallelXzLayout(path)).toBeUndefined();
    expect((await decoded(path)).equals(raw)).toBe(true);
  });

  it('a truncated file has no index to cut by: the stream decoder reports it', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = join(dir, 'cut.img.xz');
    copyFileSync(join(dir, 'blocks.img.xz'), path);
    truncateSync(path, Math.floor(readFileSync(path).length / 2));
    expect(await parallelXzLayout(path)).toBeUndefined();
    await expect(decoded(path)).rejects.toBeInstanceOf(DecodeError);
  });

  it('a damaged block fails the parallel decode with a DecodeError', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const path = join(dir, 'bad.img.xz');
    const bytes = readFileSync(join(dir, 'blocks.img.xz'));
    const layout = (await parallelXzLayout(join(dir, 'blocks.img.xz')))!;
    const victim = layout.blocks[5];
    bytes[victim.fileOffset + Math.floor(victim.totalSize / 2)] ^= 0x55; // inside its data: the index is intact
    writeFileSync(path, bytes);
    expect(await parallelXzLayout(path)).toBeDefined();
    await expect(decoded(path)).rejects.toBeInstanceOf(DecodeError);
  });

  it('a stream made of some of the blocks passes xz -t and decodes to their bytes', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const file = readFileSync(join(dir, 'blocks.img.xz'));
    const layout = (await parallelXzLayout(join(dir, 'blocks.img.xz')))!;
    const some = layout.blocks.slice(10, 14);
    const bytes = file.subarray(some[0].fileOffset, some[3].fileOffset + some[3].totalSize);
    const path = join(dir, 'some.xz');
    writeFileSync(path, Buffer.concat(xzBlocksStream(layout, some, bytes)));
    execFileSync('xz', ['-t', path]);
    const out = execFileSync('xz', ['-dc', path], { maxBuffer: 64 * MiB });
    expect(out.equals(raw.subarray(some[0].outputOffset, some[3].outputOffset + some[3].outputSize))).toBe(true);
  });
});

describe('xz index codec', () => {
  /** A stream header (section 2.1.1.1-2.1.1.3) with check type `check`. */
  const header = (check: number) => {
    const h = new Uint8Array(XZ_HEADER_SIZE);
    h.set([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, check]);
    new DataView(h.buffer).setUint32(8, crc32(h.subarray(6, 8)), true);
    return h;
  };

  it('reads back the blocks of any stream it writes', () => {
    const sizes = fc.array(fc.record({ unpadded: fc.integer({ min: 5, max: 5000 }), output: fc.nat({ max: 2 ** 40 }) }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(sizes, fc.constantFrom(0, 1, 4, 10), (list, check) => {
        const blocks: XzBlock[] = [];
        let [fileOffset, outputOffset] = [XZ_HEADER_SIZE, 0];
        for (const { unpadded, output } of list) {
          const totalSize = Math.ceil(unpadded / 4) * 4;
          blocks.push({ fileOffset, totalSize, unpaddedSize: unpadded, outputOffset, outputSize: output });
          fileOffset += totalSize;
          outputOffset += output;
        }
        const layout: XzLayout = { header: header(check), blocks, size: outputOffset };
        const parts = xzBlocksStream(layout, blocks, new Uint8Array(fileOffset - XZ_HEADER_SIZE));
        const file = Buffer.concat(parts);
        const footer = file.subarray(file.length - XZ_HEADER_SIZE);
        const indexSize = xzIndexSize(footer)!;
        const index = file.subarray(file.length - XZ_HEADER_SIZE - indexSize, file.length - XZ_HEADER_SIZE);
        const back = xzLayout(file.subarray(0, XZ_HEADER_SIZE), index, footer, file.length);
        expect(back?.blocks).toEqual(blocks);
        expect(back?.size).toBe(outputOffset);
        // One byte off anywhere in the index, and it is not taken.
        const bad = Buffer.from(index);
        bad[Math.floor(bad.length / 2)] ^= 1;
        expect(xzLayout(file.subarray(0, XZ_HEADER_SIZE), bad, footer, file.length)).toBeUndefined();
        // Nor for a file of another length (stream padding, a second stream).
        expect(xzLayout(file.subarray(0, XZ_HEADER_SIZE), index, footer, file.length + 4)).toBeUndefined();
      }),
    );
  });
});
