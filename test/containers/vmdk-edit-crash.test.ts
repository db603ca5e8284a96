/**
 * Crash order of VMDK in-place edits (src/containers/vmdk/edit.ts): every write and barrier of
 * an edit recorded, then a power cut after each barrier with every subset of the next group's
 * writes landed (50 random subsets past 10 writes): the image opens with our reader and qemu-img,
 * qemu-img check passes, and each grain reads as its old or its new bytes.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { vmdkEditing } from '../../src/containers/vmdk/edit.js';
import type { EditableFile } from '../../src/containers/types.js';
import { openDisk } from '../../src/io/open-disk.js';
import { readAll, type DiskPiece } from '../helpers/containers.js';
import { runPeer, runPeerOk } from '../helpers/peer.js';
import { GRAIN, KIB, MIB, expectImage, haveQemu, makeImage, pattern, type Source } from '../helpers/vmdk-edit-images.js';

/** A file in memory that records every write and barrier (the writes land at once, in order). */
function recordingFile(base: Buffer): { file: EditableFile; ops: Array<{ at: number; data: Uint8Array } | 'barrier'> } {
  let bytes: Buffer = Buffer.from(base);
  const ops: Array<{ at: number; data: Uint8Array } | 'barrier'> = [];
  const file: EditableFile = {
    get size() {
      return bytes.length;
    },
    read: async (offset, length) => bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length)),
    write: async (at, data) => {
      ops.push({ at, data: data.slice() });
      bytes = applyWrite(bytes, at, data);
    },
    barrier: async () => {
      ops.push('barrier');
    },
    close: async () => {},
  };
  return { file, ops };
}

function applyWrite(bytes: Buffer, at: number, data: Uint8Array): Buffer<ArrayBuffer> {
  const out = at + data.length > bytes.length ? Buffer.concat([bytes, Buffer.alloc(at + data.length - bytes.length)]) : Buffer.from(bytes);
  out.set(data, at);
  return out;
}

/** Every subset of `count` writes as bit masks, or 50 random ones (seeded) past 10 writes. */
function subsets(count: number): number[][] {
  const all = (mask: number) => Array.from({ length: count }, (_, i) => i).filter((i) => mask & (1 << i));
  if (count <= 10) return Array.from({ length: 2 ** count }, (_, mask) => all(mask));
  return fc.sample(fc.subarray(Array.from({ length: count }, (_, i) => i)), { numRuns: 50, seed: count });
}

/** Each grain of `got` is the grain of `before` or of `after`. */
function expectGrainsOldOrNew(got: Buffer, before: Buffer, after: Buffer, grain: number, what: string): void {
  expect(got.length, what).toBe(before.length);
  for (let at = 0; at < got.length; at += grain) {
    const g = got.subarray(at, at + grain);
    if (!g.equals(before.subarray(at, at + grain)) && !g.equals(after.subarray(at, at + grain))) {
      throw new Error(`${what}: grain at ${at} is neither its old nor its new bytes`);
    }
  }
}

describe('crash order: a power cut after any barrier, with any subset of the next group landed', () => {
  const scenarios: Array<{ name: string; source: Source; size: number; pieces: DiskPiece[]; writes: Array<[number, number]> }> = [
    {
      name: 'a whole grain into a hole',
      source: 'ours',
      size: 4 * MIB,
      pieces: [{ at: 0, length: 200_000, seed: 1, zeros: false }],
      writes: [[2 * MIB, GRAIN]],
    },
    {
      name: 'part of a grain of a delta disk (filled from the parent)',
      source: 'qemu-child',
      size: 2 * MIB,
      pieces: [{ at: MIB, length: 300_000, seed: 2, zeros: false }],
      writes: [[MIB + 70_000, 1000]],
    },
    {
      name: 'into allocated data and on into a hole',
      source: 'ours',
      size: 2 * MIB,
      pieces: [{ at: 0, length: 200_000, seed: 3, zeros: false }],
      writes: [[150_000, 150_000]],
    },
    {
      name: 'grains needing a new grain table, and one in an existing table',
      source: 'small-tables',
      size: MIB, // four grain tables of 256 KiB: only the first names grains
      pieces: [{ at: 0, length: 20_000, seed: 4, zeros: false }],
      writes: [
        [512 * KIB + 10, 2000],
        [100_000, 300],
      ],
    },
    {
      name: 'a grain needing a new grain table in an image of our writer',
      source: 'ours-sparse-gd',
      size: 33 * MIB, // two grain tables of 32 MiB: the second one names no grain
      pieces: [{ at: 0, length: 100_000, seed: 6, zeros: false }],
      writes: [[32 * MIB + 5, 100]],
    },
    {
      name: 'part of a zeroed grain',
      source: 'qemu-zeroed',
      size: MIB,
      pieces: [{ at: 0, length: 300_000, seed: 5, zeros: false }],
      writes: [[GRAIN + 10, 500]],
    },
  ];
  for (const sc of scenarios) {
    it(sc.name, { timeout: 180_000 }, async (ctx) => {
      if (!haveQemu()) return ctx.skip();
      const img = await makeImage(sc.source, sc.size, sc.pieces);
      const before = Buffer.from(img.raw);
      const after = Buffer.from(img.raw);
      const base = await readFile(img.path);
      const { file, ops } = recordingFile(base);
      const { reader } = await openDisk(img.path, { allowBacking: true });
      try {
        const session = await vmdkEditing.openForEdit(file, reader);
        if ('refused' in session) throw new Error(session.refused);
        for (const [at, length] of sc.writes) {
          const data = pattern(length, at);
          await session.write(at, data);
          after.set(data, at);
        }
        await session.flush();
      } finally {
        await reader.close();
      }
      const groups: Array<Array<{ at: number; data: Uint8Array }>> = [[]];
      for (const op of ops) {
        if (op === 'barrier') groups.push([]);
        else groups[groups.length - 1].push(op);
      }
      expect(groups.length).toBe(4); // data and new tables, table entries, the CID, nothing after the last barrier
      const statePath = join(img.path, '..', 'state.vmdk');
      const rawPath = join(img.path, '..', 'state.raw');
      let landed = base;
      let states = 0;
      for (const group of groups) {
        for (const subset of subsets(group.length)) {
          let state = landed;
          for (const i of subset) state = applyWrite(state, group[i].at, group[i].data);
          await writeFile(statePath, state);
          const what = `${sc.name}, state ${states++}`;
          const { reader: r } = await openDisk(statePath, { allowBacking: true });
          try {
            expectGrainsOldOrNew(await readAll(r), before, after, img.grain, `${what} (our reader)`);
          } finally {
            await r.close();
          }
          const check = runPeer('qemu-img', ['check', '-f', 'vmdk', statePath]);

          expect([0, 3], `${what}: ${check.out}`).toContain(check.status);
          runPeerOk('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', statePath, rawPath]);
          expectGrainsOldOrNew(await readFile(rawPath), before, after, img.grain, `${what} (qemu-img)`);
        }
        for (const w of group) landed = applyWrite(landed, w.at, w.data);
      }
      // everything landed: the new bytes, from both readers
      await writeFile(statePath, landed);
      await expectImage(statePath, after);
    });
  }
});
