/**
 * What the VHD reader and writer tests share: a temp folder, writing a disk to VHD bytes, and
 * opening and reading bytes.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { readAll, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

export const MIB = 1 << 20;
export const dir = tempDir('diskmint-vhd-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

export async function writeVhd(disk: VirtualDisk, options: Record<string, string> = {}): Promise<Buffer> {
  const path = join(dir, `w${n++}.vhd`);
  await writeWithHandler(vhdHandler, disk, path, { options });
  return readFileSync(path);
}

export function openBuf(buf: Uint8Array): Promise<ContainerReader> {
  return vhdHandler.open(memoryDiskReader(buf), {
    path: 'mem.vhd',
    openSibling: async () => {
      throw new Error('no siblings');
    },
  });
}

export async function readBuf(buf: Uint8Array): Promise<Buffer> {
  const r = await openBuf(buf);
  try {
    return await readAll(r);
  } finally {
    await r.close();
  }
}
