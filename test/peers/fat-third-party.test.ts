/**
 * FAT volumes made by mkfs.fat + mcopy, then damaged the way third-party images are, read side by
 * side with mtools and fsck.fat (issue 17, items 12 and 13):
 * - a cluster chain that loops, or two chains that share clusters: every FAT command refuses the
 *   file by name (fsck.fat reports both), never wrong bytes with exit 0;
 * - invalid 8.3 short names (a leading space, an empty name, '>' inside): verify reports each, as
 *   `fsck.fat -n` does; ls and extract show them under a safe name and say so.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { catFat, extractFat, listFat } from '../../src/ops/fat.js';
import { diskmint } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const scratch = tempDir('diskmint-fat-3p-');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function mtools(tool: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(tool, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8' } });
  return { status: r.status ?? -1, out: `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}` };
}

/** A 10 MiB FAT16 volume (2 KiB clusters) made by mkfs.fat, with `files` copied in by mcopy. */
function makeVolume(name: string, files: Record<string, Buffer>): string {
  const img = join(scratch, name);
  const r = runPeer('mkfs.fat', ['-F', '16', '-s', '4', '-i', '12345678', '-C', img, '10240']);
  expect(r.status, r.out).toBe(0);
  for (const [file, bytes] of Object.entries(files)) {
    const src = join(scratch, `src-${name}-${file}`);
    writeFileSync(src, bytes);
    const c = mtools('mcopy', ['-i', img, src, `::${file}`]);
    expect(c.status, c.out).toBe(0);
  }
  return img;
}

/** Geometry of a FAT16 volume, enough to patch its FATs and root folder. */
function fat16(img: Buffer): { fats: number[]; root: number } {
  const bps = img.readUInt16LE(11);
  const reserved = img.readUInt16LE(14);
  const count = img[16];
  const fatSectors = img.readUInt16LE(22);
  const fats = Array.from({ length: count }, (_, k) => (reserved + k * fatSectors) * bps);
  return { fats, root: (reserved + count * fatSectors) * bps };
}

/** Set FAT entry `cluster` to `value` in every FAT copy. */
function setFat(img: Buffer, cluster: number, value: number): void {
  for (const at of fat16(img).fats) img.writeUInt16LE(value, at + 2 * cluster);
}

/** The root folder's short entries (no LFN, no label), as [offset, first cluster, name11]. */
function rootEntries(img: Buffer): { at: number; cluster: number; name11: string }[] {
  const { root } = fat16(img);
  const out = [];
  for (let at = root; img[at] !== 0; at += 32) {
    const attr = img[at + 11];
    if (img[at] === 0xe5 || (attr & 0x0f) === 0x0f || attr & 0x08) continue;
    out.push({ at, cluster: img.readUInt16LE(at + 26), name11: img.toString('latin1', at, at + 11) });
  }
  return out;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 11)) & 0xff;
  return b;
}

async function catBytes(img: string, path: string): Promise<Buffer> {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (d: Buffer) => parts.push(d));
  await catFat(img, path, sink);
  return Buffer.concat(parts);
}

describe('a looping or cross-linked cluster chain is an error naming the file (item 12)', () => {
  it('a chain that loops back within the file size: fsck.fat calls it circular, and cat, extract and verify refuse it', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('mcopy', 'mtools')) return ctx.skip();
    // 5 clusters of 2 KiB: a chain 2,3,4,5,6 made to loop 4 -> 2 reads 2,3,4,2,3 (same count, wrong bytes).
    const src = pattern(5 * 2048 - 100, 1);
    const img = makeVolume('loop.img', { 'LOOP.BIN': src, 'OK.BIN': pattern(3000, 2) });
    const bytes = readFileSync(img);
    const [loop] = rootEntries(bytes).filter((e) => e.name11 === 'LOOP    BIN');
    setFat(bytes, loop.cluster + 2, loop.cluster);
    writeFileSync(img, bytes);

    // The judge: fsck.fat names the file's chain as circular (Debian 12's mtools 4.0.33 reads
    // it as we used to: the loop's first cluster again).
    const fsck = runPeer('fsck.fat', ['-n', img]);
    expect(fsck.out).toMatch(/\/LOOP\.BIN\n\s+Circular cluster chain/);

    await expect(catBytes(img, '/LOOP.BIN')).rejects.toThrow(/\/LOOP\.BIN: the cluster chain loops back to cluster/);
    const cat = diskmint(['fat', 'cat', img, 'LOOP.BIN']);
    expect(cat.status, cat.stderr).toBe(2);
    expect(cat.stderr).toMatch(/LOOP\.BIN.*loops/);
    expect(cat.stdout.length).toBe(0); // refused before any byte is written
    expect((await catBytes(img, '/OK.BIN')).equals(pattern(3000, 2))).toBe(true);

    const dest = join(scratch, 'loop-out');
    await expect(extractFat(img, dest)).rejects.toThrow(/\/LOOP\.BIN: the cluster chain loops/);
    const ex = diskmint(['fat', 'extract', img, join(scratch, 'loop-out-cli')]);
    expect(ex.status).toBe(2);
    expect(ex.stderr).toMatch(/LOOP\.BIN/);

    const v = diskmint(['verify', img]);
    expect(v.status).toBe(1);
    expect(v.stdout.toString()).toMatch(/fat\.CHAIN_LOOP.*LOOP\.BIN/);
  });

  it('two files whose chains merge (cross-linked): both are refused by name', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('mcopy', 'mtools')) return ctx.skip();
    const img = makeVolume('xlink.img', { 'A.BIN': pattern(3 * 2048, 3), 'B.BIN': pattern(3 * 2048, 4) });
    const bytes = readFileSync(img);
    const [a, b] = rootEntries(bytes);
    // A's second cluster now leads into B's second cluster: A = a, a+1, b+1, b+2 (its size says 3).
    setFat(bytes, a.cluster, b.cluster + 1);
    writeFileSync(img, bytes);
    const fsck = runPeer('fsck.fat', ['-n', img]);
    expect(fsck.out, fsck.out).toMatch(/shar|cross/i);

    await expect(catBytes(img, '/A.BIN')).rejects.toThrow(/\/A\.BIN: cluster \d+ is shared with another cluster chain/);
    await expect(catBytes(img, '/B.BIN')).rejects.toThrow(/\/B\.BIN: cluster \d+ is shared with another cluster chain/);
    await expect(extractFat(img, join(scratch, 'xlink-out'))).rejects.toThrow(/\/A\.BIN: .*cross-linked/);
    const v = diskmint(['verify', img]);
    expect(v.stdout.toString()).toMatch(/fat\.CROSS_LINK/);
  });

  it('two entries that start at the same cluster: extract names both; cat of either names the other', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('mcopy', 'mtools')) return ctx.skip();
    const img = makeVolume('same.img', { 'A.BIN': pattern(2048, 5), 'B.BIN': pattern(2048, 6) });
    const bytes = readFileSync(img);
    const [a, b] = rootEntries(bytes);
    setFat(bytes, b.cluster, 0); // B's own cluster freed, B points at A's
    bytes.writeUInt16LE(a.cluster, b.at + 26);
    writeFileSync(img, bytes);
    await expect(extractFat(img, join(scratch, 'same-out'))).rejects.toThrow(/\/B\.BIN: cluster \d+ also belongs to \/A\.BIN/);
    const fsck = runPeer('fsck.fat', ['-n', img]);
    expect(fsck.out, fsck.out).toMatch(/shar|cross/i); // the judge sees the cross-link too
    await expect(catBytes(img, '/A.BIN')).rejects.toThrow(/\/A\.BIN: its first cluster \d+ is also where \/B\.BIN starts \(cross-linked\)/);
    await expect(catBytes(img, '/B.BIN')).rejects.toThrow(/\/B\.BIN: its first cluster \d+ is also where \/A\.BIN starts/);
  });

  it('a folder whose chain loops is refused by name, not read until the length bound', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('mcopy', 'mtools')) return ctx.skip();
    const img = makeVolume('dirloop.img', {});
    expect(mtools('mmd', ['-i', img, '::DIR']).status).toBe(0);
    const bytes = readFileSync(img);
    const [dir] = rootEntries(bytes);
    setFat(bytes, dir.cluster, dir.cluster); // the folder's one cluster points at itself
    writeFileSync(img, bytes);
    await expect(listFat(img, '/DIR')).rejects.toThrow(/DIR: the cluster chain loops back to cluster/);
  });
});

describe('invalid 8.3 short names (item 13)', () => {
  it('verify reports each name fsck.fat -n reports; ls and extract give safe names and say so', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('mcopy', 'mtools')) return ctx.skip();
    const img = makeVolume('names.img', {
      'AAA.TXT': Buffer.from('leading space\n'),
      'BBB.TXT': Buffer.from('empty name\n'),
      'CCC.TXT': Buffer.from('greater-than\n'),
      'DDD.TXT': Buffer.from('fine\n'),
    });
    const bytes = readFileSync(img);
    const entries = rootEntries(bytes);
    const stored = [' AB     TXT', '           ', 'A>B     TXT'];
    stored.forEach((name11, i) => bytes.write(name11, entries[i].at, 'latin1'));
    writeFileSync(img, bytes);

    // The judge: fsck.fat -n names each of the three.
    const fsck = runPeer('fsck.fat', ['-n', img]);
    expect(fsck.status).toBe(1);
    expect(fsck.out.match(/Bad short file name/g)).toHaveLength(3);

    const v = diskmint(['verify', '--json', img]);
    expect(v.status).toBe(1);
    const findings = (JSON.parse(v.stdout.toString()) as { findings: { code: string; message: string }[] }).findings.filter(
      (f) => f.code === 'fat.BAD_SHORT_NAME',
    );
    expect(findings.map((f) => f.message)).toEqual([
      expect.stringContaining('" AB.TXT" is not a valid 8.3 name: it starts with a space'),
      expect.stringContaining('"" is not a valid 8.3 name: it is empty'),
      expect.stringContaining('"A>B.TXT" is not a valid 8.3 name: it holds the character ">"'),
    ]);

    const listed = await listFat(img);
    expect(listed.map((e) => [e.name, e.path, e.storedName])).toEqual([
      ['_AB.TXT', '/_AB.TXT', ' AB.TXT'],
      ['_', '/_', ''],
      ['A_B.TXT', '/A_B.TXT', 'A>B.TXT'],
      ['DDD.TXT', '/DDD.TXT', undefined],
    ]);
    expect((await catBytes(img, '/_')).toString()).toBe('empty name\n');

    const dest = join(scratch, 'names-out');
    const cli = diskmint(['fat', 'extract', img, dest]);
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stderr).toContain('the stored name "" is not a valid 8.3 name; extracted as "_"');
    expect(readdirSync(dest).sort()).toEqual(['A_B.TXT', 'DDD.TXT', '_', '_AB.TXT']);
    expect(readFileSync(join(dest, '_AB.TXT'), 'utf8')).toBe('leading space\n');
    expect(readFileSync(join(dest, 'A_B.TXT'), 'utf8')).toBe('greater-than\n');
    expect(readFileSync(join(dest, 'DDD.TXT'), 'utf8')).toBe('fine\n');

    // Two empty names in one folder do not take each other's safe name.
    bytes.write('           ', entries[3].at, 'latin1');
    writeFileSync(img, bytes);
    expect((await listFat(img)).map((e) => e.name)).toEqual(['_AB.TXT', '_', 'A_B.TXT', '_~1']);
  });
});

describe('a FAT volume made by mkfs.fat --mbr (item 14)', () => {
  it('reads as sfdisk and fsck.fat read it: partition 1 is the volume, no mbr.overlaps-mbr', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const img = join(scratch, 'mbr-fat.img');
    for (const bits of ['12', '16', '32']) {
      rmSync(img, { force: true });
      const r = runPeer('mkfs.fat', [
        '-F',
        bits,
        '--mbr=y',
        '-i',
        '12345678',
        '-C',
        img,
        ({ '12': '8000', '16': '20480', '32': '40000' } as Record<string, string>)[bits],
      ]);
      expect(r.status, r.out).toBe(0);
      // The judges: sfdisk shows the one partition at sector 0; fsck.fat is clean.
      const sf = runPeer('sfdisk', ['-d', img]);
      expect(sf.out).toMatch(/mbr-fat\.img1 : start=\s+0, size=\s+\d+, type=[0-9a-f]+, bootable/);
      expect(runPeer('fsck.fat', ['-n', img]).status).toBe(0);

      const v = diskmint(['verify', '--json', img]);
      const codes = (JSON.parse(v.stdout.toString()) as { findings: { code: string }[] }).findings.map((f) => f.code);
      expect(codes).not.toContain('mbr.overlaps-mbr');
      expect(codes).toContain('mbr.fat-self-entry');
      expect(v.status, v.stdout.toString()).toBe(0);
      expect((await listFat(`${img}:1`)).length).toBe(0);
    }
  });

  it('a partition at sector 0 that is not the FAT volume of that sector is still an error', () => {
    const img = join(scratch, 'mbr-zero.img');
    const bytes = Buffer.alloc(1 << 20);
    bytes.writeUInt8(0x80, 446);
    bytes.writeUInt8(0x83, 446 + 4); // a Linux partition from sector 0 over an MBR that is no FAT boot sector
    bytes.writeUInt32LE(0, 446 + 8);
    bytes.writeUInt32LE(2048, 446 + 12);
    bytes.writeUInt16LE(0xaa55, 510);
    writeFileSync(img, bytes);
    const v = diskmint(['verify', '--json', img]);
    const codes = (JSON.parse(v.stdout.toString()) as { findings: { code: string }[] }).findings.map((f) => f.code);
    expect(codes).toContain('mbr.overlaps-mbr');
  });
});
