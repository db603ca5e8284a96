/**
 * In-place VHDX edits (src/containers/vhdx/edit.ts): random writes through a session against the
 * same writes to a raw copy, judged by qemu-img (compare, check) and our reader; refusals; what an
 * edit costs. Power cuts are in vhdx-edit-crash.test.ts.
 */
import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DiskmintError } from '../../src/model/errors.js';
import { openDisk } from '../../src/io/open-disk.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import type { ContainerEditSession, EditableFile, InPlaceRefusal } from '../../src/containers/types.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { decodeVhdxHeader } from '../../formats/containers/vhdx.js';
import { diskOfPieces, diskPieceArb, fill, openWithHandler, readAll, writeWithHandler } from '../helpers/containers.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { vhdxLogEntry, withVhdxLog } from '../helpers/vhdx-log.js';
import { MIB, fresh, isRefusal, oursImage, qemuCheck, session } from './vhdx-edit-helpers.js';

type Maker = { by: 'ours'; options: Record<string, string> } | { by: 'qemu-create' | 'qemu-convert'; options: string };
const MAKERS: Maker[] = [
  { by: 'ours', options: { block_size: '1M' } },
  { by: 'ours', options: { subformat: 'fixed', block_size: '1M' } },
  { by: 'ours', options: {} },
  { by: 'qemu-create', options: 'block_size=1M' },
  { by: 'qemu-convert', options: 'block_size=1M' },
  { by: 'qemu-convert', options: 'subformat=fixed,block_size=8M' },
  { by: 'qemu-convert', options: 'block_size=32M' },
];

/** A container of `model` (all zeros for qemu-img create) made by `maker`; returns its path. */
async function makeImage(maker: Maker, model: Uint8Array, disk: Parameters<typeof writeWithHandler>[1]): Promise<string> {
  const path = fresh('vhdx');
  if (maker.by === 'ours') {
    await writeWithHandler(vhdxHandler, disk, path, { options: maker.options });
  } else if (maker.by === 'qemu-create') {
    model.fill(0);
    runPeerOk('qemu-img', ['create', '-q', '-f', 'vhdx', '-o', maker.options, path, String(model.length)]);
  } else {
    const raw = fresh('raw');
    writeFileSync(raw, model);
    runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', '-o', maker.options, raw, path]);
  }
  return path;
}

/** Open `path` for editing, run `edit`, close everything. */
async function editFile(path: string, edit: (s: ContainerEditSession) => Promise<void>, count?: { bytes: number; read: number }): Promise<void> {
  const reader = await openWithHandler(vhdxHandler, path);
  const { file, close } = await openEditableFile(path);
  // Counting what the session reads and writes (the file's own size getter stays in use).
  const counted: EditableFile = !count
    ? file
    : Object.assign(Object.create(file) as EditableFile, {
        read: (o: number, l: number, into?: Uint8Array) => ((count.read += l), file.read(o, l, into)),
        write: (o: number, d: Uint8Array) => ((count.bytes += d.length), file.write(o, d)),
      });
  try {
    await edit(await session(counted, reader));
  } finally {
    await close();
    await reader.close();
  }
}

const writeArb = fc.record({ at: fc.nat(), length: fc.integer({ min: 1, max: (5 * MIB) / 2 }), seed: fc.nat(255), flush: fc.boolean() });

describe('VHDX in-place edits (issue 17 item 3)', () => {
  it('random writes read back as on a raw copy: qemu-img compare and check, and our reader', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...MAKERS),
        fc.integer({ min: 2048, max: 14336 }),
        fc.array(diskPieceArb(7 * MIB, (3 * MIB) / 2), { maxLength: 4 }),
        fc.array(writeArb, { minLength: 1, maxLength: 8 }),
        async (maker, sectors, pieces, writes) => {
          const size = sectors * 512;
          const { disk, model } = diskOfPieces(size, pieces);
          const path = await makeImage(maker, model, disk);
          await editFile(path, async (s) => {
            for (const w of writes) {
              const at = w.at % size;
              const data = fill(Math.min(w.length, size - at), w.seed);
              await s.write(at, data);
              model.set(data, at);
              if (w.flush) await s.flush();
            }
            await s.flush();
          });
          const raw = fresh('raw');
          writeFileSync(raw, model);
          const compare = runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'vhdx', raw, path]);
          expect(compare.out).toContain('identical');
          expect(compare.status).toBe(0);
          expect(qemuCheck(path).status).toBe(0);
          const { reader } = await openDisk(path);
          expect(Buffer.compare(await readAll(reader), Buffer.from(model))).toBe(0);
          await reader.close();
          rmSync(raw);
          rmSync(path);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('the same edits give the same bytes', async () => {
    const a = await oursImage(6 * MIB, [{ at: MIB + 5, length: 70_000, seed: 3, zeros: false }]);
    const b = fresh('vhdx');
    copyFileSync(a, b);
    const edit = async (s: ContainerEditSession) => {
      await s.write(MIB - 7, fill(3 * MIB, 9));
      await s.flush();
      await s.write(5 * MIB + 100, fill(1000, 4));
      await s.flush();
    };
    await editFile(a, edit);
    await editFile(b, edit);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    // Calls issued together run in order: two writes into one hole share its one new block.
    const c = await oursImage(6 * MIB);
    const cSize = statSync(c).size;
    await editFile(c, (s) => Promise.all([s.write(4 * MIB, fill(10, 1)), s.write(4 * MIB + 10, fill(10, 2)), s.flush()]).then(() => undefined));
    const { reader } = await openDisk(c);
    expect(Buffer.from(await reader.read(4 * MIB, 20)).equals(Buffer.concat([fill(10, 1), fill(10, 2)]))).toBe(true);
    await reader.close();
    expect(statSync(c).size).toBe(cSize + MIB);
  });

  it('the new header: the other slot, sequence number + 1, new write GUIDs, a valid CRC-32C', async () => {
    const path = await oursImage(2 * MIB);
    const before = readFileSync(path);
    await editFile(path, async (s) => {
      await s.write(0, fill(10, 1));
      await s.flush();
    });
    const after = readFileSync(path);
    const [h1, h2] = [64 * 1024, 128 * 1024].map((at) => decodeVhdxHeader(after.subarray(at, at + 4096), 'header'));
    const old2 = decodeVhdxHeader(before.subarray(128 * 1024, 128 * 1024 + 4096), 'header');
    // Our writer makes header 2 current (sequence 2), so header 1 is the one rewritten.
    expect(h2).toEqual(old2);
    expect(h1.sequenceNumber).toBe(old2.sequenceNumber + 1n);
    expect(h1.fileWriteGuid).not.toBe(old2.fileWriteGuid);
    expect(h1.dataWriteGuid).not.toBe(old2.dataWriteGuid);
    expect(h1.fileWriteGuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('a write outside the disk is a BAD_ARGUMENT and changes nothing', async () => {
    const path = await oursImage(2 * MIB);
    const before = readFileSync(path);
    await editFile(path, async (s) => {
      const err = await s.write(2 * MIB - 10, new Uint8Array(11)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskmintError);
      expect((err as DiskmintError).code).toBe('BAD_ARGUMENT');
      await s.flush();
    });
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('cost follows the data: 16 MiB into a 64 MiB disk writes 16 MiB plus a few sectors, reads little', async () => {
    const path = await oursImage(64 * MIB, [{ at: 9 * MIB, length: 2 * MIB, seed: 1, zeros: false }]);
    const count = { bytes: 0, read: 0 };
    await editFile(
      path,
      async (s) => {
        await s.write(7 * MIB + 123, fill(16 * MIB, 2));
        await s.flush();
      },
      count,
    );
    // The data, the header (4 KiB), one BAT sector, the zero tails of the two partly written new blocks.
    expect(count.bytes).toBeLessThanOrEqual(16 * MIB + 4 * 4096);
    expect(count.read).toBeLessThan(256 * 1024);
  });
});

describe('VHDX in-place edit refusals', () => {
  const image = (size: number) => oursImage(size, [{ at: 0, length: 5000, seed: 1, zeros: false }]);
  /** Open the reader on `path`, then patch the file (as another writer might), then ask for a session. */
  async function refusalAfter(path: string, patch: (b: Buffer) => void): Promise<InPlaceRefusal> {
    const reader = await openWithHandler(vhdxHandler, path);
    const b = readFileSync(path);
    patch(b);
    writeFileSync(path, b);
    const { file, close } = await openEditableFile(path);
    try {
      const r = await vhdxHandler.editing!.openForEdit(file, reader);
      expect(isRefusal(r)).toBe(true);
      expect(readFileSync(path).equals(b)).toBe(true);
      return r as InPlaceRefusal;
    } finally {
      await close();
      await reader.close();
    }
  }
  const reseal = (b: Buffer, at: number, len: number) => {
    b.writeUInt32LE(0, at + 4);
    b.writeUInt32LE(crc32c(b.subarray(at, at + len)), at + 4);
  };

  it('a log that needs replaying: refused, a rewrite would lose it; repair replays it', async () => {
    const path = await image(3 * MIB);
    const img = readFileSync(path);
    const bat = Uint8Array.from(img.subarray(3 * MIB, 3 * MIB + 4096));
    const entry = vhdxLogEntry({
      sequence: 1n,
      tail: 0,
      writes: [{ fileOffset: 3 * MIB, data: bat }],
      flushedFileOffset: img.length,
      lastFileOffset: img.length,
    });
    const r = await refusalAfter(path, (b) => withVhdxLog(b, [{ at: 0, entry }]).copy(b));
    expect(r.rewriteKeepsEverything).toBe(false);
    expect(r.refused).toMatch(/log holds 1 entries .*diskmint repair/);
  });

  it('a differencing disk (HasParent): refused, a rewrite would lose its parent', async () => {
    // Our layout: the metadata region at 2 MiB, File Parameters right after its 64 KiB table; HasParent is bit 1 of its flags.
    const r = await refusalAfter(await image(3 * MIB), (b) => b.writeUInt32LE(b.readUInt32LE(2 * MIB + 64 * 1024 + 4) | 2, 2 * MIB + 64 * 1024 + 4));
    expect(r.rewriteKeepsEverything).toBe(false);
    expect(r.refused).toMatch(/differencing disk \(HasParent/);
  });

  it('a BAT region too small for the disk: refused, a rewrite keeps everything', async () => {
    // 600 MiB in 1 MiB blocks: 600 entries, 4800 bytes; both region tables say the BAT has 4096.
    const r = await refusalAfter(await image(600 * MIB), (b) => {
      for (const t of [192 * 1024, 256 * 1024]) {
        for (let i = 0; i < b.readUInt32LE(t + 8); i++) if (b.readUInt32LE(t + 16 + i * 32) === 0x2dc27766) b.writeUInt32LE(4096, t + 16 + i * 32 + 24);
        reseal(b, t, 64 * 1024);
      }
    });
    expect(r.rewriteKeepsEverything).toBe(true);
    expect(r.refused).toMatch(/BAT region \(4096 bytes\) is too small for the 600 entries/);
  });
});
