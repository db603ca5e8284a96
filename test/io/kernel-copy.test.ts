/**
 * Outputs do not depend on the path taken: converting a sparse raw image to every format gives
 * the same bytes with the kernel's data ranges and copies (koffi) as with the pure path
 * (DISKMINT_PURE_IO=1), and as with koffi missing. Raw to raw copies go through
 * copy_file_range (counted through a koffi wrapper); copyFileRange itself copies, or says the
 * kernel cannot (undefined).
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertImage, type ConvertOptions } from '../../src/ops/convert.js';
import { writeRawImage } from '../../src/containers/raw/writer.js';
import { OUTPUT_FORMATS } from '../../src/containers/registry.js';
import { copyFileRange } from '../../src/io/kernel/copy.js';
import { withoutFileHoles } from '../../src/io/kernel/file-data-runs.js';
import { kernelIo, useKoffiLoader } from '../../src/io/kernel/ffi.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { eachTestChoosesItsPath } from '../helpers/kernel-path.js';

const MiB = 1 << 20;

eachTestChoosesItsPath();

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** 96 MiB, mostly holes: data in odd places, allocated zeros, a block ending at the last byte. */
function sparseInput(dir: string): string {
  const path = join(dir, 'in.raw');
  const size = 96 * MiB;
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  const put = (at: number, length: number, seed: number) => {
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) bytes[i] = ((i + seed * 31) * 131) % 251 || 1;
    writeSync(fd, bytes, 0, length, at);
  };
  put(0, 4096, 1);
  put(3 * MiB - 100, 200, 2); // across a 64 KiB block boundary
  writeSync(fd, Buffer.alloc(2 * MiB), 0, 2 * MiB, 10 * MiB); // allocated zeros: holes in every output
  put(40 * MiB + 12345, 9 * MiB, 3); // several 4 MiB pieces
  put(size - 3000, 3000, 4); // data at the very end
  closeSync(fd);
  return path;
}

/** Convert `input` to each format with the current path, returning each output's sha256. */
async function convertAll(input: string, dir: string, tag: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  mkdirSync(join(dir, tag));
  for (const format of OUTPUT_FORMATS) {
    const output = join(dir, tag, `disk.${format}`); // one name for all: a VMDK's descriptor names its file
    await convertImage(input, output, { format });
    out[format] = sha256(output);
  }
  const others: [string, ConvertOptions][] = [
    ['qcow2 -c', { format: 'qcow2', compress: true }],
    ['vmdk streamOptimized', { format: 'vmdk', options: 'subformat=streamOptimized' }],
    ['vhd fixed', { format: 'vhd', options: 'subformat=fixed' }],
    ['vhdx fixed', { format: 'vhdx', options: 'subformat=fixed' }],
  ];
  for (const [name, opts] of others) {
    const output = join(dir, tag, `${name.replace(' ', '-')}.img`);
    await convertImage(input, output, opts);
    out[name] = sha256(output);
  }
  return out;
}

/** koffi as it is, with copy_file_range's calls counted. */
function countingKoffi(): { calls: { copy: number }; load: () => unknown } {
  const koffi = createRequire(import.meta.url)('koffi') as { load(p: null): { func(proto: string): unknown } };
  const calls = { copy: 0 };
  const load = () =>
    new Proxy(koffi, {
      get(target, key) {
        if (key !== 'load') return Reflect.get(target, key) as unknown;
        return (path: null) => {
          const lib = target.load(path);
          return {
            func(proto: string) {
              const fn = lib.func(proto) as { async(...args: unknown[]): void };
              if (!proto.includes('copy_file_range')) return fn;
              return Object.assign((...args: unknown[]) => (fn as unknown as (...a: unknown[]) => unknown)(...args), {
                async: (...args: unknown[]) => {
                  calls.copy++;
                  fn.async(...args);
                },
              });
            },
          };
        };
      },
    });
  return { calls, load };
}

describe('convert on the kernel path and the pure path', () => {
  it('gives the same bytes for every output format, and with koffi missing', async () => {
    const dir = tempDir();
    const input = sparseInput(dir);
    expect(kernelIo()).toBeDefined();
    const kernel = await convertAll(input, dir, 'kernel');
    process.env.DISKMINT_PURE_IO = '1';
    const pure = await convertAll(input, dir, 'pure');
    delete process.env.DISKMINT_PURE_IO;
    useKoffiLoader(() => {
      throw new Error("Cannot find module 'koffi'");
    });
    const missing = await convertAll(input, dir, 'missing');
    expect(kernel).toEqual(pure);
    expect(missing).toEqual(pure);
    expect(kernel.raw).toBe(sha256(input));
    // The allocated zeros and the holes stay holes on both paths.
    for (const tag of ['kernel', 'pure']) expect(statSync(join(dir, tag, 'disk.raw')).blocks * 512).toBeLessThan(12 * MiB);
  });

  it('copies raw to raw with copy_file_range on the kernel path only', async () => {
    const dir = tempDir();
    const input = sparseInput(dir);
    const koffi = countingKoffi();
    useKoffiLoader(koffi.load);
    await convertImage(input, join(dir, 'k.raw'));
    expect(koffi.calls.copy).toBeGreaterThan(0);
    const before = koffi.calls.copy;
    process.env.DISKMINT_PURE_IO = '1';
    await convertImage(input, join(dir, 'p.raw'));
    expect(koffi.calls.copy).toBe(before);
    expect(sha256(join(dir, 'k.raw'))).toBe(sha256(input));
    expect(sha256(join(dir, 'p.raw'))).toBe(sha256(input));
  });

  it('places a large sparse file into a raw image (a layout partition) reading only its data, with the same bytes', async () => {
    const dir = tempDir();
    const input = sparseInput(dir);
    const disk = () => new VirtualDisk(200 * MiB).placeBytes(512, Buffer.from('table')).place(MiB + 4096, 96 * MiB, { kind: 'file', path: input, offset: 0 });
    const kernel = await writeRawImage(disk(), join(dir, 'k.img'));
    process.env.DISKMINT_PURE_IO = '1';
    const pure = await writeRawImage(disk(), join(dir, 'p.img'));
    expect(kernel).toEqual(pure); // the same bytes of data written (zero blocks left out on both)
    expect(sha256(join(dir, 'k.img'))).toBe(sha256(join(dir, 'p.img')));
    const image = readFileSync(join(dir, 'k.img'));
    expect(image.subarray(MiB + 4096, MiB + 4096 + 96 * MiB).equals(readFileSync(input))).toBe(true);
  });
});

describe('withoutFileHoles', () => {
  it('cuts a large file run down to its data on the kernel path, and leaves the disk as it is on the pure path', async () => {
    const dir = tempDir();
    const input = sparseInput(dir);
    const disk = new VirtualDisk(100 * MiB).placeBytes(0, Buffer.from('x')).place(MiB, 96 * MiB, { kind: 'file', path: input, offset: 0 });
    const mapped = await withoutFileHoles(disk);
    expect(mapped.dataBytes()).toBeGreaterThan(11 * MiB); // 9 MiB of data, 2 MiB of allocated zeros, the small pieces
    expect(mapped.dataBytes()).toBeLessThan(12 * MiB);
    expect(mapped.list()[0]).toEqual(disk.list()[0]);
    process.env.DISKMINT_PURE_IO = '1';
    expect(await withoutFileHoles(disk)).toBe(disk);
  });
});

describe('copyFileRange', () => {
  it('copies between files in the kernel, and says undefined where it cannot', async () => {
    const dir = tempDir();
    const src = join(dir, 'src.bin');
    const data = Buffer.alloc(3 * MiB + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    const fd = openSync(src, 'w');
    writeSync(fd, data);
    closeSync(fd);
    const from = await open(src, 'r');
    const to = await open(join(dir, 'dst.bin'), 'w+');
    try {
      expect(await copyFileRange(from.fd, 100, to.fd, 5000, 2 * MiB)).toBe(2 * MiB);
      expect(await copyFileRange(from.fd, 3 * MiB, to.fd, 0, MiB)).toBe(17); // the source ends
      const back = readFileSync(join(dir, 'dst.bin'));
      expect(back.subarray(5000, 5000 + 2 * MiB).equals(data.subarray(100, 100 + 2 * MiB))).toBe(true);
      expect(back.subarray(0, 17).equals(data.subarray(3 * MiB))).toBe(true);
      // Into a file opened read-only: EBADF, the kernel copies nothing.
      expect(await copyFileRange(from.fd, 0, from.fd, 4 * MiB, 10)).toBeUndefined();
      process.env.DISKMINT_PURE_IO = '1';
      expect(await copyFileRange(from.fd, 0, to.fd, 0, 10)).toBeUndefined();
      await expect(copyFileRange(from.fd, -1, to.fd, 0, 10)).rejects.toThrow(DiskmintError);
      await expect(copyFileRange(from.fd, 0, to.fd, 0.5, 10)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    } finally {
      await from.close();
      await to.close();
    }
  });
});
