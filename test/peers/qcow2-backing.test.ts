/**
 * qcow2 backing chains with --allow-backing (issue 17 item 10), judged by qemu-img: a chain read,
 * converted (flattened) and compared as qemu-img does; loops, missing files and a backing_format
 * the content belies refused.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDisk } from '../../src/io/open-disk.js';
import { convertImage } from '../../src/ops/convert.js';
import { compareImages } from '../../src/ops/compare.js';
import { readAll } from '../helpers/containers.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { MiB, dir } from './qcow2-helpers.js';

describe('qcow2 backing chains with --allow-backing (issue 17 item 10): qemu-img judges', () => {
  it('a three-image chain made by qemu-img and qemu-io: read, converted (flattened) and compared as qemu-img does', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const chainDir = join(dir, 'chain');
    mkdirSync(join(chainDir, 'sub'), { recursive: true });
    const run = (tool: string, args: string[]) => execFileSync(tool, args, { cwd: chainDir });
    run('qemu-img', ['create', '-q', '-f', 'qcow2', 'base.qcow2', '4M']);
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', '-c', 'write -P 0x22 2M 64k', 'base.qcow2']);
    // Relative backing names resolve against the image's own folder (sub/top.qcow2 names ../base.qcow2).
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '../base.qcow2', '-F', 'qcow2', 'sub/top.qcow2', '6M']);
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 512k 64k', '-c', 'write -z 2M 64k', '-c', 'write -P 0x55 5M 4k', 'sub/top.qcow2']);
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'sub/top.qcow2', '-F', 'qcow2', 'top2.qcow2']);
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x44 3M 4k', 'top2.qcow2']);
    const top2 = join(chainDir, 'top2.qcow2');
    const want = join(chainDir, 'want.raw');
    run('qemu-img', ['convert', '-O', 'raw', top2, want]);
    const expected = readFileSync(want);
    expect(expected[0]).toBe(0x11);
    expect(expected[2 * MiB]).toBe(0);
    // Refused unless allowed.
    await expect(openDisk(top2)).rejects.toThrow(/backing file "sub\/top\.qcow2"; backing files are refused/);
    const { reader } = await openDisk(top2, { allowBacking: true });
    try {
      expect(reader.size).toBe(6 * MiB);
      expect(reader.details()).toMatchObject({ backing_file: 'sub/top.qcow2' });
      expect((await readAll(reader)).equals(expected)).toBe(true);
      // Every byte that is not zero lies in an allocated range.
      const got = Buffer.alloc(expected.length);
      for await (const r of reader.allocatedRanges()) expected.copy(got, r.offset, r.offset, r.offset + r.length);
      expect(got.equals(expected)).toBe(true);
    } finally {
      await reader.close();
    }
    const out = join(chainDir, 'flat.qcow2');
    await convertImage(top2, out, { allowBacking: true });
    const cmp = runPeer('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', out, want]);
    expect(cmp.status, cmp.out).toBe(0);
    expect(JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', out]))['backing-filename']).toBeUndefined();
    expect((await compareImages(top2, want, { allowBacking: true })).identical).toBe(true);
  });

  it('a loop, a missing backing file and a backing_format that the content belies are refused', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const loopDir = join(dir, 'loop');
    mkdirSync(loopDir, { recursive: true });
    const run = (args: string[]) => execFileSync('qemu-img', args, { cwd: loopDir });
    run(['create', '-q', '-f', 'qcow2', 'a.qcow2', '1M']);
    run(['create', '-q', '-f', 'qcow2', '-b', 'a.qcow2', '-F', 'qcow2', 'b.qcow2']);
    run(['rebase', '-u', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', 'a.qcow2']); // a -> b -> a
    await expect(openDisk(join(loopDir, 'b.qcow2'), { allowBacking: true })).rejects.toThrow(/backing chain loops/);
    run(['create', '-q', '-f', 'qcow2', '-b', 'gone.qcow2', '-F', 'qcow2', '-u', 'c.qcow2', '1M']);
    await expect(openDisk(join(loopDir, 'c.qcow2'), { allowBacking: true })).rejects.toThrow(/backing file "gone\.qcow2" of c\.qcow2 not found/);
    run(['create', '-q', '-f', 'qcow2', 'd.qcow2', '1M']);
    run(['create', '-q', '-f', 'qcow2', '-b', 'd.qcow2', '-F', 'raw', '-u', 'e.qcow2', '1M']);
    await expect(openDisk(join(loopDir, 'e.qcow2'), { allowBacking: true })).rejects.toThrow(/should be raw \(backing_format\) but holds qcow2/);
  });
});
