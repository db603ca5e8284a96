/**
 * How the one block write path talks to the file, counted through a wrapped FileHandle: stored
 * blocks (and a VHD bitmap before each) leave in few large writes, never a bitmap alone, and a
 * block larger than the 1 MiB read unit (VHDX's 32 MiB) is read a unit at a time, so memory does
 * not grow with the block size. The bytes are checked against a model too.
 */
import { readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { writeInPlace, writeNonZeroBlocks } from '../../src/containers/block-layout.js';
import { READ_CHUNK } from '../../src/containers/blocks.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { fileSink } from '../../src/io/sink.js';
import { tempDir } from '../helpers/golden.js';
import { eachTestChoosesItsPath } from '../helpers/kernel-path.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A FileHandle whose write and writev calls are recorded (bytes per call); a `slow` one lets the
 * event loop turn a few times before each, so the writer runs ahead of its writes in flight.
 */
function countingHandle(handle: FileHandle, slow = false): { handle: FileHandle; calls: number[] } {
  const calls: number[] = [];
  const lag = async () => {
    for (let i = 0; slow && i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  const wrapped = new Proxy(handle, {
    get(target, prop) {
      if (prop === 'write') {
        return async (buf: Uint8Array, offset: number, length: number, position: number) => {
          calls.push(length);
          await lag();
          return target.write(buf, offset, length, position);
        };
      }
      if (prop === 'writev') {
        return async (bufs: Uint8Array[], position: number) => {
          calls.push(bufs.reduce((n, b) => n + b.length, 0));
          await lag();
          return target.writev(bufs, position);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { handle: wrapped, calls };
}

/** Bytes that are never zero for 64 KiB, different at every place. */
function data(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 13 + seed) % 251) + 1;
  return out;
}

/**
 * A disk whose data comes through a reader that records the length of every read; with `whole`,
 * one run covers the whole disk, zeros included (as a raw file is read).
 */
function recordingDisk(
  size: number,
  given: Array<{ at: number; bytes: Uint8Array }>,
  whole = false,
): { disk: VirtualDisk; reads: number[]; model: Uint8Array } {
  const model = new Uint8Array(size);
  for (const p of given) model.set(p.bytes, p.at);
  const pieces = whole ? [{ at: 0, bytes: model }] : given;
  const reads: number[] = [];
  const disk = new VirtualDisk(size);
  for (const p of pieces) {
    disk.place(p.at, p.bytes.length, {
      kind: 'reader',
      offset: 0,
      reader: {
        size: p.bytes.length,
        async read(offset, length, into) {
          reads.push(length);
          const out = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
          out.set(p.bytes.subarray(offset, offset + length));
          return out;
        },
        async close() {},
      },
    });
  }
  return { disk, reads, model };
}

describe('the block write path', () => {
  // The calls are counted on the FileHandle: large writes stay on it (buffered) only on the pure
  // path; the O_DIRECT path writes the same batches through its own descriptor (test/io/sink-direct.test.ts).
  eachTestChoosesItsPath();
  beforeEach(() => {
    process.env.DISKMINT_PURE_IO = '1';
  });
  it('writes a bitmap and its 2 MiB block with one call, gathering blocks into a few large writes', async () => {
    const blockSize = 2 * MiB;
    const blocks = 8;
    const { disk, model } = recordingDisk(blocks * blockSize, [{ at: 0, bytes: data(blocks * blockSize, 3) }]);
    const prefix = new Uint8Array(512).fill(0xff);
    const path = join(tempDir('diskmint-block-writes-'), 'out.bin');
    const file = await open(path, 'wx');
    const { handle, calls } = countingHandle(file);
    try {
      const sink = fileSink(handle);
      await writeNonZeroBlocks(disk, sink, blockSize, { prefix, onStored: () => {} });
      await sink.finish();
    } finally {
      await file.close();
    }
    const expected = Buffer.concat(Array.from({ length: blocks }, (_, b) => [prefix, model.subarray(b * blockSize, (b + 1) * blockSize)]).flat());
    expect(readFileSync(path).equals(expected)).toBe(true);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(expected.length);
    // One call per ~4 MiB gathered (not two per block, as a bitmap then its data would take).
    expect(calls.length).toBeLessThanOrEqual(Math.ceil(expected.length / (4 * MiB)) + 1);
    expect(Math.min(...calls)).toBeGreaterThan(prefix.length);
  });

  it('reads a 32 MiB block 1 MiB at a time and stores it whole, its zero pieces as holes', async () => {
    const blockSize = 32 * MiB;
    // Data in the block's second and last MiB only: the rest of the slot is zeros.
    const { disk, reads, model } = recordingDisk(40 * MiB, [
      { at: MiB + 5, bytes: data(300 * KiB, 9) },
      { at: 31 * MiB, bytes: data(MiB, 11) },
      { at: 33 * MiB, bytes: data(100, 17) },
    ]);
    const path = join(tempDir('diskmint-block-writes-'), 'out.bin');
    const handle = await open(path, 'wx');
    const stored: number[] = [];
    try {
      const sink = fileSink(handle);
      await writeNonZeroBlocks(disk, sink, blockSize, { onStored: (index) => stored.push(index) });
      await sink.finish();
    } finally {
      await handle.close();
    }
    expect(stored).toEqual([0, 1]);
    expect(Math.max(...reads)).toBeLessThanOrEqual(READ_CHUNK);
    const expected = new Uint8Array(2 * blockSize);
    expected.set(model); // both blocks stored in order, the second zero-padded past the disk's end
    expect(readFileSync(path).equals(expected)).toBe(true);
  });

  it('writes a fixed container in few large writes, leaving zeros as holes', async () => {
    const { disk, model } = recordingDisk(20 * MiB, [
      { at: 0, bytes: data(8 * MiB, 5) },
      { at: 12 * MiB + 3, bytes: data(MiB, 6) },
    ]);
    const path = join(tempDir('diskmint-block-writes-'), 'out.bin');
    const file = await open(path, 'wx');
    const { handle, calls } = countingHandle(file);
    try {
      const sink = fileSink(handle);
      await writeInPlace(disk, sink, 0);
      await sink.finish(disk.size);
    } finally {
      await file.close();
    }
    expect(readFileSync(path).equals(Buffer.from(model))).toBe(true);
    // 8 MiB in 4 MiB writes, then the second run's 64 KiB pieces (17 of them) in one.
    expect(calls).toEqual([4 * MiB, 4 * MiB, 17 * 64 * KiB]);
  });

  it('keeps every byte right while the read buffers are reused many times over (a disk far larger than the ring)', async () => {
    // 50 MiB with zero stretches of odd lengths (3 to 14 MiB): pieces, gathers and writes fall at varied places.
    const pieces = Array.from({ length: 3 }, (_, i) => ({ at: i * 17 * MiB + i * 37 * KiB, bytes: data(3 * MiB - i * 101 * KiB, i) }));
    for (const [blockSize, prefix, whole] of [
      [64 * KiB, undefined, false],
      [2 * MiB, new Uint8Array(512).fill(0xff), false],
      [8 * MiB, undefined, false],
      // Read zeros (all-zero units between the data) while a write is in flight.
      [64 * KiB, undefined, true],
      [2 * MiB, new Uint8Array(512).fill(0xff), true],
    ] as const) {
      const { disk, model } = recordingDisk(50 * MiB, pieces, whole);
      const path = join(tempDir('diskmint-block-writes-'), 'out.bin');
      const file = await open(path, 'wx');
      const { handle } = countingHandle(file, true);
      try {
        const sink = fileSink(handle);
        await writeNonZeroBlocks(disk, sink, blockSize, { prefix, onStored: () => {} });
        await sink.finish();
      } finally {
        await file.close();
      }
      const expected: Uint8Array[] = [];
      for (let b = 0; b * blockSize < model.length; b++) {
        const block = new Uint8Array(blockSize);
        block.set(model.subarray(b * blockSize, (b + 1) * blockSize));
        if (!block.some((x) => x !== 0)) continue;
        if (prefix) expected.push(prefix);
        expected.push(block);
      }
      expect(readFileSync(path).equals(Buffer.concat(expected)), `block size ${blockSize}${whole ? ', zeros read' : ''}`).toBe(true);
    }
  });
});
