/**
 * What the VHD/VHDX peer tests share: a temp folder, and sample disks with data at the start,
 * across block boundaries, in the middle and at the very end, with their raw files.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { tempDir } from '../helpers/golden.js';

export const MIB = 1 << 20;
export const dir = tempDir('diskmint-vhd-peers-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

export function fill(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 131 + seed * 17 + 3) & 0xff || 7);
}

/** A disk with data at the start, across block boundaries, in the middle and at the very end. */
export function sample(size: number): { disk: VirtualDisk; raw: string; expected: Uint8Array } {
  const expected = new Uint8Array(size);
  const disk = new VirtualDisk(size);
  const pieces: Array<[number, number]> = [
    [0, 4096],
    [Math.min(2 * MIB - 1000, size >> 1), 3000],
    [size - 700, 700],
  ];
  for (const [i, [at, len]] of pieces.entries()) {
    const d = fill(len, i + 1);
    disk.placeBytes(at, d);
    expected.set(d, at);
  }
  const raw = join(dir, `raw${n++}.img`);
  writeFileSync(raw, expected);
  return { disk, raw, expected };
}
