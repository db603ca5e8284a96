/**
 * What the qcow2 peer tests share: a temp folder holding a 4 MiB source disk as raw bytes (random
 * data, a constant run, a zero-filled extent and a tail), and sha256.
 */
import { beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { tempDir } from '../helpers/golden.js';

export const MiB = 1024 * 1024;
export let dir: string;
export let rawPath: string;
export let raw: Buffer;
export let disk: VirtualDisk;

/** 4 MiB: random bytes, a constant run, a zero-filled extent (must stay unallocated) and a tail. */
function sourceDisk(): { disk: VirtualDisk; raw: Buffer } {
  const size = 4 * MiB;
  const d = new VirtualDisk(size);
  const r = Buffer.alloc(size);
  const put = (offset: number, data: Uint8Array) => {
    d.placeBytes(offset, data);
    r.set(data, offset);
  };
  const random = new Uint8Array(700_000);
  for (let i = 0, x = 1; i < random.length; i++) random[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  put(100_000, random);
  put(2 * MiB + 123, new Uint8Array(300_000).fill(0x41));
  put(3 * MiB, new Uint8Array(65536));
  put(
    size - 1000,
    new Uint8Array(1000).map((_, i) => i & 0xff),
  );
  return { disk: d, raw: r };
}

beforeAll(() => {
  dir = tempDir('diskmint-qcow2-peers-');
  ({ disk, raw } = sourceDisk());
  rawPath = join(dir, 'source.raw');
  writeFileSync(rawPath, raw);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
