/**
 * qcow2 against peers: qemu-img (qemu-utils) checks, compares and describes our images and
 * writes images we read back; qemu-io makes zero-flag clusters; 7-Zip decodes our images on
 * its own (not zstd: 7zz has no zstd qcow2). The byte-mutation fuzz runs over our images and
 * qemu-img's. FreeBSD mkimg's goldens are in qcow2-mkimg.test.ts, backing chains in
 * qcow2-backing.test.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader, openRawFile } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import type { WriteContext } from '../../src/containers/types.js';
import { openWithHandler, readAll, writeWithHandler } from '../helpers/containers.js';
import { budgetedReader } from '../helpers/budget.js';
import { havePeer, requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { MiB, dir, disk, raw, rawPath } from './qcow2-helpers.js';

/** 7-Zip's decoding of an image, as bytes. */
function sevenZipDecode(path: string): Buffer {
  const r = spawnSync('7zz', ['x', '-tQCOW', '-so', path], { maxBuffer: 64 * MiB });
  expect(r.status, r.stderr?.toString()).toBe(0);
  return r.stdout;
}

interface OurVariant {
  name: string;
  options: Record<string, string>;
  compress?: WriteContext['compress'];
  compat: '1.1' | '0.10';
  clusterSize: number;
  compression: 'zlib' | 'zstd';
}
const OUR_VARIANTS: OurVariant[] = [
  { name: 'v3 default', options: {}, compat: '1.1', clusterSize: 65536, compression: 'zlib' },
  { name: 'v2', options: { compat: '0.10' }, compat: '0.10', clusterSize: 65536, compression: 'zlib' },
  { name: 'v3 512', options: { cluster_size: '512' }, compat: '1.1', clusterSize: 512, compression: 'zlib' },
  { name: 'v3 4096', options: { cluster_size: '4096' }, compat: '1.1', clusterSize: 4096, compression: 'zlib' },
  { name: 'v3 2M', options: { cluster_size: '2M' }, compat: '1.1', clusterSize: 2 * MiB, compression: 'zlib' },
  { name: 'v2 512', options: { compat: '0.10', cluster_size: '512' }, compat: '0.10', clusterSize: 512, compression: 'zlib' },
  { name: 'deflate', options: {}, compress: { algorithm: 'deflate' }, compat: '1.1', clusterSize: 65536, compression: 'zlib' },
  { name: 'deflate 512', options: { cluster_size: '512' }, compress: { algorithm: 'deflate' }, compat: '1.1', clusterSize: 512, compression: 'zlib' },
  {
    name: 'deflate 2M',
    options: { cluster_size: '2M' },
    compress: { algorithm: 'deflate', level: 9 },
    compat: '1.1',
    clusterSize: 2 * MiB,
    compression: 'zlib',
  },
  { name: 'v2 deflate', options: { compat: '0.10' }, compress: { algorithm: 'deflate' }, compat: '0.10', clusterSize: 65536, compression: 'zlib' },
  { name: 'zstd', options: {}, compress: { algorithm: 'zstd' }, compat: '1.1', clusterSize: 65536, compression: 'zstd' },
  { name: 'zstd 512', options: { cluster_size: '512' }, compress: { algorithm: 'zstd' }, compat: '1.1', clusterSize: 512, compression: 'zstd' },
  { name: 'zstd 2M', options: { cluster_size: '2M' }, compress: { algorithm: 'zstd' }, compat: '1.1', clusterSize: 2 * MiB, compression: 'zstd' },
  { name: 'zstd header, uncompressed', options: { compression_type: 'zstd' }, compat: '1.1', clusterSize: 65536, compression: 'zstd' },
];

describe('qemu-img and 7zz judge our qcow2', () => {
  for (const v of OUR_VARIANTS) {
    it(`${v.name}: check, compare, info${v.compression === 'zlib' ? ', 7zz' : ''}`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const path = join(dir, `ours-${v.name.replace(/\W+/g, '-')}.qcow2`);
      await writeWithHandler(qcow2Handler, disk, path, { options: v.options, compress: v.compress });

      const check = runPeer('qemu-img', ['check', '-f', 'qcow2', path]);
      expect(check.out).toMatch(/No errors were found on the image/);
      expect(check.status, check.out).toBe(0);
      if (v.compress) expect(check.out).toMatch(/[1-9][\d.]*% compressed clusters/);

      const compare = runPeer('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', path, rawPath]);
      expect(compare.status, compare.out).toBe(0);

      const info = JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', 'qcow2', path]));
      expect(info.format).toBe('qcow2');
      expect(info['virtual-size']).toBe(raw.length);
      expect(info['cluster-size']).toBe(v.clusterSize);
      expect(info['format-specific'].data.compat).toBe(v.compat);
      if (v.compat === '1.1') expect(info['format-specific'].data['compression-type']).toBe(v.compression);
      expect(info['format-specific'].data['refcount-bits'] ?? 16).toBe(16);

      if (v.compression === 'zlib') {
        if (!requirePeer('7zz', '7zip')) return ctx.skip();
        expect(sevenZipDecode(path).equals(raw)).toBe(true);
      }
    });
  }

  it('an empty disk and a disk of 1000 bytes (size rounded up to 512-byte sectors) pass qemu-img check', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const odd = new VirtualDisk(1000).placeBytes(10, new Uint8Array(990).fill(3));
    for (const [name, d, compress] of [
      ['empty', new VirtualDisk(0), undefined],
      ['empty-c', new VirtualDisk(0), { algorithm: 'deflate' }],
      ['odd', odd, undefined],
      ['odd-c', odd, { algorithm: 'zstd' }],
    ] as Array<[string, VirtualDisk, WriteContext['compress']]>) {
      const path = join(dir, `${name}.qcow2`);
      await writeWithHandler(qcow2Handler, d, path, { compress, options: { cluster_size: '512' } });
      const check = runPeer('qemu-img', ['check', '-f', 'qcow2', path]);
      expect(check.status, `${name}: ${check.out}`).toBe(0);
      expect(JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', path]))['virtual-size']).toBe(Math.ceil(d.size / 512) * 512);
    }
  });

  it('an image streamed through a pipe passes qemu-img check', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const path = join(dir, 'piped.qcow2');
    writeFileSync(path, (await writeWithHandler(qcow2Handler, disk, path, { pipe: true }))!);
    expect(runPeer('qemu-img', ['check', '-f', 'qcow2', path]).status).toBe(0);
    expect(runPeer('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', path, rawPath]).status).toBe(0);
  });
});

const THEIR_VARIANTS: Array<{ name: string; args: string[]; clusterSize: number; version: number; compression: string }> = [
  { name: 'cluster_size=512', args: ['-o', 'cluster_size=512'], clusterSize: 512, version: 3, compression: 'zlib' },
  { name: 'cluster_size=4096', args: ['-o', 'cluster_size=4096'], clusterSize: 4096, version: 3, compression: 'zlib' },
  { name: 'cluster_size=65536', args: ['-o', 'cluster_size=65536'], clusterSize: 65536, version: 3, compression: 'zlib' },
  { name: 'cluster_size=2M', args: ['-o', 'cluster_size=2M'], clusterSize: 2 * MiB, version: 3, compression: 'zlib' },
  { name: '-c (zlib)', args: ['-c'], clusterSize: 65536, version: 3, compression: 'zlib' },
  { name: '-c cluster_size=4096', args: ['-c', '-o', 'cluster_size=4096'], clusterSize: 4096, version: 3, compression: 'zlib' },
  { name: '-c cluster_size=512', args: ['-c', '-o', 'cluster_size=512'], clusterSize: 512, version: 3, compression: 'zlib' },
  { name: '-c compression_type=zstd', args: ['-c', '-o', 'compression_type=zstd'], clusterSize: 65536, version: 3, compression: 'zstd' },
  { name: '-c zstd cluster_size=2M', args: ['-c', '-o', 'compression_type=zstd,cluster_size=2M'], clusterSize: 2 * MiB, version: 3, compression: 'zstd' },
  { name: 'compat=0.10', args: ['-o', 'compat=0.10'], clusterSize: 65536, version: 2, compression: 'zlib' },
  { name: '-c compat=0.10', args: ['-c', '-o', 'compat=0.10'], clusterSize: 65536, version: 2, compression: 'zlib' },
];

/**
 * Open and read what the image says is allocated (bounded: 16 MiB); FormatError/DiskmintError
 * are the only allowed failures. `done.guest` counts the guest bytes read, also when it throws.
 */
async function openAndReadAll(bytes: Uint8Array, source = memoryDiskReader(bytes), done = { guest: 0 }): Promise<void> {
  const r = await qcow2Handler.open(source, {
    path: 'fuzz.qcow2',
    openSibling: async () => {
      throw new Error('none');
    },
  });
  try {
    let budget = 16 * MiB;
    for await (const range of r.allocatedRanges()) {
      const n = Math.min(range.length, budget);
      done.guest += (await r.read(range.offset, n)).length;
      if ((budget -= n) <= 0) break;
    }
  } finally {
    await r.close();
  }
}

describe('we read qemu-img output', () => {
  const made: Uint8Array[] = [];
  for (const v of THEIR_VARIANTS) {
    it(`qemu-img convert -O qcow2 ${v.name}`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const path = join(dir, `theirs-${v.name.replace(/\W+/g, '-')}.qcow2`);
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...v.args, rawPath, path]);
      made.push(readFileSync(path));
      const r = await openWithHandler(qcow2Handler, path);
      try {
        expect(r.details()).toMatchObject({ version: v.version, cluster_size: v.clusterSize, compression_type: v.compression });
        expect(r.size).toBe(raw.length);
        expect((await readAll(r)).equals(raw)).toBe(true);
        // The zero-filled extent at 3 MiB is not allocated by qemu either (when it fills whole clusters).
        if (v.clusterSize <= 65536)
          for await (const range of r.allocatedRanges()) expect(range.offset >= 3 * MiB + 65536 || range.offset + range.length <= 3 * MiB).toBe(true);
      } finally {
        await r.close();
      }
    });
  }

  it('zero-flag clusters from qemu-io read as zeros and are not data', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const path = join(dir, 'zeros.qcow2');
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', path, '1M']);
    runPeerOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5 0 192k', '-c', 'write -z 0 64k', '-c', 'write -z 512k 64k', path]);
    const map = runPeerOk('qemu-img', ['map', '--output=json', '-f', 'qcow2', path]);
    expect(map).toMatch(/"start": 0, "length": 65536, "depth": 0, "present": true, "zero": true, "data": false/);
    made.push(readFileSync(path));
    const r = await openWithHandler(qcow2Handler, path);
    try {
      const data = await readAll(r);
      const expected = Buffer.alloc(MiB);
      expected.fill(5, 65536, 192 * 1024);
      expect(data.equals(expected)).toBe(true);
      const ranges = [];
      for await (const range of r.allocatedRanges()) ranges.push(range);
      expect(ranges).toEqual([{ offset: 65536, length: 131072 }]);
      const asRaw = join(dir, 'zeros.raw');
      runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, asRaw]);
      expect(readFileSync(asRaw).equals(data)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('internal snapshots are ignored: the active L1 table is read', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const path = join(dir, 'snap.qcow2');
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', path, '1M']);
    runPeerOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 64k', path]);
    runPeerOk('qemu-img', ['snapshot', '-c', 'before', path]);
    runPeerOk('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x22 4k 8k', '-c', 'write -P 0x33 512k 4k', path]);
    const r = await openWithHandler(qcow2Handler, path);
    try {
      expect(r.details()).toMatchObject({ snapshots: 1 });
      const asRaw = join(dir, 'snap.raw');
      runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, asRaw]);
      const data = await readAll(r);
      expect(data.equals(readFileSync(asRaw))).toBe(true);
      expect([data[0], data[4096], data[512 * 1024]]).toEqual([0x11, 0x22, 0x33]);
    } finally {
      await r.close();
    }
  });

  it('backing files (refused) and external data files (refused unless allowed) made by qemu-img', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const base = join(dir, 'base.qcow2');
    const overlay = join(dir, 'overlay.qcow2');
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1M']);
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    await expect(openWithHandler(qcow2Handler, overlay)).rejects.toThrow(/backing file ".*base\.qcow2"; backing files are refused/);
    const withData = join(dir, 'with-data.qcow2');
    // qemu stores the data_file name as given; a relative name resolves beside the image.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=external.raw', 'with-data.qcow2', '1M'], { cwd: dir });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x7 64k 128k', 'with-data.qcow2'], { cwd: dir });
    const err = await openWithHandler(qcow2Handler, withData).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/external data file \(external\.raw\)/);

    const r = await qcow2Handler.open(await openRawFile(withData), {
      path: withData,
      allowExternalData: true,
      openSibling: (name) => openRawFile(join(dir, name)),
    });
    try {
      expect(r.details()).toMatchObject({ data_file: 'external.raw' });
      const expected = Buffer.alloc(MiB);
      expected.fill(7, 65536, 3 * 65536);
      expect((await readAll(r)).equals(expected)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it("fuzz: mutated images (ours, and qemu-img's when present) open and read, or throw FormatError/DiskmintError only", async () => {
    // Small images of every kind: plain, zlib, zstd, v2, 512-byte clusters.
    const small = join(dir, 'small.raw');
    writeFileSync(small, raw.subarray(0, 256 * 1024));
    const smallDisk = new VirtualDisk(256 * 1024).placeBytes(0, raw.subarray(0, 256 * 1024));
    const images: Uint8Array[] = [];
    for (const [args, options, compress] of [
      [['-o', 'cluster_size=4096'], { cluster_size: '4096' }, undefined],
      [['-c', '-o', 'cluster_size=4096'], { cluster_size: '4096' }, { algorithm: 'deflate' }],
      [['-c', '-o', 'compression_type=zstd,cluster_size=4096'], { cluster_size: '4096' }, { algorithm: 'zstd' }],
      [['-o', 'compat=0.10,cluster_size=512'], { compat: '0.10', cluster_size: '512' }, undefined],
    ] as Array<[string[], Record<string, string>, WriteContext['compress']]>) {
      const p = join(dir, `fuzz-${images.length}.qcow2`);
      await writeWithHandler(qcow2Handler, smallDisk, p, { options, compress });
      images.push(readFileSync(p));
      if (!havePeer('qemu-img')) continue;
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...args, small, p]);
      images.push(readFileSync(p));
    }
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: images.length - 1 }),
        fc.array(fc.record({ pos: fc.noBias(fc.nat()), near: fc.boolean(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
        async (which, edits) => {
          const bytes = images[which].slice();
          for (const e of edits) bytes[e.pos % (e.near ? Math.min(bytes.length, 4096) : bytes.length)] = e.byte;
          // Work, not time. A runaway stops at 4096 reads or 64 MiB read (WorkBudgetExceeded is
          // neither FormatError nor DiskmintError). And the file bytes read stay within twice
          // the guest bytes returned (a compressed cluster may take more than its size) plus
          // four passes over the whole file for tables: 2,600 runs read at most 42 times and
          // no more than the file's size.
          const source = budgetedReader(bytes, { reads: 4096, bytes: 64 << 20 });
          const done = { guest: 0 };
          try {
            await openAndReadAll(bytes, source, done);
          } catch (err) {
            if (!(err instanceof FormatError) && !(err instanceof DiskmintError)) throw err;
          }
          expect(source.used.bytes).toBeLessThanOrEqual(2 * done.guest + 4 * bytes.length);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
