/**
 * VMDK in-place edits (src/containers/vmdk/edit.ts): random writes through a session land as
 * they would on a raw disk (qemu-img compare, our reader, qemu-img check judge), the same edits
 * give the same bytes, refusals say why, and the bytes written follow the data. The crash order
 * is vmdk-edit-crash.test.ts.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { vmdkHandler } from '../../src/containers/vmdk/handler.js';
import { vmdkEditing } from '../../src/containers/vmdk/edit.js';
import type { ContainerReader, InPlaceRefusal } from '../../src/containers/types.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { openDisk } from '../../src/io/open-disk.js';
import { DiskmintError } from '../../src/model/errors.js';
import {
  SECTOR,
  decodeSparseHeader,
  decodeU32Table,
  encodeCidDigits,
  encodeTableSector,
  encodeU32Table,
  locateDescriptorCid,
} from '../../formats/containers/vmdk.js';
import { decodeDescriptor } from '../../formats/containers/vmdk-descriptor.js';
import { diskOfPieces, diskPieceArb, readAll, writeWithHandler } from '../helpers/containers.js';
import { GRAIN, MIB, SOURCES, editArb, expectImage, freshDir, haveQemu, makeImage, openSession, pattern } from '../helpers/vmdk-edit-images.js';

describe('vmdk in-place edits', () => {
  it('random writes and flushes read back as on a raw disk (qemu-img compare, our reader, qemu-img check)', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const caseArb = fc.record({ source: fc.constantFrom(...SOURCES), sectors: fc.integer({ min: 2048, max: 12_288 }) }).chain(({ source, sectors }) => {
      // sparse-gd images span two grain tables (32 MiB each), data in the first only
      const size = source === 'ours-sparse-gd' ? 40 * MIB : sectors * SECTOR;
      return fc.record({
        source: fc.constant(source),
        size: fc.constant(size),
        pieces: fc.array(diskPieceArb(size - 1, 300_000), { maxLength: 5 }),
        edits: fc.array(editArb(size), { minLength: 1, maxLength: 8 }),
      });
    });
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ source, size, pieces, edits }) => {
        const img = await makeImage(source, size, source === 'ours-sparse-gd' ? pieces.map((p) => ({ ...p, at: p.at % (30 * MIB) })) : pieces);
        const { session, close } = await openSession(img.path);
        try {
          for (const e of edits) {
            const length = Math.min(e.length, size - e.offset);
            const data = pattern(length, e.seed);
            await session.write(e.offset, data);
            img.raw.set(data, e.offset);
            if (e.flushAfter) await session.flush();
          }
          await session.flush();
        } finally {
          await close();
        }
        await expectImage(img.path, img.raw);
        await rm(join(img.path, '..'), { recursive: true, force: true });
      }),
      { numRuns: 25 },
    );
  });

  it('the same edits give the same bytes', async () => {
    const { disk } = diskOfPieces(4 * MIB, [{ at: 100_000, length: 300_000, seed: 3, zeros: false }]);
    const paths = [join(await freshDir(), 'disk.vmdk'), join(await freshDir(), 'disk.vmdk')]; // the descriptor names the file
    for (const path of paths) {
      await writeWithHandler(vmdkHandler, disk, path);
      const { session, close } = await openSession(path);
      await session.write(150_000, pattern(200_000, 1)); // into data, then on into holes
      await session.write(3 * MIB + 5, pattern(10, 2));
      await session.flush();
      await session.flush();
      await close();
    }
    const [a, b] = await Promise.all(paths.map((p) => readFile(p)));
    expect(a.equals(b)).toBe(true);
  });

  it('a new content ID on every flush that wrote, derived from the old one and the edit', async () => {
    const d = await freshDir();
    const path = join(d, 'a.vmdk');
    const { disk } = diskOfPieces(MIB, []);
    await writeWithHandler(vmdkHandler, disk, path);
    const cidOf = async () => decodeDescriptor((await readFile(path)).subarray(SECTOR, 21 * SECTOR)).cid;
    const cids = [await cidOf()];
    const { session, close } = await openSession(path);
    for (const seed of [1, 2]) {
      await session.write(1000, pattern(100, seed));
      await session.flush();
      cids.push(await cidOf());
    }
    await session.flush();
    cids.push(await cidOf());
    await close();
    expect(new Set(cids.slice(0, 3)).size).toBe(3); // each flush with writes changes it
    expect(cids[3]).toBe(cids[2]); // a flush without writes does not
  });
});

describe('codec helpers (formats/containers/vmdk.ts)', () => {
  it('encodeTableSector: the sectors of a table, one by one, are the table', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 700 }), (entries) => {
        const sectors = Math.ceil(entries.length / 128);
        const parts = Array.from({ length: sectors }, (_, k) => encodeTableSector(entries, k));
        parts.forEach((part, k) => expect(Array.from(decodeU32Table(part, part.length / 4))).toEqual(entries.slice(k * 128, k * 128 + 128)));
        expect(Buffer.concat(parts).equals(Buffer.from(encodeU32Table(entries, sectors).subarray(0, entries.length * 4)))).toBe(true);
        expect(() => encodeTableSector(entries, sectors)).toThrow(/has no sector/);
      }),
    );
  });

  it('locateDescriptorCid finds the CID line (not parentCID), and new digits of the same width decode as the new CID', () => {
    const hex = fc.integer({ min: 1, max: 8 }).chain((width) => fc.tuple(fc.constant(width), fc.nat({ max: 16 ** width - 1 })));
    fc.assert(
      fc.property(hex, hex, fc.boolean(), fc.constantFrom('', ' ', '\t'), ([width, cid], [, parent], parentFirst, pad) => {
        const cidLine = `CID${pad}=${pad}${cid.toString(16).padStart(width, '0')}\n`;
        const parentLine = `parentCID=${parent.toString(16)}\n`;
        const text = `# Disk DescriptorFile\nversion=1\n${parentFirst ? parentLine + cidLine : cidLine + parentLine}createType="monolithicSparse"\n`;
        const bytes = new Uint8Array(2048);
        bytes.set(Buffer.from(text, 'latin1'));
        const spot = locateDescriptorCid(bytes);
        expect(spot).toMatchObject({ value: cid });
        expect(spot!.end - spot!.start).toBe(width);
        const next = (cid + 1) % 16 ** width;
        bytes.set(encodeCidDigits(next, width), spot!.start);
        expect(decodeDescriptor(bytes)).toMatchObject({ cid: next, parentCid: parent });
      }),
    );
    expect(locateDescriptorCid(Buffer.from('version=1\nparentCID=ffffffff\n'))).toBeUndefined();
    expect(() => encodeCidDigits(0x100, 2)).toThrow(/does not fit/);
  });
});

describe('refusals', () => {
  async function refusalFor(path: string): Promise<InPlaceRefusal> {
    const { reader } = await openDisk(path, { allowBacking: true });
    const { file, close } = await openEditableFile(path);
    try {
      const got = await vmdkEditing.openForEdit(file, reader);
      if (!('refused' in got)) throw new Error('not refused');
      return got;
    } finally {
      await close();
      await reader.close();
    }
  }
  const { disk } = diskOfPieces(3 * MIB, [{ at: 5000, length: 100_000, seed: 1, zeros: false }]);

  for (const [subformat, keeps, reason] of [
    ['streamOptimized', true, /streamOptimized.*deflated grains/],
    ['monolithicFlat', true, /monolithicFlat.*flat extent file/],
    ['twoGbMaxExtentSparse', false, /twoGbMaxExtentSparse.*extent files.*would change its layout/],
    ['twoGbMaxExtentFlat', false, /twoGbMaxExtentFlat.*extent files.*would change its layout/],
  ] as const) {
    it(`${subformat}: refused (rewrite keeps everything: ${keeps})`, async () => {
      const path = join(await freshDir(), 'disk.vmdk');
      await writeWithHandler(vmdkHandler, disk, path, { options: { subformat } });
      const before = await readFile(path);
      const r = await refusalFor(path);
      expect(r.rewriteKeepsEverything).toBe(keeps);
      expect(r.refused).toMatch(reason);
      expect((await readFile(path)).equals(before)).toBe(true);
    });
  }

  it('version 3 sparse extents (changed block tracking) are refused, as qemu opens them read-only', async () => {
    const path = join(await freshDir(), 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const bytes = await readFile(path);
    bytes.writeUInt32LE(3, 4); // header version
    await writeFile(path, bytes);
    const r = await refusalFor(path);
    expect(r).toMatchObject({ rewriteKeepsEverything: true, refused: expect.stringMatching(/version 3/) });
  });

  it('a delta disk whose parent the reader did not open is refused (its grains could not be filled)', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const img = await makeImage('qemu-child', 2 * MIB, [{ at: 0, length: 200_000, seed: 4, zeros: false }]);
    const { reader } = await openDisk(img.path, { allowBacking: true });
    const { file, close } = await openEditableFile(img.path);
    try {
      // the reader as one that did not follow the parent link
      const stripped: ContainerReader = {
        ...reader,
        details: () => {
          const d = { ...reader.details() };
          delete d.parent;
          return d;
        },
      };
      const got = await vmdkEditing.openForEdit(file, stripped);
      expect(got).toMatchObject({ rewriteKeepsEverything: false, refused: expect.stringMatching(/delta disk of "parent.vmdk"/) });
    } finally {
      await close();
      await reader.close();
    }
  });

  it('a grain table entry pointing into the header or directories is a FormatError, and nothing is written', async () => {
    const path = join(await freshDir(), 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const bytes = await readFile(path);
    const h = decodeSparseHeader(bytes.subarray(0, SECTOR));
    const gt0 = decodeU32Table(bytes.subarray((h.gdOffset as number) * SECTOR), 1)[0];
    bytes.writeUInt32LE(2, gt0 * SECTOR); // grain 0 "at sector 2": inside the descriptor
    await writeFile(path, bytes);
    const { session, close } = await openSession(path);
    try {
      await expect(session.write(100, new Uint8Array(10))).rejects.toMatchObject({
        name: 'FormatError',
        message: expect.stringMatching(/overlaps the header/),
      });
      await session.flush();
    } finally {
      await close();
    }
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('a write outside the disk, or one needing sectors past 2^32, is a BAD_ARGUMENT and writes nothing', async () => {
    const path = join(await freshDir(), 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const before = await readFile(path);
    let writes = 0;
    const { session, close } = await openSession(path, (f) => ({
      ...f,
      read: f.read.bind(f),
      // the file claims to end just below sector 2^32: a new grain would not fit a GTE
      size: (2 ** 32 - 64) * SECTOR,
      write: async () => {
        writes++;
      },
      barrier: async () => {},
    }));
    try {
      await expect(session.write(3 * MIB - 10, new Uint8Array(11))).rejects.toThrow(DiskmintError);
      await expect(session.write(-1, new Uint8Array(1))).rejects.toThrow(/outside the 3145728-byte disk/);
      await expect(session.write(2 * MIB, new Uint8Array(10))).rejects.toThrow(/past sector 2\^32/);
      await session.write(5000, new Uint8Array(10)); // allocated: fits
      expect(writes).toBe(1);
    } finally {
      await close();
    }
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});

describe('cost follows the data', () => {
  /** Write `length` bytes at `at` into `path` through a session, counting the bytes and writes of each barrier group. */
  async function countedEdit(path: string, at: number, length: number): Promise<{ groups: Array<{ writes: number; bytes: number }>; ms: number }> {
    const groups = [{ writes: 0, bytes: 0 }];
    let ms = 0; // in the session's calls only (not in making the test's bytes)
    const { session, close } = await openSession(path, (f) => ({
      ...f,
      read: f.read.bind(f),
      get size() {
        return f.size;
      },
      write: async (offset, data) => {
        groups[groups.length - 1].writes++;
        groups[groups.length - 1].bytes += data.length;
        await f.write(offset, data);
      },
      barrier: async () => {
        groups.push({ writes: 0, bytes: 0 });
        await f.barrier();
      },
    }));
    try {
      const chunk = 4 * MIB;
      for (let done = 0; done < length; done += chunk) {
        const data = pattern(Math.min(chunk, length - done), done);
        const started = performance.now();
        await session.write(at + done, data);
        ms += performance.now() - started;
      }
      const started = performance.now();
      await session.flush();
      ms += performance.now() - started;
    } finally {
      await close();
    }
    return { groups, ms };
  }

  it('8 MiB written into a 32 MiB container, half over data, half into holes: 8 MiB plus one table sector per changed sector', async () => {
    const size = 32 * MIB;
    const { disk, model } = diskOfPieces(size, [{ at: 0, length: 12 * MIB + 100, seed: 7, zeros: false }]);
    const path = join(await freshDir(), 'disk.vmdk');
    await writeWithHandler(vmdkHandler, disk, path);
    const at = 8 * MIB + 1000; // from inside the data into the holes after it
    const length = 8 * MIB;
    const { groups } = await countedEdit(path, at, length);
    const [data, tables, cid, rest] = groups;
    // the grains: the data, plus one partial new grain (12 MiB + 100 is inside a stored grain; the end is not)
    expect(data.bytes).toBeLessThanOrEqual(length + GRAIN);
    expect(data.bytes).toBeGreaterThanOrEqual(length);
    // GTEs of new grains 12 MiB + 64 KiB .. 16 MiB + 1000: grains 193..256, in GT sectors 1 and 2, each in both tables
    const newGrains = [...Array(Math.floor((at + length - 1) / GRAIN) + 1).keys()].filter((g) => g * GRAIN >= 12 * MIB + GRAIN);
    const sectors = new Set(newGrains.map((g) => Math.floor((g % 512) / 128)));
    expect(tables.writes).toBe(2 * sectors.size);
    expect(tables.bytes).toBe(2 * sectors.size * SECTOR);
    expect(cid).toEqual({ writes: 1, bytes: 8 });
    expect(rest).toEqual({ writes: 0, bytes: 0 });
    const want = Buffer.from(model);
    for (let done = 0; done < length; done += 4 * MIB) want.set(pattern(Math.min(4 * MIB, length - done), done), at + done);
    const { reader } = await openDisk(path);
    try {
      expect((await readAll(reader)).equals(want)).toBe(true);
    } finally {
      await reader.close();
    }
  });
});
