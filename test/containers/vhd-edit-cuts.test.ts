/**
 * In-place VHD edits under a power cut (src/containers/vhd/edit.ts, "crash order"): every write
 * and barrier of an edit is recorded; for each barrier group, every subset of its writes (50
 * seeded ones past 10) lands on top of the groups before it, and the image must open in our
 * reader and qemu-img, each sector of the touched blocks reading its old or its new bytes.
 */
import { readFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { vhdEditing } from '../../src/containers/vhd/edit.js';
import { fill } from '../helpers/containers.js';
import { requirePeer } from '../helpers/peer.js';
import { KIB, MIB, apply, fresh, isSession, makeImage, openBuf, qemuAgrees, rawOf, recordingFile, type Kind, type Write } from '../helpers/vhd-edit.js';

/** Every state a cut leaves: groups before k landed, and a subset of group k (all, or 50 seeded ones past 10 writes). */
function* cutStates(groups: Write[][]): Generator<{ label: string; writes: Write[] }> {
  let seed = 12345;
  for (let k = 0; k < groups.length; k++) {
    const g = groups[k];
    const masks =
      g.length <= 10 ? Array.from({ length: 1 << g.length }, (_, m) => m) : Array.from({ length: 50 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31));
    for (const mask of masks) {
      const some = g.filter((_, i) => mask & (1 << (i % 31)));
      yield { label: `groups 1-${k}, mask ${mask.toString(2)} of group ${k + 1}`, writes: [...groups.slice(0, k).flat(), ...some] };
    }
  }
}

/**
 * Record `writes` on `image` through a session, then open every cut state: our reader and
 * qemu-img open it, each sector of the touched blocks reads old or new bytes, nothing outside
 * them changes, and (unless `qemu` is false: patched bitmaps) qemu reads what our reader reads.
 */
async function checkCuts(image: Uint8Array, writes: Array<[number, Uint8Array]>, qemu = true): Promise<number[]> {
  const BS = 2 * MIB;
  const reader = await openBuf(image);
  const { file, groups } = recordingFile(image);
  const s = await vhdEditing.openForEdit(file, reader);
  if (!isSession(s)) throw new Error(s.refused);
  const touched = new Map<number, { old: Uint8Array; want: Uint8Array }>();
  for (const [at, data] of writes) {
    for (let b = Math.floor(at / BS); b * BS < at + data.length; b++) {
      if (!touched.has(b)) touched.set(b, { old: await reader.read(b * BS, BS), want: await reader.read(b * BS, BS) });
    }
  }
  /** Blocks that may read as allocated after a cut: the old ones and the touched ones. */
  const mayHold = new Set(touched.keys());
  for await (const r of reader.allocatedRanges()) for (let b = Math.floor(r.offset / BS); b * BS < r.offset + r.length; b++) mayHold.add(b);
  for (const [at, data] of writes) {
    await s.write(at, data);
    for (const [b, t] of touched) {
      const from = Math.max(at, b * BS);
      const to = Math.min(at + data.length, (b + 1) * BS);
      if (from < to) t.want.set(data.subarray(from - at, to - at), from - b * BS);
    }
  }
  await s.flush();
  const written = groups.filter((g) => g.length);
  for (const state of cutStates(written)) {
    const after = apply(image, state.writes);
    const r = await openBuf(after);
    const last = state.writes.length === written.flat().length;
    for (const [b, t] of touched) {
      const got = await r.read(b * BS, BS);
      for (let at = 0; at < got.length; at += 512) {
        const sector = Buffer.from(got.subarray(at, at + 512));
        const ok = last
          ? sector.equals(t.want.subarray(at, at + 512))
          : sector.equals(t.old.subarray(at, at + 512)) || sector.equals(t.want.subarray(at, at + 512));
        expect(ok, `${state.label}: block ${b} sector ${at / 512} reads ${last ? 'its new bytes' : 'old or new bytes'}`).toBe(true);
      }
    }
    for await (const range of r.allocatedRanges()) {
      for (let b = Math.floor(range.offset / BS); b * BS < range.offset + range.length; b++) expect(mayHold.has(b), `${state.label}: block ${b}`).toBe(true);
    }
    const path = fresh('vhd');
    writeFileSync(path, after);
    qemuAgrees(path, qemu ? await rawOf(r) : undefined);
    await r.close();
  }
  return written.map((g) => g.length);
}

describe('VHD in-place edits under a power cut after any barrier, any subset of the next group landed', () => {
  const image = async (kind: Kind, size: number) => readFile(await makeImage(kind, size, [{ at: 100, length: 3 * KIB, seed: 7, zeros: false }]));

  it('a partial block into a hole: [new block, footer] then [BAT sector]', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    expect(await checkCuts(await image('ours', 6 * MIB), [[2 * MIB + 300, fill(1000, 3)]])).toEqual([2, 1]);
  });

  it('into allocated data and across into a hole: [data, new block, footer] then [BAT sector]', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    expect(await checkCuts(await image('qemu', 6 * MIB), [[2 * MIB - 700, fill(1400, 4)]])).toEqual([3, 1]);
  });

  it('into allocated data only: one group, no table write', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    expect(await checkCuts(await image('ours', 6 * MIB), [[10, fill(600, 5)]])).toEqual([1]);
  });

  it('into sectors whose bitmap bit is clear: [whole sectors] then [bitmap sector]', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    // Sectors 2-5: 2 and 4 hold data, 3 and 5 are clear (0xAA on disk, zeros to read); 2 and 5 only partly written.
    expect(await checkCuts(await image('ours-bitmap', 6 * MIB), [[2 * 512 + 100, fill(1500, 6)]], false)).toEqual([1, 1]);
  });

  it('blocks whose entries lie in two BAT sectors: [2 new blocks, footer] then [2 BAT sectors]', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    // 128 entries per 512-byte BAT sector: block 130 is in the second one.
    const writes: Array<[number, Uint8Array]> = [
      [4 * MIB + 5, fill(3000, 8)],
      [130 * 2 * MIB + 77, fill(2000, 9)],
    ];
    expect(await checkCuts(await image('ours', 300 * MIB), writes)).toEqual([3, 2]);
  });

  it('a fixed disk: twelve writes in place, one group (50 seeded subsets)', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    const writes = Array.from({ length: 12 }, (_, i): [number, Uint8Array] => [i * 150 * KIB + 11 * i, fill(1000 + i, i + 1)]);
    expect(await checkCuts(await image('ours-fixed', 2 * MIB), writes)).toEqual([12]);
  });
});
