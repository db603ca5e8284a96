/**
 * convert and build -O, end to end through the library: every format we write converts back
 * to the same bytes, qemu-img agrees, containers are found by content, pipes behave.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildImage, convertImage, createFatImage, inspectImage, openImage, verifyImage, DiskmintError, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(Math.ceil(bytes / 4) * 4);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((Math.imul(i + seed, 2654435761) | 1) >>> 0, i);
  return b.subarray(0, bytes);
}

async function sourceImage(): Promise<{ dir: string; raw: string; layout: Layout }> {
  const dir = tempDir();
  writeFileSync(join(dir, 'os.bin'), pattern(3 << 20, 7));
  writeFileSync(join(dir, 'cfg.bin'), pattern(100_003, 9));
  const layout: Layout = {
    scheme: 'gpt',
    size: '64M',
    seed: 'convert',
    partitions: [
      { type: 'efi', label: 'esp', size: '8M' },
      { type: 'freebsd-ufs', label: 'os1', size: '24M', attributes: ['bootme'], contents: { file: 'os.bin' } },
      { type: 'freebsd-ufs', label: 'cfg', size: 'rest', contents: { file: 'cfg.bin' } },
    ],
  };
  const raw = join(dir, 'disk.img');
  await buildImage(layout, { output: raw, baseDir: dir });
  return { dir, raw, layout };
}

const VARIANTS: Array<{ name: string; format: string; options?: string; compress?: boolean; compression?: 'deflate' | 'zstd'; qemu: string }> = [
  { name: 'qcow2', format: 'qcow2', qemu: 'qcow2' },
  { name: 'qcow2 v2, 4 KiB clusters', format: 'qcow2', options: 'compat=0.10,cluster_size=4096', qemu: 'qcow2' },
  { name: 'qcow2 deflate', format: 'qcow2', compress: true, qemu: 'qcow2' },
  { name: 'qcow2 zstd', format: 'qcow2', compress: true, compression: 'zstd', qemu: 'qcow2' },
  { name: 'vmdk monolithicSparse', format: 'vmdk', qemu: 'vmdk' },
  { name: 'vmdk streamOptimized lsilogic', format: 'vmdk', options: 'subformat=streamOptimized,adapter_type=lsilogic', qemu: 'vmdk' },
  { name: 'vhd dynamic', format: 'vhd', options: 'force_size=on', qemu: 'vpc' },
  { name: 'vhd fixed', format: 'vhd', options: 'subformat=fixed,force_size=on', qemu: 'vpc' },
  { name: 'vhdx', format: 'vhdx', qemu: 'vhdx' },
];

describe('build -O and convert, every output format', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: build writes the container directly; convert back to raw is identical; info reads the tables`, async () => {
      const { dir, raw, layout } = await sourceImage();
      const out = join(dir, `direct.${v.format}`);
      await buildImage(layout, { output: out, baseDir: dir, format: v.format, options: v.options, compress: v.compress, compression: v.compression });
      const back = join(dir, 'back.img');
      await convertImage(out, back, { format: 'raw' });
      expect(sha(readFileSync(back))).toBe(sha(readFileSync(raw)));
      const info = await inspectImage(out);
      expect(info.format).toBe(v.format);
      expect(info.table?.partitions.map((p) => p.label)).toEqual(['esp', 'os1', 'cfg']);
      expect((await verifyImage(out, { expect: layout, baseDir: dir })).findings.filter((f) => f.severity === 'error')).toEqual([]);
    });
  }

  it('convert raw -> each format matches qemu-img compare (and back through convert)', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const { dir, raw } = await sourceImage();
    for (const v of VARIANTS) {
      const out = join(dir, `conv-${v.name.replace(/\W+/g, '_')}.${v.format}`);
      await convertImage(raw, out, { format: v.format, options: v.options, compress: v.compress, compression: v.compression });
      const cmp = runPeer('qemu-img', ['compare', '-f', v.qemu, '-F', 'raw', out, raw]);
      expect(`${v.name}: ${cmp.out.trim()}`).toBe(`${v.name}: Images are identical.`);
      if (v.qemu !== 'vpc') expect(runPeer('qemu-img', ['check', '-f', v.qemu, out]).status).toBe(0);
    }
  });

  it('images qemu-img writes convert to the same raw bytes', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const { dir, raw } = await sourceImage();
    for (const [fmt, opts] of [
      ['qcow2', []],
      ['qcow2', ['-c']],
      ['vmdk', ['-o', 'subformat=streamOptimized']],
      ['vpc', ['-o', 'subformat=dynamic,force_size=on']],
      ['vhdx', []],
    ] as const) {
      const theirs = join(dir, `theirs.${fmt}`);
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', fmt, ...opts, raw, theirs]);
      const back = join(dir, 'back.img');
      await convertImage(theirs, back, { format: 'raw' });
      expect(`${fmt} ${opts.join(' ')}: ${sha(readFileSync(back))}`).toBe(`${fmt} ${opts.join(' ')}: ${sha(readFileSync(raw))}`);
    }
  });
});

describe('convert plumbing', () => {
  it('detects the container by content, not by name', async () => {
    const { dir, raw } = await sourceImage();
    const q = join(dir, 'x.qcow2');
    await convertImage(raw, q, {});
    const misnamed = join(dir, 'looks-raw.img');
    renameSync(q, misnamed);
    expect((await inspectImage(misnamed)).format).toBe('qcow2');
  });

  it('streams uncompressed containers to a pipe; compressed qcow2 refuses a pipe before writing', async () => {
    const { dir, raw } = await sourceImage();
    for (const format of ['vhdx', 'qcow2', 'vhd']) {
      const pipe = new PassThrough();
      const chunks: Buffer[] = [];
      pipe.on('data', (c: Buffer) => chunks.push(c));
      await convertImage(raw, '-', { format, stdout: pipe });
      // A pipe gets tables first (files get them last): same disk, its own deterministic bytes.
      const piped = join(dir, `piped.${format}`);
      writeFileSync(piped, Buffer.concat(chunks));
      const back = join(dir, `back-${format}.img`);
      await convertImage(piped, back, { format: 'raw' });
      expect(sha(readFileSync(back).subarray(0, readFileSync(raw).length)), format).toBe(sha(readFileSync(raw)));
    }
    const sink = new PassThrough();
    let written = 0;
    sink.on('data', (c: Buffer) => (written += c.length));
    await expect(convertImage(raw, '-', { format: 'qcow2', compress: true, stdout: sink })).rejects.toThrow(/file|seekable|pipe/i);
    expect(written).toBe(0);
  });

  it('output bytes do not depend on the thread count', async () => {
    const { dir, raw } = await sourceImage();
    const a = join(dir, 'a.qcow2');
    const b = join(dir, 'b.qcow2');
    await convertImage(raw, a, { compress: true, threads: 1 });
    await convertImage(raw, b, { compress: true, threads: 4 });
    expect(sha(readFileSync(a))).toBe(sha(readFileSync(b)));
  });

  it('refuses bad requests with clear errors and leaves nothing behind', async () => {
    const { dir, raw } = await sourceImage();
    await expect(convertImage(raw, raw, {})).rejects.toThrow(/same file/);
    await expect(convertImage(raw, join(dir, 'x.out'), { format: 'floppy' })).rejects.toThrow(/unknown output format "floppy"/);
    await expect(convertImage(raw, join(dir, 'y.qcow2'), { options: 'bogus_key=1' })).rejects.toThrow(/bogus_key/);
    await expect(convertImage(raw, join(dir, 'z.img'), { compress: true })).rejects.toThrow(DiskmintError);
    expect(readdirSync(dir).sort()).toEqual(['cfg.bin', 'disk.img', 'os.bin']);
    expect(existsSync(join(dir, 'y.qcow2'))).toBe(false);
  });
});

describe('compress where the output format cannot', () => {
  it('convertImage, the handle and createFatImage refuse it for VHD and VHDX before writing anything', async () => {
    const { dir, raw } = await sourceImage();
    const before = readdirSync(dir).sort();
    const refused = /^(vhd|vhdx) output cannot be compressed; choose -O qcow2 or vmdk$/;
    await expect(convertImage(raw, join(dir, 'a.vhdx'), { compress: true, progress: false })).rejects.toThrow(refused);
    await expect(convertImage(raw, join(dir, 'a.img'), { format: 'vpc', compress: true, progress: false })).rejects.toThrow(refused);
    const image = await openImage(raw);
    await expect(image.convert(join(dir, 'b.vhd'), { compress: true })).rejects.toThrow(refused);
    await image.close();
    mkdirSync(join(dir, 'esp'));
    writeFileSync(join(dir, 'esp', 'a.txt'), 'a');
    await expect(createFatImage(join(dir, 'esp.vhd'), { from: join(dir, 'esp'), compress: true })).rejects.toThrow(refused);
    expect(readdirSync(dir).sort()).toEqual([...before, 'esp'].sort());
  });
});
