import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskmint } from '../helpers/cli.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { checkUfsImage } from '../helpers/ufs-image-check.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diskmint-ufs-cli-'));
  await mkdir(join(dir, 'src', 'etc'), { recursive: true });
  await writeFile(join(dir, 'src', 'etc', 'rc.conf'), 'hostname="mint"\n');
  await writeFile(join(dir, 'src', 'kernel'), Buffer.alloc(200_000, 9));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('diskmint ufs create', () => {
  it('writes a labelled UFS2 image, reports it as JSON, and stamps SOURCE_DATE_EPOCH', () => {
    const out = join(dir, 'root.ufs');
    const r = diskmint(['ufs', 'create', out, '--from', join(dir, 'src'), '--label', 'rootfs', '--size', '16M', '--json'], {
      env: { SOURCE_DATE_EPOCH: '1234567890' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout.toString());
    expect(report).toMatchObject({ sizeBytes: 16 * 2 ** 20, blockSize: 32768, fragSize: 4096, label: 'rootfs', inodes: 4 });
    const fs = checkUfsImage(out);
    expect(fs.problems).toEqual([]);
    expect(fs.sb.volname).toBe('rootfs');
    expect(fs.sb.time).toBe(1234567890);
    expect(fs.sb.flags & 2).toBe(0);
  });

  it('--softupdates sets FS_DOSOFTDEP; --block-size and --frag-size choose the geometry', () => {
    const out = join(dir, 'su.ufs');
    const r = diskmint(['ufs', 'create', out, '--from', join(dir, 'src'), '--softupdates', '--block-size', '16384', '--frag-size', '2048']);
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toMatch(/^.*su\.ufs: UFS2, .* cylinder groups/);
    const fs = checkUfsImage(out);
    expect(fs.problems).toEqual([]);
    expect([fs.sb.bsize, fs.sb.fsize, fs.sb.flags & 2]).toEqual([16384, 2048, 2]);
  });

  it('any output format holds the same file system bytes', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const raw = join(dir, 'same.ufs');
    const qcow = join(dir, 'same.qcow2');
    for (const out of [raw, qcow]) expect(diskmint(['ufs', 'create', out, '--from', join(dir, 'src'), '--seed', 'x']).status).toBe(0);
    const back = join(dir, 'back.raw');
    runPeerOk('qemu-img', ['convert', '-O', 'raw', qcow, back]);
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    expect(sha(back)).toBe(sha(raw));
  });

  it('refuses a missing source and a size too small, changing nothing', () => {
    const out = join(dir, 'never.ufs');
    const missing = diskmint(['ufs', 'create', out, '--from', join(dir, 'nope')]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/nope/);
    const small = diskmint(['ufs', 'create', out, '--from', join(dir, 'src'), '--size', '256K']);
    expect(small.status).not.toBe(0);
    expect(small.stderr).toMatch(/too small|does not fit|under the minimum/);
    expect(() => readFileSync(out)).toThrow();
  });
});
