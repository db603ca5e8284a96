/**
 * What the VHDX reader and writer tests share: a temp folder, our layout's offsets, writing a disk
 * to VHDX bytes, opening bytes, resealing CRC-32Cs after an edit, and expecting a FormatError.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { FormatError } from '../../formats/common/errors.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { readAll, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

export const MIB = 1 << 20;
export const dir = tempDir('diskmint-vhdx-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
// Our layout with the default 1 MiB log: metadata at 2 MiB, BAT at 3 MiB, payload from 4 MiB.
export const META_AT = 2 * MIB;
export const BAT_AT = 3 * MIB;

export async function writeVhdx(disk: VirtualDisk, options: Record<string, string> = {}): Promise<Buffer> {
  const path = join(dir, `w${n++}.vhdx`);
  await writeWithHandler(vhdxHandler, disk, path, { options });
  return readFileSync(path);
}

export function openBuf(buf: Uint8Array): Promise<ContainerReader> {
  return vhdxHandler.open(memoryDiskReader(buf), {
    path: 'mem.vhdx',
    openSibling: async () => {
      throw new Error('no siblings');
    },
  });
}

/** Recompute the CRC-32C of the structure at `at` (`len` bytes, checksum at +4). */
export function reseal(buf: Buffer, at: number, len: number): void {
  buf.writeUInt32LE(0, at + 4);
  buf.writeUInt32LE(crc32c(buf.subarray(at, at + len)), at + 4);
}
export const resealHeaders = (b: Buffer) => [64 * 1024, 128 * 1024].forEach((at) => reseal(b, at, 4096));
export const resealRegions = (b: Buffer) => [192 * 1024, 256 * 1024].forEach((at) => reseal(b, at, 64 * 1024));

export async function expectFormatError(buf: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await openBuf(buf).then(
    async (r) => {
      await readAll(r);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  expect((err as FormatError).format).toBe('vhdx');
  expect((err as Error).message).toMatch(pattern);
}
