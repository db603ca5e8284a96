/**
 * ufs contents made from tarballs: `{"ufs": {"from": ["base.tar.xz", "overlay/"]}}`. A
 * compressed archive is decompressed into a spool file in TMPDIR that the plan owns; every
 * path that makes a plan (build to a file or to stdout, a failed build, verify --expect,
 * the CLI's preset build) must leave TMPDIR as it found it. Owners come from the archive.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildImage, catUfs, checkUfs, DiskmintError, listUfs, planImage, verifyImage, type Layout } from '../../src/index.js';
import { diskmint, ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const STAGE = join(ROOT, 'fixtures/demo/boot-stage.bin');
const KERNEL = Buffer.alloc(200_000, 0x6b);

/** base.tar.xz (uid 1234, gid 567, numeric: names unknown to any table) and overlay/. */
function sources(dir: string): void {
  mkdirSync(join(dir, 'stage', 'boot'), { recursive: true });
  writeFileSync(join(dir, 'stage', 'boot', 'kernel'), KERNEL);
  writeFileSync(join(dir, 'stage', 'motd'), 'from the tarball\n');
  const tar = ['--numeric-owner', '--owner=1234', '--group=567', '--mtime=@1700000000', '--sort=name'];
  execFileSync('tar', [...tar, '-cJf', join(dir, 'base.tar.xz'), '-C', join(dir, 'stage'), '.']);
  mkdirSync(join(dir, 'overlay', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'overlay', 'etc', 'rc.conf'), 'hostname="fw"\n');
  writeFileSync(join(dir, 'overlay', 'motd'), 'from the overlay\n');
}

const layout = (from: string[], extra: Layout['partitions'] = []): Layout => ({
  scheme: 'gpt',
  size: '48M',
  seed: 'ufs-tar',
  partitions: [{ type: 'freebsd-ufs', label: 'os', size: '32M', contents: { ufs: { from } } }, ...extra],
});

async function cat(spec: string, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      parts.push(chunk);
      done();
    },
  });
  await catUfs(spec, path, sink);
  return Buffer.concat(parts);
}

describe('ufs contents from tarballs', () => {
  let dir: string;
  let spool: string;
  const savedTmp = process.env.TMPDIR;
  const spoolFiles = () => readdirSync(spool);

  beforeEach((ctx) => {
    if (!requirePeer('tar', 'tar') || !requirePeer('xz', 'xz-utils')) ctx.skip();
    dir = tempDir('diskmint-ufs-tar-');
    spool = join(dir, 'tmp');
    mkdirSync(spool);
    sources(dir);
    process.env.TMPDIR = spool; // os.tmpdir(), where tarballs are spooled
  });
  afterEach(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });

  it('a plan holds the spool until release(), and planImage alone leaves it to the caller', async () => {
    const planned = await planImage(layout(['base.tar.xz']), { baseDir: dir });
    expect(spoolFiles()).toHaveLength(1);
    await planned.release();
    await planned.release(); // idempotent
    expect(spoolFiles()).toEqual([]);
  });

  it('builds base.tar.xz + overlay/ to a file, owners from the archive, and leaves no spool behind', async () => {
    const img = join(dir, 'disk.img');
    const result = await buildImage(layout(['base.tar.xz', 'overlay/']), { output: img, baseDir: dir });
    expect(spoolFiles()).toEqual([]);
    expect(result.partitions[0].contents).toBe('UFS2 from base.tar.xz + overlay/');
    const boot = (await listUfs(`${img}:1`, '/boot')).find((e) => e.name === 'kernel');
    expect([boot?.stat.uid, boot?.stat.gid, boot?.stat.size]).toEqual([1234, 567, KERNEL.length]);
    expect(await cat(`${img}:1`, '/boot/kernel')).toEqual(KERNEL);
    expect((await cat(`${img}:1`, '/motd')).toString()).toBe('from the overlay\n'); // later layers win
    expect((await cat(`${img}:1`, '/etc/rc.conf')).toString()).toBe('hostname="fw"\n');
    expect(await checkUfs(`${img}:1`)).toEqual([]);

    // verify --expect --contents rebuilds the plan from the same tarball, byte for byte.
    const report = await verifyImage(img, { expect: layout(['base.tar.xz', 'overlay/']), baseDir: dir, contents: true });
    expect(report.findings.filter((f) => f.code.startsWith('expect'))).toEqual([expect.objectContaining({ severity: 'info', code: 'expect.contents' })]);
    expect(report.ok).toBe(true);
    expect(spoolFiles()).toEqual([]);
  });

  it('builds to standard output the same bytes as to a file', async () => {
    const img = join(dir, 'disk.img');
    await buildImage(layout(['base.tar.xz']), { output: img, baseDir: dir });
    const parts: Buffer[] = [];
    const stdout = new Writable({
      write(chunk: Buffer, _enc, done) {
        parts.push(chunk);
        done();
      },
    });
    await buildImage(layout(['base.tar.xz']), { output: '-', stdout, baseDir: dir });
    expect(spoolFiles()).toEqual([]);
    expect(Buffer.concat(parts).equals(await readFile(img))).toBe(true);
  });

  it('failed builds remove the spool: a layout error after the tarball is read, a write error, a tree too large', async () => {
    const missing = { type: 'freebsd-ufs', size: '1M', contents: { file: 'nope.ufs' } };
    await expect(buildImage(layout(['base.tar.xz'], [missing]), { output: join(dir, 'a.img'), baseDir: dir })).rejects.toThrow(/nope\.ufs/);
    expect(spoolFiles()).toEqual([]);

    const err = await buildImage(layout(['base.tar.xz']), { output: join(dir, 'no', 'such', 'b.img'), baseDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(spoolFiles()).toEqual([]);

    const small: Layout = { ...layout(['base.tar.xz']), partitions: [{ type: 'freebsd-ufs', size: '64K', contents: { ufs: { from: ['base.tar.xz'] } } }] };
    await expect(buildImage(small, { output: join(dir, 'c.img'), baseDir: dir })).rejects.toThrow(DiskmintError);
    expect(spoolFiles()).toEqual([]);

    // A nested layout's tarball (planned twice: to size the partition, then in it).
    const nested: Layout = {
      scheme: 'mbr',
      size: '48M',
      partitions: [
        {
          type: 'freebsd',
          size: '40M',
          contents: { image: { scheme: 'bsd', partitions: [{ type: '4.2BSD', contents: { ufs: { from: ['base.tar.xz'] } } }] } },
        },
      ],
    };
    await buildImage(nested, { output: join(dir, 'd.img'), baseDir: dir });
    expect(spoolFiles()).toEqual([]);
    await expect(verifyImage(join(dir, 'd.img'), { expect: { ...nested, size: '1G' }, baseDir: dir })).resolves.toMatchObject({ ok: false });
    expect(spoolFiles()).toEqual([]);
  });

  it('a source that is not there is a layout error naming it', async () => {
    await expect(buildImage(layout(['base.txz']), { output: join(dir, 'e.img'), baseDir: dir })).rejects.toThrow(
      /contents\.ufs\.from: "base\.txz" not found \(looked for .*base\.txz\)/,
    );
  });

  it('the CLI: build --preset nanobsd --os-from base.tar.xz --os-from overlay/', () => {
    const run = diskmint(
      ['build', '--preset', 'nanobsd', '--os-from', 'base.tar.xz', '--os-from', 'overlay/', '--copy-os', '--boot', 'diskmint-fallback'].concat([
        '--boot-stage',
        STAGE,
        '--size',
        '160M',
        '--os-size',
        '8M',
        '-o',
        'fw.img',
      ]),
      { cwd: dir, env: { TMPDIR: spool } },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(spoolFiles()).toEqual([]);
    const list = diskmint(['ufs', 'ls', '--json', 'fw.img:5', '/boot'], { cwd: dir });
    expect(list.status).toBe(0);
    const kernel = (JSON.parse(list.stdout.toString()) as Array<{ name: string; stat: { uid: number; gid: number } }>).find((e) => e.name === 'kernel');
    expect([kernel?.stat.uid, kernel?.stat.gid]).toEqual([1234, 567]);
  });
});
