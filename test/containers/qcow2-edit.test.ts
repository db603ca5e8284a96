/**
 * qcow2 in-place edits (src/containers/qcow2/edit.ts), judged by qemu-img: random writes through
 * a session against a raw model (qemu-img compare, our reader, qemu-img check), writes in place,
 * determinism, and the refusals (power cuts are in qcow2-edit-crash.test.ts).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openEditableFile } from '../../src/io/editable-file.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import type { ContainerReader, EditableFile, InPlaceRefusal } from '../../src/containers/types.js';
import { diskOfPieces, diskPieceArb, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { decodeRefcountTableEntry, encodeRefcountTableEntry, getRefcount, setRefcount } from '../../formats/containers/qcow2-refcounts.js';
import { compressedHostClusters } from '../../formats/containers/qcow2-tables.js';
import { MAKERS, editArb, editBytes, editSession, editing, expectQemuReads, makeImage, qemuCheck, readImage } from '../helpers/qcow2-edit.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-qcow2-edit-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KiB = 1024;
const MiB = 1024 * KiB;
const haveQemu = () => requirePeer('qemu-img', 'qemu-utils');
let serial = 0;

describe('qcow2 refcount codecs', () => {
  it('a refcount set at any order reads back, and its neighbours keep theirs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.nat(255), fc.nat(), fc.uint8Array({ minLength: 512, maxLength: 512 }), (order, index, raw, start) => {
        const block = Uint8Array.from(start);
        const bits = 2 ** order;
        const value = raw % 2 ** Math.min(bits, 31);
        const before = Array.from({ length: (512 * 8) / bits }, (_, i) => getRefcount(block, i, order));
        const i = index % before.length;
        setRefcount(block, i, order, value);
        before[i] = value;
        expect(Array.from({ length: before.length }, (_, j) => getRefcount(block, j, order))).toEqual(before);
      }),
    );
  });

  it('sub-byte refcounts put entry 0 in the least significant bits (qcow2 spec, "Host cluster management")', () => {
    const oneBit = new Uint8Array(2);
    setRefcount(oneBit, 0, 0, 1);
    setRefcount(oneBit, 9, 0, 1);
    expect(Array.from(oneBit)).toEqual([0b0000_0001, 0b0000_0010]);
    const block = new Uint8Array(2);
    setRefcount(block, 1, 1, 3); // 2-bit entry 1: bits 2-3 of byte 0
    setRefcount(block, 3, 2, 5); // 4-bit entry 3: the high nibble of byte 1
    expect(Array.from(block)).toEqual([0b0000_1100, 0b0101_0000]);
    expect(() => setRefcount(block, 0, 1, 4)).toThrow(/does not fit 2 bits/);
  });

  it('refcount table entries and compressed extents round trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 9, max: 21 }), fc.integer({ min: 1, max: 2 ** 21 }), (n, clusterBits, length) => {
        const offset = n * 2 ** clusterBits;
        if (offset > 2 ** 55) return;
        expect(decodeRefcountTableEntry(...encodeRefcountTableEntry(offset))).toBe(offset);
        const { first, last } = compressedHostClusters(offset + 1, length, clusterBits);
        expect(first).toBe(n);
        expect(last).toBe(Math.floor((offset + length) / 2 ** clusterBits));
      }),
    );
  });
});

describe('qcow2 in-place edits', () => {
  it('random writes read back as on a raw copy, by qemu-img and by us, and qemu-img check is clean', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...MAKERS),
        fc.integer({ min: 64 * KiB, max: 3 * MiB }),
        fc.array(diskPieceArb(3 * MiB, 400 * KiB), { maxLength: 5 }),
        fc.array(editArb, { minLength: 1, maxLength: 8 }),
        async (maker, sizeIn, pieces, edits) => {
          const size = Math.ceil(sizeIn / 512) * 512; // qemu-img create rounds the size to sectors
          const { disk, model } = diskOfPieces(size, pieces);
          const path = await makeImage(dir, maker, model, disk);
          const { s, done } = await editSession(path);
          try {
            for (const e of edits) {
              const { at, data } = editBytes(e, size);
              await s.write(at, data);
              model.set(data, at);
              if (e.flush) await s.flush();
            }
            await s.flush();
          } finally {
            await done();
          }
          expectQemuReads(path, model);
          expect(Buffer.compare(await readImage(path), Buffer.from(model))).toBe(0);
          const c = qemuCheck(path);
          expect(c.status, c.out).toBe(0);
          rmSync(path);
        },
      ),
      { numRuns: Number(process.env.DISKMINT_EDIT_RUNS ?? 25) },
    );
  });

  it('writes into an allocated cluster land in place: the file does not grow and no table changes', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 300 * KiB, seed: 5, zeros: false }]);
    const path = await makeImage(dir, { by: 'ours' }, model, disk);
    const before = readFileSync(path);
    const { s, done } = await editSession(path);
    const data = new Uint8Array(70 * KiB).fill(9);
    await s.write(100_000, data);
    await s.flush();
    await done();
    const after = readFileSync(path);
    expect(after.length).toBe(before.length);
    // Only the data bytes changed.
    let changed = 0;
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(data.length);
    model.set(data, 100_000);
    expectQemuReads(path, model);
  });

  it('cost follows the data: 1 MiB into holes of a 16 MiB image reads only tables and writes 1 MiB plus a few table sectors', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const { disk, model } = diskOfPieces(16 * MiB, [{ at: 0, length: 8 * MiB, seed: 2, zeros: false }]);
    const path = await makeImage(dir, { by: 'ours' }, model, disk);
    const used = { read: 0, written: 0 };
    const counting = (f: EditableFile): EditableFile => ({
      get size() {
        return f.size;
      },
      read: async (o, l, into) => {
        used.read += l;
        return f.read(o, l, into);
      },
      write: async (o, d) => {
        used.written += d.length;
        await f.write(o, d);
      },
      barrier: () => f.barrier(),
      close: () => f.close(),
    });
    const { s, done } = await editSession(path, counting);
    const data = new Uint8Array(MiB).fill(3);
    await s.write(10 * MiB, data);
    await s.flush();
    await done();
    // Header, L1 (one cluster), refcount table and one block, one L2 table: a handful of 64 KiB clusters.
    expect(used.read).toBeLessThanOrEqual(6 * 64 * KiB);
    expect(used.written).toBeGreaterThanOrEqual(MiB);
    expect(used.written).toBeLessThanOrEqual(MiB + 4 * 512);
    model.set(data, 10 * MiB);
    expectQemuReads(path, model);
  });

  it('the same edits give the same bytes', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const { disk, model } = diskOfPieces(2 * MiB, [{ at: 70_000, length: 200 * KiB, seed: 3, zeros: false }]);
    const outs: Buffer[] = [];
    for (let run = 0; run < 2; run++) {
      const path = await makeImage(dir, { by: 'ours', compress: {} }, new Uint8Array(model), disk);
      const { s, done } = await editSession(path);
      await s.write(1_500_000, new Uint8Array(100_001).fill(4));
      await s.write(65_000, new Uint8Array(3000).fill(5));
      await s.flush();
      await done();
      outs.push(readFileSync(path));
    }
    expect(Buffer.compare(outs[0], outs[1])).toBe(0);
  });

  describe('refusals: each names what and why, and changes nothing', () => {
    const stubReader: ContainerReader = {
      format: 'qcow2',
      size: 0,
      read: async () => new Uint8Array(0),
      close: async () => {},
      allocatedRanges: async function* () {},
      details: () => ({}),
    };
    /** A small image with data, made by `make` (qemu-img commands, or bytes patched). */
    async function refusalOf(make: (path: string) => void): Promise<InPlaceRefusal> {
      const path = join(dir, `refuse-${++serial}.qcow2`);
      const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 100 * KiB, seed: 1, zeros: false }]);
      void model;
      await writeWithHandler(qcow2Handler, disk, path);
      make(path);
      const before = readFileSync(path);
      const { file, close } = await openEditableFile(path);
      try {
        const r = await editing.openForEdit(file, stubReader);
        expect('refused' in r, 'expected a refusal').toBe(true);
        return r as InPlaceRefusal;
      } finally {
        await close();
        expect(readFileSync(path).equals(before)).toBe(true);
      }
    }
    const patch = (at: number, orBits: number) => (path: string) => {
      const b = readFileSync(path);
      b[at] |= orBits;
      writeFileSync(path, b);
    };
    const qemu =
      (...args: string[][]) =>
      (path: string) => {
        for (const a of args)
          runPeerOk(
            'qemu-img',
            a.map((x) => x.replace('%', path)),
          );
      };
    const cases: Array<[string, (path: string) => void, RegExp, boolean]> = [
      ['internal snapshots', qemu(['snapshot', '-c', 's1', '%']), /1 internal snapshot.*shared.*copy-on-write.*drop/, false],
      ['the dirty bit', patch(79, 1), /dirty.*qemu-img check -r all/, false],
      ['the corrupt bit', patch(79, 2), /corrupt.*qemu-img check -r all/, false],
      ['an unknown incompatible feature', patch(79, 0x20), /unknown incompatible features \(bits 5\)/, false],
      ['persistent bitmaps', qemu(['bitmap', '--add', '%', 'b0']), /persistent dirty bitmaps/, false],
      [
        'an L1 entry without the COPIED flag',
        (path) => {
          const b = readFileSync(path);
          const l1 = Number(b.readBigUInt64BE(40));
          b[l1] &= 0x7f;
          writeFileSync(path, b);
        },
        /L1 entry 0 lacks the COPIED flag.*qemu-img check -r all/,
        false,
      ],
      [
        'a refcount block at the L1 table',
        (path) => {
          const b = readFileSync(path);
          const reftable = Number(b.readBigUInt64BE(48));
          b.writeBigUInt64BE(b.readBigUInt64BE(40), reftable); // refcount block 0 -> the L1 table's cluster
          writeFileSync(path, b);
        },
        /refcount block 0 at \d+ overlaps other metadata.*qemu-img check -r all/,
        false,
      ],
    ];
    for (const [what, make, reason, keeps] of cases) {
      it(what, async (ctx) => {
        if (!haveQemu()) return ctx.skip();
        const r = await refusalOf(make);
        expect(r.refused).toMatch(reason);
        expect(r.rewriteKeepsEverything).toBe(keeps);
      });
    }

    /** Images qemu-img makes whole (features our writer has no option for). */
    const created: Array<[string, string[], RegExp, boolean]> = [
      ['extended L2 entries', ['-o', 'extended_l2=on'], /extended L2 entries/, true],
      ['an external data file', ['-o', 'data_file=%.data'], /external data file/, false],
      ['a refcount table that would have to grow', ['-o', 'cluster_size=512'], /refcount table .* grow/, true],
    ];
    for (const [what, args, reason, keeps] of created) {
      it(what, async (ctx) => {
        if (!haveQemu()) return ctx.skip();
        const path = join(dir, `refuse-${++serial}.qcow2`);
        runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...args.map((a) => a.replace('%', path)), path, '64M']);
        const before = readFileSync(path);
        const { file, close } = await openEditableFile(path);
        const r = await editing.openForEdit(file, stubReader).finally(close);
        expect(r).toMatchObject({ rewriteKeepsEverything: keeps });
        expect((r as InPlaceRefusal).refused).toMatch(reason);
        expect(readFileSync(path).equals(before)).toBe(true);
      });
    }

    it('an L2 entry pointing at metadata: the write fails naming it, writes nothing, and the session stops', async (ctx) => {
      if (!haveQemu()) return ctx.skip();
      const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 200 * KiB, seed: 1, zeros: false }]);
      const path = await makeImage(dir, { by: 'ours' }, model, disk);
      const b = readFileSync(path);
      const l1 = Number(b.readBigUInt64BE(40));
      const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
      b.writeBigUInt64BE(BigInt(l1) | (1n << 63n), l2 + 8); // guest cluster 1 -> the L1 table's cluster
      writeFileSync(path, b);
      const { s, done } = await editSession(path);
      await expect(s.write(60 * KiB, new Uint8Array(10 * KiB).fill(1))).rejects.toThrow(/guest cluster 1 maps to host offset .*not a data cluster/);
      await expect(s.write(0, new Uint8Array(10).fill(1))).rejects.toThrow(/earlier step .* failed/);
      await expect(s.flush()).rejects.toThrow(/earlier step/);
      await done();
      expect(readFileSync(path).equals(b)).toBe(true);
    });

    it('a write outside the virtual disk is a BAD_ARGUMENT and writes nothing', async (ctx) => {
      if (!haveQemu()) return ctx.skip();
      const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 10 * KiB, seed: 1, zeros: false }]);
      const path = await makeImage(dir, { by: 'ours' }, model, disk);
      const before = readFileSync(path);
      const { s, done } = await editSession(path);
      for (const [at, n] of [
        [MiB - 10, 11],
        [-1, 1],
        [0.5, 1],
      ]) {
        await expect(s.write(at, new Uint8Array(n))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      }
      await s.flush();
      await done();
      expect(readFileSync(path).equals(before)).toBe(true);
    });
  });
});
