/**
 * Peers judge our VMDK bytes and we read theirs: qemu-img 7.2 (check, compare, info, convert)
 * and 7-Zip (7zz reads monolithicSparse, not streamOptimized). mkimg goldens are read and
 * hashed against qemu-img's conversion (sha256 from the goldens' README).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { openDisk } from '../../src/io/open-disk.js';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { vmdkHandler } from '../../src/containers/vmdk/handler.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { decodeDescriptor } from '../../formats/containers/vmdk-descriptor.js';
import { writeWithHandler, openWithHandler, readAll } from '../helpers/containers.js';
import { decodeGolden, tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-vmdk-peers-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = i % 97 < 20 ? 0 : s >>> 24;
  }
  return out;
}

/** A 9 MiB + 1234 byte disk with data at the start, the middle and the very end. */
async function sampleDisk(): Promise<{ disk: VirtualDisk; rawPath: string }> {
  const size = 9 * 1024 * 1024 + 1234;
  const disk = new VirtualDisk(size);
  const raw = Buffer.alloc(size);
  for (const [at, len, seed] of [
    [0, 70_000, 1],
    [3_000_000, 400_000, 2],
    [size - 9_000, 9_000, 3],
  ] as const) {
    const d = pattern(len, seed);
    disk.placeBytes(at, d);
    raw.set(d, at);
  }
  const rawPath = join(dir, `sample-${Math.random().toString(36).slice(2)}.raw`);
  await writeFile(rawPath, raw);
  return { disk, rawPath };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('qemu-img and 7zz judge our VMDK', () => {
  for (const subformat of ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'] as const) {
    for (const adapter of ['ide', 'lsilogic', 'pvscsi'] as const) {
      it(`${subformat} (${adapter}): check clean, compare identical, info shows it`, async (ctx) => {
        if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
        const { disk, rawPath } = await sampleDisk();
        const path = join(dir, `ours-${subformat}-${adapter}.vmdk`);
        await writeWithHandler(vmdkHandler, disk, path, { options: { subformat, adapter_type: adapter } });
        const check = runPeer('qemu-img', ['check', '-f', 'vmdk', path]);
        expect(check.out).toContain('No errors were found');
        expect(check.status).toBe(0);
        const cmp = runPeer('qemu-img', ['compare', '-f', 'vmdk', '-F', 'raw', path, rawPath]);
        expect(cmp.out).toContain('Images are identical');
        const info = JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', 'vmdk', path]));
        expect(info.format).toBe('vmdk');
        expect(info['format-specific'].data['create-type']).toBe(subformat);
        const descriptorFile = subformat === 'monolithicFlat' || subformat.startsWith('twoGb'); // else embedded at sector 1
        const descBytes = descriptorFile ? await readFile(path) : (await readFile(path)).subarray(512, 512 * 21);
        expect(decodeDescriptor(descBytes).ddb.adapterType).toBe(adapter);
      });
    }
  }

  // Issue 17 item 16: the capacity was rounded up to a whole grain (102,400 bytes became 131,072).
  for (const size of [102_400, 100_000, 1000]) {
    it(`streamOptimized keeps a ${size}-byte disk's size as qemu-img does (whole sectors, not whole grains)`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const raw = pattern(size, 7);
      const rawPath = join(dir, `size-${size}.raw`);
      await writeFile(rawPath, raw);
      const disk = new VirtualDisk(size);
      disk.placeBytes(0, raw);
      const ours = join(dir, `size-${size}-ours.vmdk`);
      const theirs = join(dir, `size-${size}-qemu.vmdk`);
      await writeWithHandler(vmdkHandler, disk, ours, { options: { subformat: 'streamOptimized' } });
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', rawPath, theirs]);
      const virtualSize = (path: string) => JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', 'vmdk', path]))['virtual-size'];
      expect(virtualSize(ours)).toBe(Math.ceil(size / 512) * 512);
      expect(virtualSize(ours)).toBe(virtualSize(theirs));
      expect(runPeer('qemu-img', ['check', '-f', 'vmdk', ours]).out).toContain('No errors were found');
      expect(runPeer('qemu-img', ['compare', '-f', 'vmdk', '-F', 'vmdk', ours, theirs]).out).toContain('Images are identical');
      const r = await openWithHandler(vmdkHandler, ours);
      try {
        expect(r.size).toBe(Math.ceil(size / 512) * 512);
        expect(Buffer.from((await readAll(r)).subarray(0, size)).equals(Buffer.from(raw))).toBe(true);
      } finally {
        await r.close();
      }
    });
  }

  it('7zz decodes our monolithicSparse identically', async (ctx) => {
    if (!requirePeer('7zz', '7zip')) return ctx.skip();
    const { disk, rawPath } = await sampleDisk();
    const path = join(dir, 'ours-7z.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const out = execFileSync('7zz', ['x', '-tVMDK', '-so', path], { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    const raw = await readFile(rawPath);
    expect(out.length).toBe(Math.ceil(raw.length / 512) * 512);
    expect(out.subarray(0, raw.length).equals(raw)).toBe(true);
    expect(out.subarray(raw.length).every((b) => b === 0)).toBe(true);
  });
});

async function readRange(r: ContainerReader, at: number, len: number): Promise<Buffer> {
  return Buffer.from(await r.read(at, len));
}

describe('we read qemu-img output', () => {
  for (const subformat of ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
    it(`qemu-img convert -o subformat=${subformat}`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const { rawPath } = await sampleDisk();
      const path = join(dir, `qemu-${subformat}.vmdk`);
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat},adapter_type=lsilogic`, rawPath, path]);
      // Found by content, as every command opens images (qemu pads split descriptors with NULs).
      const opened = await openDisk(path);
      await opened.reader.close();
      expect(opened.format).toBe('vmdk');
      const r = await openWithHandler(vmdkHandler, path);
      try {
        const raw = await readFile(rawPath);
        const back = await readAll(r);
        expect(back.subarray(0, raw.length).equals(raw)).toBe(true);
        expect(back.subarray(raw.length).every((b) => b === 0)).toBe(true);
        expect(r.subformat).toBe(subformat);
        expect(r.details()).toMatchObject({ createType: subformat, adapterType: 'lsilogic', geometry: expect.stringMatching(/\/255\/63$/) });
      } finally {
        await r.close();
      }
    });
  }

  for (const subformat of ['twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
    it(`${subformat} of a 2.5 GiB sparse disk spans two extents`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const size = 2.5 * 1024 ** 3;
      const rawPath = join(dir, `big-${subformat}.raw`);
      const head = pattern(100_000, 5);
      const tail = pattern(70_000, 6);
      const fh = await open(rawPath, 'w');
      await fh.truncate(size);
      await fh.write(head, 0, head.length, 4096);
      await fh.write(tail, 0, tail.length, size - tail.length);
      await fh.close();
      const path = join(dir, `big-${subformat}.vmdk`);
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, rawPath, path]);
      await rm(rawPath);
      const r = await openWithHandler(vmdkHandler, path);
      try {
        expect(r.size).toBe(size);
        expect(r.details().extents).toBe(2);
        expect((await readRange(r, 4096, head.length)).equals(Buffer.from(head))).toBe(true);
        expect((await readRange(r, size - tail.length, tail.length)).equals(Buffer.from(tail))).toBe(true);
        expect((await readRange(r, 0, 4096)).every((b) => b === 0)).toBe(true);
        expect((await readRange(r, 2 ** 31 - 65536, 131072)).every((b) => b === 0)).toBe(true);
        let allocated = 0;
        for await (const x of r.allocatedRanges()) allocated += x.length;
        if (subformat === 'twoGbMaxExtentSparse') expect(allocated).toBeLessThan(1 << 20);
        else expect(allocated).toBe(size);
      } finally {
        await r.close();
      }
    });
  }
});

describe('our split VMDKs (twoGbMaxExtent*)', () => {
  for (const [subformat, kind] of [
    ['twoGbMaxExtentSparse', 's'],
    ['twoGbMaxExtentFlat', 'f'],
  ] as const) {
    it(`${subformat} splits a 2.5 GiB disk into 2 GiB extent files that qemu-img checks and reads identical`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const size = 2.5 * 1024 ** 3;
      const head = pattern(100_000, 7);
      const tail = pattern(70_000, 8);
      const across = pattern(300_000, 9); // straddles the 2 GiB boundary between the two extents
      const disk = new VirtualDisk(size)
        .placeBytes(4096, head)
        .placeBytes(2 ** 31 - 100_000, across)
        .placeBytes(size - tail.length, tail);
      const rawPath = join(dir, `split-${kind}.raw`);
      const fh = await open(rawPath, 'w');
      await fh.truncate(size);
      for (const [bytes, at] of [
        [head, 4096],
        [across, 2 ** 31 - 100_000],
        [tail, size - tail.length],
      ] as const)
        await fh.write(bytes, 0, bytes.length, at);
      await fh.close();
      const path = join(dir, `ours-split-${kind}.vmdk`);
      await writeWithHandler(vmdkHandler, disk, path, { options: { subformat } });
      const [first, second] = [1, 2].map((n) => join(dir, `ours-split-${kind}-${kind}00${n}.vmdk`));
      if (kind === 'f') {
        expect(statSync(first).size).toBe(2 ** 31);
        expect(statSync(second).size).toBe(size - 2 ** 31);
      }
      expect(statSync(first).blocks * 512).toBeLessThan(4 << 20); // zeros are not stored
      if (kind === 's') {
        const check = runPeer('qemu-img', ['check', '-f', 'vmdk', path]);
        expect(check.out).toContain('No errors were found');
      }
      const info = JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', 'vmdk', path]));
      expect(info['format-specific'].data['create-type']).toBe(subformat);
      expect(info['format-specific'].data.extents.length).toBe(2);
      expect(runPeer('qemu-img', ['compare', '-f', 'vmdk', '-F', 'raw', path, rawPath]).out).toContain('Images are identical');
      await rm(rawPath);
    });
  }
});

describe('delta disks (parent links)', () => {
  it('a qemu-img child reads through its parent only when allowed; CID mismatch refused', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const { disk } = await sampleDisk();
    const sub = tempDir('diskmint-vmdk-delta-');
    const base = join(sub, 'base.vmdk');
    const child = join(sub, 'child.vmdk');
    await writeWithHandler(vmdkHandler, disk, base);
    runPeerOk('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'base.vmdk', '-F', 'vmdk', child]);
    runPeerOk('qemu-io', ['-f', 'vmdk', '-c', 'write -P 0x41 3000000 70000', child]);
    runPeerOk('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', child, join(sub, 'want.raw')]);
    const openChild = (allowBacking: boolean) =>
      openRawFile(child).then((f) =>
        vmdkHandler.open(f, { path: child, allowBacking, openSibling: (name) => openRawFile(join(sub, name)) }).catch(async (e) => {
          await f.close();
          throw e;
        }),
      );
    await expect(openChild(false)).rejects.toMatchObject({ name: 'FormatError', message: expect.stringMatching(/parent link to "base.vmdk"/) });
    const r = await openChild(true);
    try {
      const want = await readFile(join(sub, 'want.raw'));
      expect((await readAll(r)).subarray(0, want.length).equals(want)).toBe(true);
      expect(r.details().parent).toBe('base.vmdk');
      let covered = 0;
      for await (const x of r.allocatedRanges()) covered += x.length;
      expect(covered).toBeGreaterThanOrEqual(70_000 + 400_000);
    } finally {
      await r.close();
    }
    // rewrite the base: its CID changes with its layout, so the child's parentCID no longer matches
    const other = new VirtualDisk(disk.size);
    other.placeBytes(0, pattern(5000, 9));
    await writeWithHandler(vmdkHandler, other, base);
    await expect(openChild(true)).rejects.toMatchObject({ name: 'FormatError', message: expect.stringMatching(/CID/) });
    await rm(sub, { recursive: true, force: true });
  });
});

describe('mkimg goldens', () => {
  const goldens: Array<[string, string]> = [
    ['img-1x1-512-gpt.vmdk.hex', '7bec1f3798a95e2b33eba7e24531bbe40958c8498fa30947a8fb057031908c68'],
    ['img-63x255-4096-gpt.vmdk.hex', '3f7557a618b92bd11b7e257887b87b354fba134c40aa10fdc265fe0742d9a642'],
  ];
  for (const [name, want] of goldens) {
    it(`${name}: our reader equals qemu-img convert -O raw`, async () => {
      const path = decodeGolden(name, dir);
      expect(await vmdkHandler.detect({ size: 4, read: async () => (await readFile(path)).subarray(0, 4), close: async () => {} })).toBe(true);
      const r = await openWithHandler(vmdkHandler, path);
      try {
        expect(r.size).toBe(5242880);
        expect(sha256(await readAll(r))).toBe(want);
        expect(r.details()).toMatchObject({ createType: 'monolithicSparse', grainSize: 8192, compression: 'none' });
      } finally {
        await r.close();
      }
    });
  }
});
