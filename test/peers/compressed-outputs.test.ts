/**
 * Compressed raw outputs, as card images ship (issue 19): `convert`/`build` to `.zst` and `.gz`
 * (or `-o compression=`) write one stream that the real `zstd -d` and `gzip -d` turn back into
 * exactly the raw image; the bytes do not depend on --threads; `--bmap` writes the map beside it
 * (`fw.img.zst` -> `fw.img.bmap`), and bmaptool copies the compressed image with that map. `.xz`
 * output has its own file (xz-output.test.ts): it depends on an optional encoder.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, convertImage } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;
let dir: string;
let raw: string;

beforeAll(async () => {
  dir = tempDir('diskmint-cout-');
  const data = Buffer.alloc(5 * MiB + 1234);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  writeFileSync(join(dir, 'os.bin'), data);
  raw = join(dir, 'card.img');
  await buildImage(
    { scheme: 'gpt', size: '40M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '16M', contents: { file: 'os.bin' } }] },
    { output: raw, baseDir: dir, progress: false },
  );
});

describe.each([
  { kind: 'zstd', ext: '.zst', tool: 'zstd', pkg: 'zstd' },
  { kind: 'gzip', ext: '.gz', tool: 'gzip', pkg: 'gzip' },
])('$kind output', ({ kind, ext, tool, pkg }) => {
  it(`${tool} -d gives back the raw image, byte for byte; the bytes do not depend on --threads`, async () => {
    requirePeer(tool, pkg);
    const one = join(dir, `one.img${ext}`);
    const two = join(dir, `two.img${ext}`);
    await convertImage(raw, one, { threads: 1 });
    await convertImage(raw, two, { threads: 2 });
    expect(readFileSync(one).equals(readFileSync(two))).toBe(true);
    expect(execFileSync(tool, ['-dc', one], { maxBuffer: 64 * MiB }).equals(readFileSync(raw))).toBe(true);
    const named = join(dir, `named-${kind}.out`);
    await convertImage(raw, named, { format: 'raw', options: { compression: kind } });
    expect(readFileSync(named).equals(readFileSync(one))).toBe(true);
  });

  it('build --bmap: bmaptool copies the compressed image with the map written beside it', async () => {
    requirePeer(tool, pkg);
    requirePeer('bmaptool', 'bmap-tools');
    const out = join(dir, `fw-${kind}.img${ext}`);
    const r = await buildImage(
      { scheme: 'gpt', size: '40M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '16M', contents: { file: 'os.bin' } }] },
      { output: out, baseDir: dir, progress: false, bmap: true },
    );
    expect(r.bmap).toBe(join(dir, `fw-${kind}.img.bmap`));
    const dest = join(dir, `dest-${kind}.img`);
    writeFileSync(dest, '');
    truncateSync(dest, 40 * MiB);
    execFileSync('bmaptool', ['copy', '--bmap', r.bmap!, out, dest], { stdio: 'pipe' });
    expect(readFileSync(dest).equals(readFileSync(raw))).toBe(true);
  });
});

describe('refusals', () => {
  it('--bmap with a pipe is refused before anything is read', async () => {
    await expect(convertImage(raw, '-', { bmap: true })).rejects.toThrow(/--bmap writes a file beside the output/);
  });
});
