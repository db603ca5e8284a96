/**
 * `.xz` raw outputs (`convert`/`build` to `x.img.xz`, or `-o compression=xz`). Where the optional
 * encoder @napi-rs/lzma is installed (npm installs it on Node 22.20+, 24.12+, 25+): one stream of
 * many blocks that `xz -t` accepts and `xz -lv` lists, that `xz -dc` turns back into exactly the
 * raw image and diskmint reads back (info, compare); the bytes do not depend on --threads, nor
 * on a file or a pipe; `-o level=N` picks xz's preset. Where it is not (Node 20): every such
 * output is refused with one sentence, before anything is read, and no file is left. Each test
 * asserts one or the other: none is skipped for want of the encoder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, compareImages, convertImage, inspectImage, VirtualDisk, writeImage, type Layout } from '../../src/index.js';
import { XZ_BLOCK, XZ_ENCODER_MISSING, xzEncoderAvailable } from '../../src/containers/raw/xz-writer.js';
import { diskmint } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;
/** `xz -lvv`: the blocks, and each one's filter chain and memory. */
const listing = (path: string) => execFileSync('xz', ['-lvv', path], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
const xzDecompressed = (path: string) => execFileSync('xz', ['-dc', path], { maxBuffer: 64 * MiB });
const available = xzEncoderAvailable();
const LAYOUT: Layout = { scheme: 'gpt', size: '40M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '20M', contents: { file: 'os.bin' } }] };
let dir: string;
let raw: string;

beforeAll(async () => {
  dir = tempDir('diskmint-xz-out-');
  // Data that compresses to about half (random bytes of 16 values) over two 8 MiB blocks; zeros after it.
  const data = Buffer.alloc(9 * MiB + 1234);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = 0x40 + (x & 0x0f);
  }
  writeFileSync(join(dir, 'os.bin'), data);
  raw = join(dir, 'card.img');
  await buildImage(LAYOUT, { output: raw, baseDir: dir, progress: false });
});

/** `write` is refused with the one sentence, and leaves no file in the folder (no temp file either). */
async function expectRefused(write: () => Promise<unknown>): Promise<void> {
  const before = readdirSync(dir).sort();
  await expect(write()).rejects.toThrow(XZ_ENCODER_MISSING);
  expect(readdirSync(dir).sort()).toEqual(before);
}

describe(`.xz output (${available ? 'the encoder is installed' : `no encoder on Node ${process.versions.node}`})`, () => {
  it('convert: one stream of 8 MiB blocks; xz -t, xz -lv, xz -dc and diskmint read it as the raw image; --threads changes nothing', async (ctx) => {
    const one = join(dir, 'one.img.xz');
    if (!available) return expectRefused(() => convertImage(raw, one, { threads: 1 }));
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const two = join(dir, 'two.img.xz');
    await convertImage(raw, one, { threads: 1 });
    await convertImage(raw, two, { threads: 2 });
    expect(readFileSync(one).equals(readFileSync(two))).toBe(true);
    execFileSync('xz', ['-t', one]);
    const list = listing(one);
    expect(list).toMatch(/Streams:\s+1\n\s+Blocks:\s+5\n/); // 40 MiB in 8 MiB blocks
    expect(list).toMatch(/Check:\s+CRC32/);
    expect(list.match(/--lzma2=dict=8MiB$/gm)).toHaveLength(5); // xz -6's dictionary, in every block
    expect(xzDecompressed(one).equals(readFileSync(raw))).toBe(true);
    const info = await inspectImage(one);
    expect(info.details).toMatchObject({ compression: 'xz' });
    expect(info.table?.partitions.map((p) => p.label)).toEqual(['os1']);
    expect((await compareImages(raw, one)).identical).toBe(true);
  }, 180_000); // two conversions at xz's default level

  it('build to .xz, -o compression=xz, and a pipe give the same bytes; -o level=N picks the preset, the image is the same', async (ctx) => {
    const built = join(dir, 'built.img.xz');
    if (!available) return expectRefused(() => buildImage(LAYOUT, { output: built, baseDir: dir, progress: false }));
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    // Level 1 (quick): the default level's bytes are the first test's.
    await buildImage(LAYOUT, { output: built, baseDir: dir, progress: false, threads: 2, options: 'level=1' });
    const named = join(dir, 'named.out');
    await convertImage(raw, named, { format: 'raw', options: 'compression=xz,level=1' });
    const stdout = new PassThrough();
    const piped: Buffer[] = [];
    stdout.on('data', (b: Buffer) => piped.push(b));
    await convertImage(raw, '-', { format: 'raw', options: { compression: 'xz', level: '1' }, stdout });
    const bytes = readFileSync(built);
    expect(readFileSync(named).equals(bytes)).toBe(true);
    expect(Buffer.concat(piped).equals(bytes)).toBe(true);
    expect(listing(built).match(/--lzma2=dict=1MiB$/gm)).toHaveLength(5); // xz -1's
    const fast = join(dir, 'fast.img.xz');
    await convertImage(raw, fast, { options: 'level=0' });
    expect(listing(fast).match(/--lzma2=dict=256KiB$/gm)).toHaveLength(5); // xz -0's
    for (const other of [fast, join(dir, 'one.img.xz')]) {
      expect(readFileSync(other).equals(bytes)).toBe(false);
      expect(xzDecompressed(other).equals(readFileSync(raw))).toBe(true);
    }
  });

  it('an image that is not a whole number of blocks ends with a shorter block; an empty one is a stream of no blocks', async (ctx) => {
    const odd = join(dir, 'odd.raw');
    writeFileSync(odd, readFileSync(raw).subarray(0, XZ_BLOCK + 4096 + 512));
    const out = join(dir, 'odd.img.xz');
    if (!available) return expectRefused(() => convertImage(odd, out, { options: 'level=1' }));
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    await convertImage(odd, out, { options: 'level=1' });
    expect(xzDecompressed(out).equals(readFileSync(odd))).toBe(true);
    expect(listing(out)).toMatch(/Blocks:\s+2\n/);
    const empty = join(dir, 'empty.img.xz');
    await writeImage(new VirtualDisk(0), empty);
    execFileSync('xz', ['-t', empty]);
    expect(listing(empty)).toMatch(/Blocks:\s+0\n/);
    expect(xzDecompressed(empty).length).toBe(0);
  });

  it('-o level is checked against the compression before anything is read', async () => {
    await expect(convertImage(raw, join(dir, 'bad.img.xz'), { options: 'level=10' })).rejects.toThrow('-o level=10: xz levels go from 0 to 9');
    await expect(convertImage(raw, join(dir, 'bad.img.zst'), { options: 'level=0' })).rejects.toThrow('-o level=0: zstd levels go from 1 to 22');
    await expect(convertImage(raw, join(dir, 'bad.img'), { options: 'level=3' })).rejects.toThrow(/-o level=N needs a compressed raw output/);
    await expect(convertImage(raw, join(dir, 'bad.img'), { options: 'compression=lz4' })).rejects.toThrow(
      'raw compression "lz4" is not one of gzip, zstd, xz, none',
    );
    expect(readdirSync(dir).filter((f) => f.startsWith('bad'))).toEqual([]);
  });

  it('the CLI: convert to .xz exits 0 and writes it, or exits 1 with the sentence; build refuses before reading its layout', () => {
    const out = join(dir, 'cli.img.xz');
    const r = diskmint(['convert', raw, out, '-o', 'level=1', '-q']);
    if (available) {
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(out).equals(readFileSync(join(dir, 'built.img.xz')))).toBe(true);
    } else {
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(XZ_ENCODER_MISSING);
      expect(existsSync(out)).toBe(false);
      const b = diskmint(['build', join(dir, 'no-such-layout.json'), '-o', join(dir, 'b.img.xz')]);
      expect(b.status).toBe(1);
      expect(b.stderr).toContain(XZ_ENCODER_MISSING); // not "no such layout": refused first
    }
  });
});
