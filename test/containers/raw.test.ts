/**
 * raw is a handler like the others: listed in the registry (detected last, as the fallback),
 * opened and written through it. Writing through the registry (writeImage) gives the same bytes
 * as the raw writer did before it became a handler: to a file (sparse: zero blocks stay holes)
 * and to a pipe (every byte).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { CONTAINER_HANDLERS, detectContainer, handlerFor, outputFormatFor } from '../../src/containers/registry.js';
import { rawHandler } from '../../src/containers/raw/handler.js';
import { writeRawImage } from '../../src/containers/raw/writer.js';
import { writeImage } from '../../src/io/write-image.js';
import { openDisk } from '../../src/io/open-disk.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { fill } from '../helpers/containers.js';

const dir = tempDir('diskmint-raw-');
const KIB = 1024;
const MIB = 1 << 20;

/**
 * A disk of every kind of run: bytes, a file with an all-zero 64 KiB block inside its data,
 * a reader, gaps, and data up to the last byte of an odd size.
 */
function mixedDisk(): VirtualDisk {
  const size = 9 * MIB + 4 * KIB + 123;
  const fileData = Buffer.from(fill(3 * MIB, 5));
  fileData.fill(0, MIB, MIB + 64 * KIB);
  const source = join(dir, 'source.bin');
  writeFileSync(source, fileData);
  const readerData = fill(200 * KIB + 7, 9);
  return new VirtualDisk(size)
    .placeBytes(0, fill(512, 1))
    .placeBytes(4 * KIB, fill(100, 2))
    .place(MIB, fileData.length, { kind: 'file', path: source, offset: 0 })
    .place(5 * MIB + 3, readerData.length, {
      kind: 'reader',
      offset: 0,
      reader: { size: readerData.length, read: async (o, n) => readerData.slice(o, o + n), close: async () => {} },
    })
    .placeBytes(size - 700, fill(700, 3));
}

/** The bytes of the raw image of mixedDisk(), as the raw writer made them before raw was a handler. */
const MIXED_SHA256 = 'a7db99490ce08098d124b4ab0b2d0f0b62cd9e7e8b670c8884a7f54d64bd80c3';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function toPipe(write: (stdout: PassThrough) => Promise<unknown>): Promise<Buffer> {
  const pipe = new PassThrough();
  const chunks: Buffer[] = [];
  pipe.on('data', (c: Buffer) => chunks.push(c));
  await write(pipe);
  return Buffer.concat(chunks);
}

describe('raw, a container handler', () => {
  it('is in the registry, detected last (any file is raw), and the output format by default', async () => {
    expect(CONTAINER_HANDLERS.map((h) => h.format)).toEqual(['qcow2', 'vhdx', 'vmdk', 'vhd', 'raw']);
    expect(CONTAINER_HANDLERS.at(-1)).toBe(rawHandler);
    expect(handlerFor('raw')).toBe(rawHandler);
    for (const name of ['disk.img', 'disk.raw', 'disk.iso', 'disk', '-']) expect(outputFormatFor(undefined, name)).toBe('raw');
    expect(outputFormatFor('img', 'x.qcow2')).toBe('raw');

    const path = join(dir, 'detect.img');
    writeFileSync(path, fill(3000, 4));
    const file = await openRawFile(path);
    try {
      expect(await rawHandler.detect(file)).toBe(true);
      expect(await detectContainer(file)).toBe(rawHandler);
    } finally {
      await file.close();
    }
    const opened = await openDisk(path);
    try {
      expect(opened.format).toBe('raw');
      expect(opened.reader.format).toBe('raw');
      expect((opened.reader as { sourcePath?: string }).sourcePath).toBe(path);
      const ranges = [];
      for await (const r of opened.reader.allocatedRanges()) ranges.push(r);
      expect(ranges).toEqual([{ offset: 0, length: 3000 }]);
    } finally {
      await opened.reader.close();
    }
  });

  it('writes through the registry the same bytes as before, to a file and to a pipe', async () => {
    const disk = mixedDisk();
    const viaRegistry = join(dir, 'registry.img');
    expect(await writeImage(disk, viaRegistry, { format: 'raw' })).toEqual({ format: 'raw', output: viaRegistry, virtualSize: disk.size });
    const file = readFileSync(viaRegistry);
    expect(file.length).toBe(disk.size);
    expect(sha256(file)).toBe(MIXED_SHA256);

    const piped = await toPipe((stdout) => writeImage(disk, '-', { stdout }));
    expect(sha256(piped)).toBe(MIXED_SHA256);

    // The library's writeRawImage gives the same file, and says what it wrote: holes left out.
    const direct = join(dir, 'direct.img');
    const r = await writeRawImage(disk, direct);
    expect(sha256(readFileSync(direct))).toBe(MIXED_SHA256);
    // (the first two runs share one write, with the 3584 zeros between them)
    expect(r).toEqual({ bytesWritten: 3_289_895, size: disk.size }); // as before
    expect(sha256(await toPipe((stdout) => writeRawImage(disk, '-', { stdout })))).toBe(MIXED_SHA256);
  });

  it('leaves zeros as holes in a file', async () => {
    // 64 MiB with 1 MiB of data: where the file system keeps holes, far less than the size is stored.
    const disk = new VirtualDisk(64 * MIB).placeBytes(32 * MIB, fill(MIB, 6));
    const path = join(dir, 'sparse.img');
    await writeImage(disk, path);
    const st = statSync(path);
    expect(st.size).toBe(64 * MIB);
    expect(st.blocks * 512).toBeLessThan(16 * MIB);
  });

  it('refuses -o options and compression, leaving no file', async () => {
    const disk = new VirtualDisk(MIB).placeBytes(0, fill(512, 1));
    const path = join(dir, 'refused.img');
    await expect(writeImage(disk, path, { options: 'cluster_size=65536' })).rejects.toThrow(
      new DiskmintError('BAD_ARGUMENT', 'raw output takes only -o compression=zstd|gzip|xz|none and level=N (got cluster_size)'),
    );
    await expect(writeImage(disk, path, { compress: true })).rejects.toThrow(
      new DiskmintError('BAD_ARGUMENT', 'raw output cannot be compressed; choose -O qcow2 or vmdk'),
    );
    expect(existsSync(path)).toBe(false);
  });
});
