/**
 * qcow2 writer options and policy in-process: option checks (qemu-img's names and aliases), the
 * compression choice when -c names no algorithm, compressed output refused on a pipe, compressed
 * cluster placement, progress, and the L1 size limit.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError } from '../../src/model/errors.js';
import { fileSink, type ByteSink } from '../../src/io/sink.js';
import { placeCompressed } from '../../src/containers/qcow2/data-first.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import { openWithHandler, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-qcow2-options-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('qcow2 writer options', () => {
  const disk = new VirtualDisk(MiB).placeBytes(0, new Uint8Array(10).fill(1));
  const write = (opts: Parameters<typeof writeWithHandler>[3]) => writeWithHandler(qcow2Handler, disk, join(dir, 'opt.qcow2'), opts);

  it('refuses unknown keys and bad values, naming them', async () => {
    const cases: Array<[Record<string, string>, RegExp, 'zstd'?]> = [
      [{ subformat: 'x' }, /subformat/],
      [{ cluster_size: '1000' }, /cluster_size/],
      [{ cluster_size: '4M' }, /cluster_size/],
      [{ cluster_size: '256' }, /cluster_size/],
      [{ refcount_bits: '8' }, /refcount_bits/],
      [{ preallocation: 'full' }, /preallocation/],
      [{ compat: '2' }, /compat/],
      [{ compression_type: 'lz4' }, /compression_type/],
      [{ compat: '0.10', compression_type: 'zstd' }, /zstd/],
      [{ compat: '0.10' }, /zstd/, 'zstd'],
      [{ compression_type: 'zlib' }, /conflicts/, 'zstd'],
    ];
    for (const [options, message, algorithm] of cases) {
      const err = await write({ options, compress: algorithm ? { algorithm } : undefined }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskmintError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('-c without an algorithm: the handler takes compression_type (zstd clusters), else deflate; an algorithm that disagrees is refused', async () => {
    const data = new Uint8Array(MiB).map((_, i) => (i >> 4) & 0xff);
    const compressible = new VirtualDisk(MiB).placeBytes(0, data);
    for (const [options, type] of [
      [{ compression_type: 'zstd' }, 'zstd'],
      [{}, 'zlib'],
    ] as const) {
      const path = join(dir, `choose-${type}.qcow2`);
      await writeWithHandler(qcow2Handler, compressible, path, { options: { ...options }, compress: {} });
      const r = await openWithHandler(qcow2Handler, path);
      expect(r.details().compression_type).toBe(type);
      expect(statSync(path).size).toBeLessThan(MiB); // clusters stored compressed (whole: 1 MiB of data alone)
      expect(Buffer.from(await r.read(0, MiB)).equals(Buffer.from(data))).toBe(true);
      await r.close();
    }
    await expect(write({ options: { compression_type: 'zstd' }, compress: { algorithm: 'deflate' } })).rejects.toThrow(/conflicts/);
  });

  it('accepts qemu aliases and size suffixes', async () => {
    for (const [options, version, cs] of [
      [{ compat: 'v2' }, 2, 65536],
      [{ compat: 'v3', cluster_size: '64k' }, 3, 65536],
      [{ compat: '1.1', cluster_size: '2M' }, 3, 2 * MiB],
      [{ compat: '0.10', cluster_size: '512', refcount_bits: '16', preallocation: 'off' }, 2, 512],
    ] as const) {
      const path = join(dir, 'alias.qcow2');
      await writeWithHandler(qcow2Handler, disk, path, { options: { ...options } });
      const r = await openWithHandler(qcow2Handler, path);
      expect(r.details()).toMatchObject({ version, cluster_size: cs });
      await r.close();
    }
  });

  it('compressed output to a pipe is refused before any byte is written', async () => {
    const writes: number[] = [];
    const sink: ByteSink = {
      seekable: false,
      position: 0,
      async write(d) {
        writes.push(d.length);
      },
      async writeParts(parts) {
        for (const d of parts) writes.push(d.length);
      },
      async skip(n) {
        writes.push(n);
      },
      async pwrite() {
        throw new Error('pwrite');
      },
      async finish() {},
    };
    const err = await qcow2Handler
      .write(disk, sink, { options: {}, compress: { algorithm: 'deflate' }, threads: 1, outputPath: '-', createSiblingOutput: async () => sink })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskmintError);
    expect((err as DiskmintError).code).toBe('BAD_ARGUMENT');
    expect((err as Error).message).toMatch(/file/);
    expect(writes).toEqual([]);
  });

  it('compressed clusters pack by sector and never push a refcount past 16 bits', () => {
    const refcounts: number[] = [];
    expect(placeCompressed(4096 + 100, 1000, 4096, refcounts)).toBe(4196);
    expect(refcounts[1]).toBe(1);
    expect(placeCompressed(8192 - 10, 100, 4096, refcounts)).toBe(8182); // straddles: both clusters counted
    expect([refcounts[1], refcounts[2]]).toEqual([2, 1]);
    refcounts[2] = 0xffff;
    expect(placeCompressed(8192 + 90, 10, 4096, refcounts)).toBe(12288);
    expect([refcounts[2], refcounts[3]]).toEqual([0xffff, 1]);
  });

  it('reports progress up to the whole disk', async () => {
    for (const compress of [undefined, { algorithm: 'deflate' as const }]) {
      const seen: number[] = [];
      const h = await open(join(dir, 'progress.qcow2'), 'w');
      try {
        await qcow2Handler.write(disk, fileSink(h), {
          options: {},
          compress,
          threads: 2,
          outputPath: 'progress.qcow2',
          createSiblingOutput: async () => {
            throw new Error('none');
          },
          onProgress: (done, total) => {
            expect(total).toBe(disk.size);
            seen.push(done);
          },
        });
      } finally {
        await h.close();
      }
      expect(seen.every((d, i) => i === 0 || d >= seen[i - 1])).toBe(true);
      expect(seen[seen.length - 1]).toBe(disk.size);
    }
  });

  it('refuses a disk whose L1 table would pass 32 MiB', async () => {
    await expect(writeWithHandler(qcow2Handler, new VirtualDisk(2 ** 40), join(dir, 'big.qcow2'), { options: { cluster_size: '512' } })).rejects.toThrow(/L1/);
  });
});
