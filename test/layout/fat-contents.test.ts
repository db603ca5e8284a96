/** FAT volumes in layouts, the `fat` commands on any container, and verify's ESP checks. */
import { mkdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildImage, convertImage, verifyImage, DiskmintError, type Layout } from '../../src/index.js';
import { catFat, createFatImage, extractFat, listFat } from '../../src/ops/fat.js';
import { parseImageSpec } from '../../src/ops/image-spec.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

function espTree(dir: string): string {
  const esp = join(dir, 'esp');
  mkdirSync(join(esp, 'EFI', 'BOOT'), { recursive: true });
  mkdirSync(join(esp, 'loader', 'entries'), { recursive: true });
  writeFileSync(join(esp, 'EFI', 'BOOT', 'BOOTX64.EFI'), Buffer.alloc(200_000, 0x4d));
  writeFileSync(join(esp, 'loader', 'entries', 'freebsd-slot-a.conf'), 'title FreeBSD A\n');
  writeFileSync(join(esp, 'Grüße.txt'), 'non-ASCII name\n');
  return esp;
}

function espLayout(type: '16' | '32' = '32', size = '64M'): Layout {
  return {
    scheme: 'gpt',
    size: '96M',
    seed: 'fat',
    partitions: [
      { type: 'efi', label: 'ESP', size, contents: { fat: { from: 'esp', type, label: 'EFISYS' } } },
      { type: 'freebsd-ufs', label: 'os', size: 'rest' },
    ],
  };
}

async function buildEsp(layout = espLayout()): Promise<{ dir: string; img: string }> {
  const dir = tempDir();
  espTree(dir);
  const img = join(dir, 'disk.img');
  await buildImage(layout, { output: img, baseDir: dir });
  return { dir, img };
}

describe('fat contents in layouts', () => {
  it('the ESP passes fsck.fat, holds the tree, and records its start as hidden sectors', async (ctx) => {
    const { dir, img } = await buildEsp();
    const part = join(dir, 'p1.img');
    writeFileSync(part, readFileSync(img).subarray(2048 * 512, (2048 + 131072) * 512));
    expect(readFileSync(part).readUInt32LE(28)).toBe(2048); // BPB_HiddSec (fatgen103 section 3.1)
    const names = (await listFat(`${img}:1`, '/')).map((e) => e.name).sort();
    expect(names).toEqual(['EFI', 'Grüße.txt', 'loader']);
    if (!requirePeer('fsck.fat', 'dosfstools')) return ctx.skip();
    const fsck = runPeer('fsck.fat', ['-n', part]);
    expect(fsck.status).toBe(0);
    expect(fsck.out).not.toMatch(/differ|lost|invalid|corrupt/i);
  });

  it('verify names the removable-media loader and warns on FAT16 ESPs or missing loaders', async () => {
    const good = await buildEsp();
    const report = await verifyImage(good.img);
    expect(report.ok).toBe(true);
    expect(report.findings.map((f) => `${f.severity} ${f.code}`)).toEqual(['info esp.loader']);
    expect(report.findings[0].message).toContain('\\EFI\\BOOT\\BOOTX64.EFI');
    const fat16 = await buildEsp(espLayout('16', '32M'));
    expect((await verifyImage(fat16.img)).findings.map((f) => f.code)).toContain('esp.fat-type');
    const dir = tempDir();
    mkdirSync(join(dir, 'esp'));
    writeFileSync(join(dir, 'esp', 'x.txt'), 'x');
    const img = join(dir, 'd.img');
    await buildImage(espLayout(), { output: img, baseDir: dir });
    expect((await verifyImage(img)).findings.map((f) => f.code)).toEqual(['esp.no-loader']);
  });

  it('verify reports a damaged FAT (the two FAT copies disagree)', async () => {
    const { img } = await buildEsp();
    const bytes = readFileSync(img);
    const part = 2048 * 512;
    const reserved = bytes.readUInt16LE(part + 14); // BPB_RsvdSecCnt
    const fd = openSync(img, 'r+');
    writeSync(fd, Buffer.from([0x77, 0x77, 0x77, 0x07]), 0, 4, part + reserved * 512 + 4 * 40); // FAT #1 entry 40
    closeSync(fd);
    const report = await verifyImage(img);
    expect(report.ok).toBe(false);
    expect(report.findings.some((f) => f.code.startsWith('fat.') && f.severity === 'error')).toBe(true);
  });

  it('a tree larger than its partition is a layout error naming the path, before writing', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'esp'));
    writeFileSync(join(dir, 'esp', 'big.bin'), Buffer.alloc(3 << 20, 1));
    const layout: Layout = { scheme: 'gpt', size: '16M', partitions: [{ type: 'efi', size: '2M', contents: { fat: { from: 'esp' } } }] };
    await expect(buildImage(layout, { output: join(dir, 'x.img'), baseDir: dir })).rejects.toThrow(
      /partitions\[0\]\.contents\.fat: the FAT volume for this tree needs at least/,
    );
    const missing: Layout = { scheme: 'gpt', size: '16M', partitions: [{ type: 'efi', size: '2M', contents: { fat: { from: 'nope' } } }] };
    await expect(buildImage(missing, { output: join(dir, 'x.img'), baseDir: dir })).rejects.toThrow(
      /partitions\[0\]\.contents\.fat\.from: "nope" is not a folder/,
    );
  });

  it('size omitted gives the smallest volume that holds the tree', async () => {
    const dir = tempDir();
    espTree(dir);
    const img = join(dir, 'd.img');
    const r = await buildImage({ scheme: 'gpt', partitions: [{ type: 'efi', contents: { fat: { from: 'esp' } } }] }, { output: img, baseDir: dir });
    expect(r.partitions[0].sectors * 512).toBeLessThan(1 << 20);
    expect((await listFat(`${img}:1`, '/EFI/BOOT'))[0]).toMatchObject({ name: 'BOOTX64.EFI', size: 200_000 });
  });
});

describe('fat commands through containers', () => {
  it('ls, cat and extract read IMG:N from a qcow2 that diskmint wrote', async () => {
    const { dir, img } = await buildEsp();
    const q = join(dir, 'disk.qcow2');
    await convertImage(img, q, {});
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await catFat(`${q}:1`, '/loader/entries/freebsd-slot-a.conf', out);
    expect(Buffer.concat(chunks).toString()).toBe('title FreeBSD A\n');
    const dest = join(dir, 'out');
    await extractFat(`${q}:1`, dest);
    expect(readFileSync(join(dest, 'EFI', 'BOOT', 'BOOTX64.EFI')).equals(Buffer.alloc(200_000, 0x4d))).toBe(true);
    expect(readFileSync(join(dest, 'Grüße.txt'), 'utf8')).toBe('non-ASCII name\n');
    await expect(listFat(`${q}:9`)).rejects.toThrow(/has no partition 9/);
    await expect(listFat(`${q}:2`)).rejects.toThrow(DiskmintError);
  });

  it('fat create writes a bare volume in any format', async () => {
    const dir = tempDir();
    const esp = espTree(dir);
    const vhd = join(dir, 'esp.vhdx');
    const r = await createFatImage(vhd, { from: esp, label: 'EFISYS', size: '40M', type: 32 });
    expect(r.type).toBe(32);
    expect((await listFat(vhd, '/')).map((e) => e.name).sort()).toEqual(['EFI', 'Grüße.txt', 'loader']);
    expect(parseImageSpec('a:b.img:3')).toEqual({ path: 'a:b.img', partition: 3 });
    expect(parseImageSpec('disk.img')).toEqual({ path: 'disk.img' });
  });
});
