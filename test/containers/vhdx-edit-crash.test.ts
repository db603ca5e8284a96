/**
 * In-place VHDX edits survive a power cut after any barrier: for every subset of the writes a cut
 * may land, each block-sized unit reads all old or all new (our reader and qemu-img dd agree) and
 * qemu-img check finds no corruption.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import type { EditableFile } from '../../src/containers/types.js';
import { diskOfPieces, fill } from '../helpers/containers.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { MIB, fresh, oursImage, qemuCheck, session } from './vhdx-edit-helpers.js';

/** An EditableFile over memory that records every write and, at each barrier, how many came before. */
function recordingFile(initial: Buffer) {
  let mem: Buffer = Buffer.from(initial);
  const writes: Array<{ offset: number; data: Buffer }> = [];
  const barriers: number[] = [];
  const file: EditableFile = {
    get size() {
      return mem.length;
    },
    read: async (offset, length) => Uint8Array.from(mem.subarray(offset, offset + length)),
    write: async (offset, data) => {
      writes.push({ offset, data: Buffer.from(data) });
      mem = landed(mem, [writes[writes.length - 1]]);
    },
    barrier: async () => void barriers.push(writes.length),
    close: async () => {},
  };
  return { file, writes, barriers };
}

/** `base` with `writes` landed in order (a write past the end grows the file, as pwrite does). */
function landed(base: Buffer, writes: ReadonlyArray<{ offset: number; data: Buffer }>): Buffer {
  const end = writes.reduce((e, w) => Math.max(e, w.offset + w.data.length), base.length);
  const out = Buffer.alloc(end);
  base.copy(out);
  for (const w of writes) w.data.copy(out, w.offset);
  return out;
}

const openMemory = (bytes: Uint8Array) =>
  vhdxHandler.open(memoryDiskReader(bytes), {
    path: 'mem.vhdx',
    openSibling: () => Promise.reject(new Error('no siblings')),
  });

/** The subsets of `count` writes a power cut may land: all of them up to 10 writes, else 50 drawn (seeded). */
function subsets(count: number): boolean[][] {
  const mask = (m: number) => Array.from({ length: count }, (_, i) => ((m >> i) & 1) === 1);
  if (count <= 10) return Array.from({ length: 2 ** count }, (_, m) => mask(m));
  let x = 12345;
  return Array.from({ length: 50 }, () => Array.from({ length: count }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) & 0x10000) !== 0));
}

interface Scenario {
  name: string;
  make: () => Promise<string>;
  /** Writes (disjoint), each followed by a flush when `flush` is set; a flush always ends. */
  writes: Array<{ at: number; length: number; flush?: boolean }>;
}

const ours = (size: number, pieces: Parameters<typeof diskOfPieces>[1]) => () => oursImage(size, pieces);
// 6 MiB in 1 MiB blocks: blocks 0 and 2 hold data, the others are holes.
const SMALL = ours(6 * MIB, [
  { at: 0, length: 40_000, seed: 1, zeros: false },
  { at: 2 * MIB + 4096, length: 50_000, seed: 2, zeros: false },
]);
const SCENARIOS: Scenario[] = [
  { name: 'a write into a hole', make: SMALL, writes: [{ at: 3 * MIB + 5000, length: 4096 }] },
  {
    name: 'partial units: present data into a hole, and a second hole',
    make: SMALL,
    writes: [
      { at: 3 * MIB - 1000, length: 5000 },
      { at: 5 * MIB + 17, length: 100 },
    ],
  },
  {
    name: 'into allocated data',
    make: SMALL,
    writes: [
      { at: 100, length: 10_000 },
      { at: 2 * MIB + 5, length: 300 },
    ],
  },
  // 600 MiB: payload blocks 511 and 512 have their entries in BAT sectors 0 and 1 (512 entries a sector).
  { name: 'new entries in two BAT sectors', make: ours(600 * MIB, []), writes: [{ at: 511 * MIB + 10, length: MIB }] },
  {
    name: 'two flushes into qemu-img create ZERO blocks',
    make: async () => {
      const path = fresh('vhdx');
      runPeerOk('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', path, String(4 * MIB)]);
      return path;
    },
    writes: [
      { at: MIB - 3, length: 10, flush: true },
      { at: 3 * MIB, length: MIB - 512 },
    ],
  },
];

describe('VHDX in-place edits survive a power cut after any barrier', () => {
  it.for(SCENARIOS)('$name', async ({ make, writes }, ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const initial = readFileSync(await make());
    const oldDisk = await openMemory(initial);
    const rec = recordingFile(initial);
    const s = await session(rec.file, oldDisk);
    const news = writes.map((w, i) => fill(w.length, 40 + i));
    for (const [i, w] of writes.entries()) {
      await s.write(w.at, news[i]);
      if (w.flush) await s.flush();
    }
    await s.flush();
    // Each write, cut at block (1 MiB) boundaries: the units that must read all old or all new.
    const units = writes.flatMap((w, i) => {
      const out: Array<{ at: number; old: Uint8Array; now: Uint8Array }> = [];
      for (let a = w.at; a < w.at + w.length; a = (Math.floor(a / MIB) + 1) * MIB) {
        const b = Math.min(w.at + w.length, (Math.floor(a / MIB) + 1) * MIB);
        out.push({ at: a, old: new Uint8Array(0), now: news[i].subarray(a - w.at, b - w.at) });
      }
      return out;
    });
    for (const u of units) u.old = await oldDisk.read(u.at, u.now.length);
    // The MiBs qemu-img dd reads back (they hold every unit; its count= is where it stops, skip= included).
    const first = Math.floor(Math.min(...units.map((u) => u.at)) / MIB);
    const last = Math.ceil(Math.max(...units.map((u) => u.at + u.now.length)) / MIB);

    const groups: Array<typeof rec.writes> = [];
    rec.barriers.reduce((from, to) => (groups.push(rec.writes.slice(from, to)), to), 0);
    expect(rec.barriers[rec.barriers.length - 1]).toBe(rec.writes.length); // flush ends with a barrier
    let base: Buffer = initial;
    let states = 0;
    for (const group of groups) {
      for (const pick of subsets(group.length)) {
        if (!pick.some(Boolean) && base !== initial) continue; // the same state as the previous group's whole
        const state = landed(
          base,
          group.filter((_, i) => pick[i]),
        );
        const path = fresh('vhdx');
        writeFileSync(path, state);
        const check = qemuCheck(path);
        expect([0, 3], check.out).toContain(check.status);
        const raw = fresh('raw');
        runPeerOk('qemu-img', ['dd', '-f', 'vhdx', '-O', 'raw', `bs=${MIB}`, `skip=${first}`, `count=${last}`, `if=${path}`, `of=${raw}`]);
        const qemuBytes = readFileSync(raw);
        const r = await openMemory(state);
        let changed = false;
        for (const u of units) {
          const got = Buffer.from(await r.read(u.at, u.now.length));
          expect(got.equals(qemuBytes.subarray(u.at - first * MIB, u.at - first * MIB + u.now.length))).toBe(true);
          expect(got.equals(Buffer.from(u.old)) || got.equals(Buffer.from(u.now))).toBe(true);
          changed ||= !got.equals(Buffer.from(u.old));
        }
        // 2.2.2.1: no data changes before a header with new write GUIDs is current.
        if (changed) expect(r.details().headerSequence).not.toBe(oldDisk.details().headerSequence);
        rmSync(path);
        rmSync(raw);
        states++;
      }
      base = landed(base, group);
    }
    // With every write landed, every unit reads new.
    const r = await openMemory(base);
    for (const u of units) expect(Buffer.from(await r.read(u.at, u.now.length)).equals(Buffer.from(u.now))).toBe(true);
    expect(states).toBeGreaterThan(groups.length);
  });
});
