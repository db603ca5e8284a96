/**
 * `ufs ls|cat|extract|check` and verify's UFS check on a makefs UFS2 file system placed in
 * partition 2 of a GPT disk (sgdisk) and converted to qcow2 (qemu-img): IMG:N through any
 * container; extract against the source tree; paths that would escape the output folder refused.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { DiskmintError } from '../../src/model/errors.js';
import { catUfs, checkUfs, extractUfs, listUfs, openUfs, verifyImage } from '../../src/index.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';
import { havePeer, requirePeer } from '../helpers/peer.js';
import { makefs, makeSourceTree, patternBytes, treeOfFolder } from '../helpers/ufs-makefs.js';

const MiB = 1 << 20;
/** Partition 2 starts at sector 2048 + 8 MiB / 512 (sgdisk -n below). */
const PART2_AT = 2048 * 512 + 8 * MiB;

describe.runIf((havePeer('makefs') && havePeer('sgdisk') && havePeer('qemu-img')) || process.env.CI)('ufs commands on IMG:N of a qcow2 disk', () => {
  let dir: string;
  let src: string;
  let ufsImg: string;
  let qcow: string;
  beforeAll(() => {
    for (const [tool, pkg] of [
      ['makefs', 'makefs'],
      ['sgdisk', 'gdisk'],
      ['qemu-img', 'qemu-utils'],
    ])
      requirePeer(tool, pkg);
    dir = tempDir('diskmint-ufs-cmd-');
    src = join(dir, 'src');
    makeSourceTree(src, 600_000);
    ufsImg = join(dir, 'ufs.img');
    makefs(ufsImg, src, 'version=2', ['-s', '16m']);
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, '');
    execFileSync('truncate', ['-s', '32M', raw]);
    execFileSync('sgdisk', ['-n', '1:2048:+8M', '-t', '1:ef00', '-n', '2:0:+16M', '-t', '2:a503', raw], { stdio: 'pipe' });
    const fd = openSync(raw, 'r+');
    writeSync(fd, readFileSync(ufsImg), 0, undefined, PART2_AT);
    closeSync(fd);
    qcow = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]);
  });

  it('ls, cat and check through the qcow2 container and the GPT partition', async () => {
    const names = (await listUfs(`${qcow}:2`, '/links')).map((e) => e.name).sort();
    expect(names).toEqual(['absolute', 'hard1.txt', 'hard2.txt', 'long', 'short']);
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (b: Buffer) => parts.push(b));
    await catUfs(`${qcow}:2`, '/big.bin', out);
    expect(Buffer.concat(parts).equals(patternBytes('big', 600_000))).toBe(true);
    expect(await checkUfs(`${qcow}:2`)).toEqual([]);
    await expect(listUfs(`${qcow}:1`)).rejects.toThrow(/not a UFS file system/);
    await expect(catUfs(`${qcow}:2`, '/links', new PassThrough())).rejects.toThrow(DiskmintError);
  });

  it('extract writes the tree back: contents, modes, times, symlinks and hard links', async () => {
    const dest = join(dir, 'out');
    const r = await extractUfs(`${qcow}:2`, dest);
    expect(r.skipped).toEqual([]);
    expect(r.hardlinks).toBe(2);
    const back = treeOfFolder(dest);
    const want = treeOfFolder(src);
    // Folder owners and times are set after their contents; owners only as root (lchown).
    if (process.getuid?.() !== 0) for (const t of [back, want]) for (const v of t.values()) Object.assign(v, { uid: 0, gid: 0 });
    expect(back).toEqual(want);
  });

  it('extract refuses to write through a symlink already in the output folder', async () => {
    const dest = join(dir, 'trap');
    mkdirSync(dest);
    mkdirSync(join(dir, 'outside'));
    symlinkSync(join(dir, 'outside'), join(dest, 'links'));
    await expect(extractUfs(`${qcow}:2`, dest)).rejects.toThrow(/exists and is not a folder/);
    expect(treeOfFolder(join(dir, 'outside')).size).toBe(0);
  });

  it("extract refuses a name that would leave the output folder ('/' inside a stored name)", async () => {
    const bytes = readFileSync(ufsImg);
    const ufs = await openUfs(memoryDiskReader(new Uint8Array(bytes)));
    const rootDir = (await ufs.readInode(2)).direct[0] * ufs.geometry.fragSize;
    const at = bytes.indexOf(Buffer.from('small.txt'), rootDir);
    expect(at).toBeGreaterThan(rootDir);
    bytes.write('/', at); // the entry now names "/mall.txt"
    const evil = join(dir, 'evil.ufs');
    writeFileSync(evil, bytes);
    expect((await listUfs(evil)).map((e) => e.name)).toContain('/mall.txt');
    await expect(extractUfs(evil, join(dir, 'evil-out'))).rejects.toThrow(/cannot be extracted/);
    expect((await checkUfs(evil)).map((p) => p.code)).toContain('ufs.dir-entry');
  });

  it('verify runs the check on the UFS partition, and on a whole-disk UFS image', async () => {
    const ok = await verifyImage(qcow);
    expect(ok.findings.filter((f) => f.code.startsWith('ufs.'))).toEqual([]);
    // fs_cstotal.cs_nbfree (fs.h struct fs; makefs writes the superblock at 8192) one off.
    const nbfreeAt = 8192 + 1008 + 8;
    const bad = join(dir, 'bad.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow, bad]);
    const disk = readFileSync(bad);
    disk[PART2_AT + nbfreeAt] ^= 1;
    writeFileSync(bad, disk);
    const r = await verifyImage(bad);
    expect(r.ok).toBe(false);
    expect(r.findings.filter((f) => f.code.startsWith('ufs.')).map((f) => [f.code, f.where])).toEqual([['ufs.cg-summary', 'gpt.partition[2]']]);
    const whole = join(dir, 'whole.ufs');
    const bytes = readFileSync(ufsImg);
    bytes[nbfreeAt] ^= 1;
    writeFileSync(whole, bytes);
    expect((await verifyImage(whole)).findings.map((f) => f.code)).toContain('ufs.cg-summary');
  });

  it('the CLI: ufs ls -l, cat, check, and exit statuses', () => {
    const ls = diskmint(['ufs', 'ls', '-l', `${qcow}:2`, '/links']);
    expect(ls.status).toBe(0);
    expect(ls.stdout.toString()).toMatch(/^l.* short -> \.\.\/small\.txt$/m);
    const cat = diskmint(['ufs', 'cat', `${qcow}:2`, '/links/short']);
    expect(cat.stdout.toString()).toBe('hello, ufs\n');
    expect(diskmint(['ufs', 'check', `${qcow}:2`]).status).toBe(0);
    expect(diskmint(['ufs', 'cat', `${qcow}:2`, '/missing']).status).toBe(1);
    expect(diskmint(['ufs', 'ls', `${qcow}:1`]).status).toBe(2);
  });
});
