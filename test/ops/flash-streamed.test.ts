/**
 * flash of a compressed image as it decodes (issue 19: "streamed to flash"): the sizes .xz and
 * zstd streams record (found without decoding, against the real xz and zstd tools), the plan
 * found chunk by chunk (the same bytes as the plan of the decoded image, property), and flashes
 * that equal those of the spooled path byte for byte; damage, a changed device, a container
 * inside.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { recordedDecompressedSize } from '../../src/io/compressed/recorded-size.js';
import { openDecodedStream, type DecodedStream } from '../../src/io/compressed/decoded-stream.js';
import { createCompressor } from '../../src/containers/compress.js';
import { flashPlan, streamedFlashPlan, type FlashRange } from '../../src/ops/flash/plan.js';
import { FLASH_CHUNK } from '../../src/ops/flash/write.js';
import { flashImage } from '../../src/ops/flash/flash.js';
import { blockMapOf, blockMapOfStream, createBmap } from '../../src/ops/bmap.js';
import { nonZeroSpans } from '../../src/io/zero-blocks.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;
let dir: string;
let raw: string;
let rawBytes: Buffer;

beforeAll(() => {
  dir = tempDir('diskmint-flash-streamed-');
  raw = join(dir, 'card.img');
  // 20 MiB: a table-like first sector, data across a chunk boundary, a lone block, data at the end.
  rawBytes = Buffer.alloc(20 * MiB);
  const fill = (at: number, n: number, seed: number) => {
    for (let i = 0; i < n; i++) rawBytes[at + i] = (seed + i * 131 + (i >> 9)) % 251 || 1;
  };
  fill(0, 512, 1);
  fill(4 * MiB - 100_000, 300_000, 2);
  fill(9 * MiB + 65_536, 4096, 3);
  fill(20 * MiB - 8192, 8192, 4);
  writeFileSync(raw, rawBytes);
});

const made = (name: string, cmd: string, args: string[]) => {
  const out = join(dir, name);
  writeFileSync(out, execFileSync(cmd, args, { maxBuffer: 1 << 30 }));
  return out;
};

describe('the decompressed size a stream records', () => {
  it('zstd: every frame with its content size, skippable frames passed; from a pipe, truncated: unknown', () => {
    requirePeer('zstd', 'zstd');
    const file = made('a.zst', 'zstd', ['-q', '-c', raw]);
    expect(recordedDecompressedSize(file, 'zstd')).toBe(rawBytes.length);
    // Two frames and a skippable frame between them: still one stream (RFC 8878 3.1).
    const two = join(dir, 'two.zst');
    writeFileSync(two, readFileSync(file));
    appendFileSync(two, Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 7, 7, 7]));
    appendFileSync(two, readFileSync(file));
    expect(recordedDecompressedSize(two, 'zstd')).toBe(2 * rawBytes.length);
    const piped = join(dir, 'piped.zst');
    writeFileSync(piped, execFileSync('zstd', ['-q', '-c'], { input: rawBytes, maxBuffer: 1 << 30 }));
    expect(recordedDecompressedSize(piped, 'zstd')).toBeUndefined(); // no Frame_Content_Size from a pipe
    const cut = join(dir, 'cut.zst');
    copyFileSync(file, cut);
    truncateSync(cut, statSync(cut).size - 3);
    expect(recordedDecompressedSize(cut, 'zstd')).toBeUndefined();
  });

  it('xz: one stream of one or many blocks from its index; two streams, truncated: unknown; gzip, bzip2: unknown', () => {
    requirePeer('xz', 'xz-utils');
    expect(recordedDecompressedSize(made('one.xz', 'xz', ['-T1', '-c', raw]), 'xz')).toBe(rawBytes.length);
    const blocks = made('blocks.xz', 'xz', ['-T2', '--block-size=1MiB', '-c', raw]);
    expect(execFileSync('xz', ['--robot', '-l', blocks]).toString()).toMatch(/^file\t1\t20\t/m); // one stream, 20 blocks
    expect(recordedDecompressedSize(blocks, 'xz')).toBe(rawBytes.length);
    const twice = join(dir, 'twice.xz');
    writeFileSync(twice, Buffer.concat([readFileSync(blocks), readFileSync(blocks)]));
    expect(recordedDecompressedSize(twice, 'xz')).toBeUndefined();
    const cut = join(dir, 'cut.xz');
    copyFileSync(blocks, cut);
    truncateSync(cut, statSync(cut).size - 1);
    expect(recordedDecompressedSize(cut, 'xz')).toBeUndefined();
    expect(recordedDecompressedSize(made('a.gz', 'gzip', ['-n', '-c', raw]), 'gzip')).toBeUndefined();
  });
});

describe('a compressed image read as it decodes', () => {
  it('reads any sequence of reads as the raw bytes, forward through its window, back (or after close) by decoding again (property)', async () => {
    // Three zstd frames (as diskmint's own .zst output cuts them), each recording its size.
    const image = new Uint8Array(3 * MiB + 12_345).map((_, i) => (i % 7_001 < 3_000 ? 0 : (i * 31 + (i >> 11)) & 0xff));
    const compressor = createCompressor({ threads: 1 });
    const path = join(dir, 'frames.zst');
    try {
      const frames = [];
      for (let at = 0; at < image.length; at += 1 << 20) frames.push(await compressor.compress(image.subarray(at, at + (1 << 20)), 'zstd', 3));
      writeFileSync(path, Buffer.concat(frames));
    } finally {
      await compressor.close();
    }
    const maxRead = 64 << 10; // a small window: most reads move it
    // Each read anywhere, or near where the last one ended (back inside the window, or a little past it).
    const where = fc.oneof(
      fc.record({ at: fc.integer({ min: 0, max: image.length + 10 }) }),
      fc.record({ ahead: fc.integer({ min: -maxRead, max: maxRead + 10 }) }),
      fc.record({ closeFirst: fc.integer({ min: 0, max: maxRead }) }), // the decoder stopped (as flash does after writing), then a read
    );
    const reads = fc.array(fc.tuple(where, fc.integer({ min: 0, max: 3 * maxRead })), { minLength: 1, maxLength: 16 });
    await fc.assert(
      fc.asyncProperty(reads, async (list) => {
        const stream = (await openDecodedStream(path, maxRead))!;
        try {
          expect(stream.size).toBe(image.length);
          expect(Buffer.from(await stream.head.read(0, 4096)).equals(Buffer.from(image.subarray(0, 4096)))).toBe(true);
          let end = 0;
          for (const [w, length] of list) {
            if ('closeFirst' in w) await stream.close();
            const offset = 'at' in w ? w.at : 'ahead' in w ? Math.max(0, end + w.ahead) : Math.max(0, end - w.closeFirst);
            end = offset + length;
            const got = await stream.read(offset, length);
            expect(Buffer.from(got).equals(Buffer.from(image.subarray(offset, offset + length)))).toBe(true);
          }
        } finally {
          await stream.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});

/** An image in memory as a DecodedStream (views of the bytes) and as the raw reader the spooled path gives (its spans). */
function memoryImage(bytes: Uint8Array): { stream: DecodedStream; reader: ContainerReader } {
  const read = async (o: number, n: number) => bytes.slice(o, Math.min(bytes.length, o + n));
  const stream = {
    kind: 'xz',
    size: bytes.length,
    view: async (o: number, n: number) => bytes.subarray(o, Math.min(bytes.length, o + n)),
    read,
    close: async () => {},
  } as unknown as DecodedStream;
  const reader: ContainerReader = {
    format: 'raw',
    size: bytes.length,
    read,
    close: async () => {},
    details: () => ({}),
    async *allocatedRanges() {
      for (const [s, e] of nonZeroSpans(bytes)) yield { offset: s, length: e - s };
    },
  };
  return { stream, reader };
}

/** Which kind each byte of the image gets ('' unwritten), as runs: plans compared by what they write. */
function coverage(plan: readonly FlashRange[]): Array<[number, number, string]> {
  const runs: Array<[number, number, string]> = [];
  for (const r of plan) {
    const last = runs[runs.length - 1];
    if (last && last[1] === r.offset && last[2] === r.kind) last[1] += r.length;
    else runs.push([r.offset, r.offset + r.length, r.kind]);
  }
  return runs;
}

describe('the plan found as the image decodes', () => {
  it('writes what the plan of the whole decoded image writes, ascending, each data range within one chunk (property)', async () => {
    const pieces = fc.array(fc.tuple(fc.integer({ min: 0, max: 11 * MiB }), fc.integer({ min: 1, max: 2 * MiB })), { maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 11 * MiB }), pieces, fc.boolean(), async (size, spans, discard) => {
        const bytes = new Uint8Array(size);
        for (const [at, n] of spans) bytes.fill(7, Math.min(at, size), Math.min(size, at + n));
        const { stream, reader } = memoryImage(bytes);
        const streamed: FlashRange[] = [];
        let passed = 0;
        for await (const r of streamedFlashPlan(stream, { discard, passed: (n) => (passed += n) })) streamed.push(r);
        expect(coverage(streamed)).toEqual(coverage(await flashPlan(reader, { discard })));
        expect(passed).toBe(size);
        for (const [i, r] of streamed.entries()) {
          if (i) expect(r.offset).toBeGreaterThanOrEqual(streamed[i - 1].offset + streamed[i - 1].length);
          if (r.kind === 'data') expect(Math.floor(r.offset / FLASH_CHUNK)).toBe(Math.floor((r.offset + r.length - 1) / FLASH_CHUNK));
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('the block map of an image as it decodes', () => {
  it('equals the map of the whole decoded image, checksums included (property)', async () => {
    const pieces = fc.array(fc.tuple(fc.integer({ min: 0, max: 9 * MiB }), fc.integer({ min: 1, max: 5 * MiB }), fc.integer({ min: 1, max: 255 })), {
      maxLength: 5,
    });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 9 * MiB }), pieces, async (size, spans) => {
        const bytes = new Uint8Array(size);
        for (const [at, n, v] of spans) bytes.fill(v, Math.min(at, size), Math.min(size, at + n));
        const { stream, reader } = memoryImage(bytes);
        expect(await blockMapOfStream(stream)).toEqual(await blockMapOf(reader));
      }),
      { numRuns: 40 },
    );
  });

  it('diskmint bmap of an .xz (as it decodes) writes the map of its .gz (spooled), byte for byte', async () => {
    requirePeer('xz', 'xz-utils');
    const xz = made('m.xz', 'xz', ['-T1', '-c', raw]);
    const gz = made('m.gz', 'gzip', ['-n', '-c', raw]);
    await createBmap(xz, { output: join(dir, 'm-xz.bmap') });
    await createBmap(gz, { output: join(dir, 'm-gz.bmap') });
    const text = readFileSync(join(dir, 'm-xz.bmap'), 'utf8');
    expect(text).toBe(readFileSync(join(dir, 'm-gz.bmap'), 'utf8'));
    expect(text).toMatch(/<MappedBlocksCount> *\d+ *<\/MappedBlocksCount>/);
  });
});

describe('flash of an .xz or .zst as it decodes', () => {
  const device = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, Buffer.alloc(rawBytes.length + MiB, 0xaa)); // old bytes the flash must overwrite or keep
    return path;
  };

  it('writes the device byte for byte as the spooled path does (gzip), with and without discard', async () => {
    requirePeer('xz', 'xz-utils');
    requirePeer('zstd', 'zstd');
    const inputs = {
      xzBlocks: made('f-blocks.xz', 'xz', ['-T2', '--block-size=1MiB', '-c', raw]), // the parallel decoder
      xzOne: made('f-one.xz', 'xz', ['-T1', '-c', raw]), // the streaming decoder
      zstd: made('f.zst', 'zstd', ['-q', '-c', raw]),
      gzip: made('f.gz', 'gzip', ['-n', '-c', raw]),
    };
    for (const discard of [false, true]) {
      const spooledDevice = device(`spooled-${discard}.dev`);
      const spooled = await flashImage(inputs.gzip, spooledDevice, { yes: true, discard });
      expect(spooled.compression).toEqual({ kind: 'gzip', read: 'spooled' });
      for (const [name, path] of Object.entries(inputs).filter(([n]) => n !== 'gzip')) {
        const dev = device(`${name}-${discard}.dev`);
        const r = await flashImage(path, dev, { yes: true, discard });
        expect(r.compression?.read, name).toBe('streamed');
        expect(r.verify.ok).toBe(true);
        expect([r.dataBytes, r.zeroBytes]).toEqual([spooled.dataBytes, spooled.zeroBytes]);
        expect(readFileSync(dev).equals(readFileSync(spooledDevice)), `${name} discard=${discard}`).toBe(true);
      }
      const got = readFileSync(spooledDevice);
      expect(got.subarray(0, rawBytes.length).equals(rawBytes)).toBe(discard); // without discard middle holes keep 0xaa
    }
  });

  it('with a bmap: its ranges written as the image decodes, each checksum checked; a map of other data stops the write', async () => {
    requirePeer('xz', 'xz-utils');
    const image = made('b.xz', 'xz', ['-T2', '--block-size=1MiB', '-c', raw]);
    const map = join(dir, 'b.bmap');
    await createBmap(raw, { output: map });
    const dev = device('bmap.dev');
    const r = await flashImage(image, dev, { yes: true, bmap: map, discard: true });
    expect([r.compression?.read, r.bmap, r.verify.ok]).toEqual(['streamed', map, true]);
    expect(readFileSync(dev).subarray(0, rawBytes.length).equals(rawBytes)).toBe(true);
    // The same map over an image whose data differs (one byte in a mapped block): refused at that range.
    const other = Buffer.from(rawBytes);
    other[9 * MiB + 65_536 + 10] ^= 1;
    const otherRaw = join(dir, 'other.img');
    writeFileSync(otherRaw, other);
    const otherXz = made('other.xz', 'xz', ['-T1', '-c', otherRaw]);
    await expect(flashImage(otherXz, device('bmap-bad.dev'), { yes: true, bmap: map })).rejects.toThrow(/checksum mismatch for blocks range/);
  });

  it('--verify=full and a byte changed on the device before the read-back: the exact offset, found by decoding again', async () => {
    requirePeer('xz', 'xz-utils');
    const image = made('v.xz', 'xz', ['-T1', '-c', raw]);
    const dev = device('changed.dev');
    const bad = 9 * MiB + 65_536 + 100;
    const corrupt = (path: string) => async () => {
      const b = readFileSync(path);
      b[bad] ^= 0xff;
      writeFileSync(path, b);
    };
    const written = await flashImage(image, dev, { yes: true, beforeVerify: corrupt(dev) });
    expect(written.verify).toMatchObject({ ok: false, firstBadOffset: bad });
    const full = await flashImage(image, device('full.dev'), { yes: true, discard: true, verify: 'full' });
    expect(full.verify.ok).toBe(true);
    // --verify=full reads ahead of its comparison too: the byte in the third 4 MiB chunk is found exactly.
    const fullChanged = device('full-changed.dev');
    const fullBad = await flashImage(image, fullChanged, { yes: true, discard: true, verify: 'full', beforeVerify: corrupt(fullChanged) });
    expect(fullBad.verify).toMatchObject({ ok: false, firstBadOffset: bad });
  });

  it('data damaged inside a sound frame: the write stops where the decoder fails and says the device is incomplete', async () => {
    requirePeer('zstd', 'zstd');
    const image = join(dir, 'damaged.zst');
    const bytes = execFileSync('zstd', ['-q', '-c', '--no-check', '-1', raw], { maxBuffer: 1 << 30 });
    bytes[Math.floor(bytes.length / 2)] ^= 0x55; // inside a compressed block: the framing still walks
    writeFileSync(image, bytes);
    expect(recordedDecompressedSize(image, 'zstd')).toBe(rawBytes.length);
    await expect(flashImage(image, device('damaged.dev'), { yes: true })).rejects.toThrow(/damaged .*the device is incomplete/);
  });

  it('damage within the first MiB: refused before any write, by the spooled path, the device unchanged', async () => {
    requirePeer('xz', 'xz-utils');
    const image = join(dir, 'damaged-head.xz');
    const bytes = execFileSync('xz', ['-T1', '--block-size=512KiB', '-c', raw], { maxBuffer: 1 << 30 });
    bytes[100] ^= 0x55; // in the first block's data: its CRC-64 fails, within the first MiB
    writeFileSync(image, bytes);
    expect(recordedDecompressedSize(image, 'xz')).toBe(rawBytes.length); // the index is intact
    const dev = device('damaged-head.dev');
    const before = readFileSync(dev);
    await expect(flashImage(image, dev, { yes: true })).rejects.toThrow(/damaged or truncated .*nothing was written/);
    expect(readFileSync(dev).equals(before)).toBe(true);
  });

  it('a container inside (qcow2.xz) is decoded first and flashed as the disk it holds', async () => {
    requirePeer('xz', 'xz-utils');
    requirePeer('qemu-img', 'qemu-utils');
    const qcow2 = join(dir, 'inner.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const image = made('inner.qcow2.xz', 'xz', ['-T1', '-c', qcow2]);
    const dev = device('inner.dev');
    const r = await flashImage(image, dev, { yes: true, discard: true });
    expect([r.format, r.compression]).toEqual(['qcow2', { kind: 'xz', read: 'spooled' }]);
    expect(readFileSync(dev).subarray(0, rawBytes.length).equals(rawBytes)).toBe(true);
  });
});
