/**
 * The .xz container written by formats/common/xz-container.ts (The .xz File Format 1.2.1): random
 * data cut into random blocks, each block LZMA2 (stored chunks made by test/helpers/lzma2.ts, or
 * the real encoder's output where @napi-rs/lzma is installed), wrapped in one stream; our index
 * reader (xz-blocks.ts) finds every block where the container put it, and our xz decoders (the
 * parallel one for files of many blocks, the streaming one for one block) give back the data;
 * `xz -t` and `xz -dc` agree. The fields' encodings are checked against the spec on their own.
 */
import { execFileSync } from 'node:child_process';
import { concatBytes } from '../../formats/common/bytes.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../formats/common/crc32.js';
import { FormatError } from '../../formats/common/errors.js';
import {
  lzma2DictionaryProperty,
  lzma2DictionarySize,
  readXzVarint,
  writeXzVarint,
  xzBlockHeader,
  xzStream,
  xzStreamFooter,
  xzStreamHeader,
  type XzBlockInput,
} from '../../formats/common/xz-container.js';
import { lzma2Compress, threadMemoryBudget, xzConcurrency, xzEncoderAvailable, xzSettings } from '../../src/containers/raw/xz-writer.js';
import { totalmem } from 'node:os';
import { decompressedChunks } from '../../src/io/compressed/decode.js';
import { xzIndexSize, xzLayout } from '../../src/io/compressed/xz-blocks.js';
import { tempDir } from '../helpers/golden.js';
import { lzma2Stored } from '../helpers/lzma2.js';
import { havePeer } from '../helpers/peer.js';

const dir = tempDir('diskmint-xz-container-');
let files = 0;

/** The LZMA2 encoders on hand: stored chunks always, the real one (level 0, fast) where it is installed. */
const ENCODERS: Array<{ name: string; property: number; encode: (piece: Uint8Array) => Promise<Uint8Array> }> = [
  { name: 'stored', property: lzma2DictionaryProperty(1 << 20), encode: async (piece) => lzma2Stored(piece) },
  ...(xzEncoderAvailable() ? [{ name: '@napi-rs/lzma', property: xzSettings(0).property, encode: (piece: Uint8Array) => lzma2Compress(piece, 0) }] : []),
];

/** `data` cut at `cuts`, each piece a block in the encoder `pick` chooses for it. */
async function blocksOf(data: Uint8Array, cuts: number[], pick: (i: number) => number = () => 0): Promise<XzBlockInput[]> {
  const ends = [...new Set(cuts.map((c) => c % data.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const blocks: XzBlockInput[] = [];
  let start = 0;
  for (const end of [...ends, data.length]) {
    const piece = data.subarray(start, end);
    const encoder = ENCODERS[pick(blocks.length) % ENCODERS.length];
    blocks.push({ compressed: await encoder.encode(piece), uncompressedSize: piece.length, crc32: crc32(piece), dictionaryProperty: encoder.property });
    start = end;
  }
  return blocks;
}

async function decoded(bytes: Uint8Array): Promise<Uint8Array> {
  const path = join(dir, `s${files++}.xz`);
  writeFileSync(path, bytes);
  const parts: Uint8Array[] = [];
  for await (const c of decompressedChunks(path, 'xz')) parts.push(c.slice()); // a copy: chunks are reused
  return concatBytes(parts);
}

describe('the .xz container', () => {
  it(`round trip: random data in random blocks (${ENCODERS.map((e) => e.name).join(', ')}) reads back through the index and our decoders`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 200_000 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.nat(), { minLength: 7, maxLength: 7 }),
        async (data, cuts, zeros, picks) => {
          if (zeros) data.fill(0, 0, data.length >> 1); // half zeros: blocks that are not random
          const blocks = await blocksOf(data, cuts, (i) => picks[i]);
          const file = concatBytes(xzStream(blocks));
          const layout = xzLayout(
            file.subarray(0, 12),
            file.subarray(file.length - 12 - xzIndexSize(file.subarray(file.length - 12))!, file.length - 12),
            file.subarray(file.length - 12),
            file.length,
          );
          expect(layout?.blocks.map((b) => b.outputSize)).toEqual(blocks.map((b) => b.uncompressedSize));
          expect(layout?.size).toBe(data.length);
          for (const b of layout!.blocks) expect(b.fileOffset % 4).toBe(0); // section 3.3: blocks start on a multiple of four
          expect(await decoded(file)).toEqual(data);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('xz -t accepts a stream of such blocks, xz -lv counts them, xz -dc gives the data back', async (ctx) => {
    if (!havePeer('xz')) return ctx.skip(); // the xz tool's own tests are in test/peers/xz-output.test.ts
    const data = new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 27);
    const path = join(dir, 'stored.xz');
    writeFileSync(path, concatBytes(xzStream(await blocksOf(data, [70_000, 140_001, 250_003], (i) => i))));
    execFileSync('xz', ['-t', path]);
    expect(execFileSync('xz', ['-lv', path], { encoding: 'utf8' })).toMatch(/Streams:\s+1\n\s+Blocks:\s+4\n/);
    expect(new Uint8Array(execFileSync('xz', ['-dc', path]))).toEqual(data);
  });

  it('an empty stream (no blocks) decodes to nothing', async () => {
    expect((await decoded(concatBytes(xzStream([])))).length).toBe(0);
  });

  it('LZMA2 dictionary sizes: the properties byte names 2^n and 3 * 2^n from 4 KiB exactly (section 5.3.1)', () => {
    expect(lzma2DictionarySize(0)).toBe(4096);
    expect(lzma2DictionarySize(1)).toBe(6144);
    expect(lzma2DictionarySize(22)).toBe(8 << 20);
    expect(lzma2DictionarySize(40)).toBe(0xffffffff);
    for (let b = 0; b < 40; b++) expect(lzma2DictionaryProperty(lzma2DictionarySize(b))).toBe(b);
    for (const size of [0, 4095, 5000, (8 << 20) + 1, 5 << 20]) expect(() => lzma2DictionaryProperty(size)).toThrow(FormatError);
  });

  it('multibyte integers (section 1.2): shortest form written, read back; a padded or overlong one is refused', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const out: number[] = [];
        writeXzVarint(n, out);
        expect(out[out.length - 1] & 0x80).toBe(0);
        expect(readXzVarint(new Uint8Array(out), 0)).toEqual([n, out.length]);
      }),
    );
    expect(readXzVarint(Uint8Array.of(0x80, 0x00), 0)).toBeUndefined(); // a superfluous zero byte
    expect(readXzVarint(new Uint8Array(10).fill(0x81), 0)).toBeUndefined();
    expect(() => writeXzVarint(-1, [])).toThrow(FormatError);
  });

  it('headers and footers hold the fields where the spec puts them', () => {
    const header = xzStreamHeader();
    expect([...header.subarray(0, 8)]).toEqual([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01]); // 2.1.1.1, 2.1.1.2: CRC32
    expect(new DataView(header.buffer).getUint32(8, true)).toBe(crc32(header.subarray(6, 8)));
    const footer = xzStreamFooter(16);
    expect([...footer.subarray(4, 12)]).toEqual([3, 0, 0, 0, 0x00, 0x01, 0x59, 0x5a]); // 2.1.2.2: 16 / 4 - 1
    expect(xzIndexSize(footer)).toBe(16);
    const block = xzBlockHeader(300, 70_000, 22);
    expect(block.length % 4).toBe(0);
    expect(block[0]).toBe(block.length / 4 - 1); // 3.1.1
    expect(block[1]).toBe(0xc0); // 3.1.2: one filter, both sizes
    expect([...block.subarray(2, 10)]).toEqual([0xac, 0x02, 0xf0, 0xa2, 0x04, 0x21, 0x01, 22]); // 300, 70000, LZMA2, 1 byte, 8 MiB
    expect(new DataView(block.buffer).getUint32(block.length - 4, true)).toBe(crc32(block.subarray(0, block.length - 4)));
    expect(() => xzBlockHeader(0, 1, 22)).toThrow(FormatError);
    expect(() => xzStreamFooter(10)).toThrow(FormatError);
  });
});

describe('xz output: encoders at once', () => {
  const GiB = 1 << 30;
  it('follows xz -T0: a core each, as many as a quarter of the memory holds, at least one; --threads says exactly', () => {
    const perEncoder = xzSettings(6).memory;
    expect(perEncoder).toBeGreaterThan(130e6); // measured: one preset-6 encoder of lzma-rust2 took 130 MB, a second 170 MB more
    expect(xzConcurrency(6, undefined, { cores: 2, memory: (24 * GiB) / 4 })).toBe(2); // a 24 GiB machine: every core
    expect(xzConcurrency(6, undefined, { cores: 8, memory: (1 * GiB) / 4 })).toBe(1); // a 1 GiB board: one
    expect(xzConcurrency(6, undefined, { cores: 8, memory: 2 * perEncoder + 1 })).toBe(2);
    expect(xzConcurrency(6, undefined, { cores: 8, memory: 0 })).toBe(1);
    expect(xzConcurrency(0, undefined, { cores: 4, memory: (1 * GiB) / 4 })).toBe(4); // level 0's encoder is small
    expect(xzConcurrency(6, 3, { cores: 1, memory: 0 })).toBe(3);
  });

  it("takes a quarter of the machine's memory, or of the cgroup's limit where lower", () => {
    const budget = threadMemoryBudget();
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThanOrEqual(totalmem() / 4);
    const limit = process.constrainedMemory?.() ?? 0;
    if (limit > 0 && limit < totalmem()) expect(budget).toBe(Math.floor(limit / 4));
    else expect(budget).toBe(Math.floor(totalmem() / 4));
  });
});
