/**
 * What the VMDK reader and writer tests share: a temp folder and fresh paths in it, and random
 * disks with their raw bytes.
 */
import { beforeAll, afterAll } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { tempDir } from '../helpers/golden.js';

export let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-vmdk-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A disk of `size` bytes with pseudo-random data extents, and its raw bytes. */
export function randomDisk(seed: number, size: number, pieces = 6): { disk: VirtualDisk; raw: Buffer } {
  let s = seed >>> 0 || 1;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const disk = new VirtualDisk(size);
  const raw = Buffer.alloc(size);
  const spots = Array.from({ length: pieces }, () => Math.floor(rnd() * size)).sort((a, b) => a - b);
  let free = 0;
  for (const at of spots) {
    const start = Math.max(at, free);
    const len = Math.min(size - start, 1 + Math.floor(rnd() * 150_000));
    if (len <= 0) continue;
    const data = new Uint8Array(len);
    for (let i = 0; i < len; i++) data[i] = rnd() < 0.3 ? 0 : (rnd() * 256) | 0;
    disk.placeBytes(start, data);
    raw.set(data, start);
    free = start + len;
  }
  return { disk, raw };
}

let n = 0;
export const fresh = (ext = '.vmdk') => join(dir, `t${n++}${ext}`);
