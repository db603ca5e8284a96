/**
 * In-place VHD edits (src/containers/vhd/edit.ts). Random writes through a session give the
 * bytes the same writes give a raw copy (qemu-img compare and our reader judge), on images of
 * our writer and of qemu-img; refusals say what they refuse; a differencing disk takes its
 * parent's bytes. Power cuts: vhd-edit-cuts.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { vhdEditing } from '../../src/containers/vhd/edit.js';
import { DiskmintError } from '../../src/model/errors.js';
import { vhdChecksum } from '../../formats/containers/vhd.js';
import type { ContainerReader, InPlaceRefusal } from '../../src/containers/types.js';
import { diskPieceArb, fill, openWithHandler } from '../helpers/containers.js';
import { requirePeer } from '../helpers/peer.js';
import { KIB, KINDS, MIB, apply, fresh, isSession, makeImage, openBuf, qemuAgrees, readPath, recordingFile, sessionOn } from '../helpers/vhd-edit.js';

describe('VHD in-place edits give the bytes of the same writes to a raw copy', () => {
  const writeArb = fc.record({
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 1536 * KIB }),
    seed: fc.integer({ min: 1, max: 255 }),
    zeros: fc.boolean(),
    flush: fc.boolean(),
  });
  it('random unaligned writes into holes and data, flushed at random points (qemu-img compare and our reader agree)', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KINDS),
        fc.integer({ min: MIB, max: 6 * MIB }),
        fc.array(diskPieceArb(6 * MIB, 700 * KIB), { maxLength: 4 }),
        fc.array(writeArb, { minLength: 1, maxLength: 6 }),
        async (kind, size, pieces, writes) => {
          const path = await makeImage(kind, size, pieces);
          const model = await readPath(path);
          const { s, done } = await sessionOn(path);
          try {
            for (const w of writes) {
              const at = w.at % model.length;
              const data = w.zeros ? new Uint8Array(Math.min(w.length, model.length - at)) : fill(Math.min(w.length, model.length - at), w.seed);
              await s.write(at, data);
              model.set(data, at);
              if (w.flush) await s.flush();
            }
            await s.flush();
          } finally {
            await done();
          }
          expect(Buffer.compare(await readPath(path), model), `${kind}: our reader`).toBe(0);
          // The footer stands at the end of the file again (new blocks moved it).
          const r = await openWithHandler(vhdHandler, path);
          expect(r.details().footer, kind).toMatch(/^end/);
          await r.close();
          const raw = fresh('raw');
          writeFileSync(raw, model);
          // qemu's vpc driver ignores the sector bitmap on reads: the patched sectors read their 0xAA there.
          qemuAgrees(path, kind === 'ours-bitmap' ? undefined : raw);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('the same edits give the same bytes, and a write outside the disk changes nothing', async () => {
    const pieces = [{ at: 0, length: 3000, seed: 5, zeros: false }];
    const [a, b] = [await makeImage('ours', 5 * MIB, pieces), await makeImage('ours', 5 * MIB, pieces)];
    for (const path of [a, b]) {
      const size = (await readPath(path)).length;
      const { s, done } = await sessionOn(path);
      try {
        await s.write(2 * MIB - 100, fill(5000, 9));
        await s.write(100, fill(700, 3));
        await s.flush();
        const before = await readFile(path);
        await expect(s.write(size - 100, fill(1024, 1))).rejects.toThrow(DiskmintError);
        await expect(s.write(-1, fill(2, 1))).rejects.toThrow(/does not fit/);
        expect(Buffer.compare(await readFile(path), before)).toBe(0);
      } finally {
        await done();
      }
    }
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
  });
});

/** Patch the footer copy at 0 and the one at the end of a dynamic VHD: `patch` edits a 512-byte footer, then it is re-checksummed. */
function patchFooters(buf: Buffer, patch: (footer: Buffer) => void): void {
  for (const at of [0, buf.length - 512]) {
    const f = buf.subarray(at, at + 512);
    patch(f);
    f.writeUInt32BE(vhdChecksum(f, 64), 64);
  }
}

async function refusalOf(buf: Uint8Array, reader?: ContainerReader): Promise<InPlaceRefusal> {
  const r = reader ?? (await openBuf(buf));
  const got = await vhdEditing.openForEdit(recordingFile(buf).file, r);
  if (isSession(got)) throw new Error('expected a refusal, got a session');
  return got;
}

describe('VHD images that are not edited in place say why', () => {
  const base = async () => readFile(await makeImage('ours', 6 * MIB, [{ at: 0, length: 5 * MIB, seed: 2, zeros: false }]));

  it('a saved state: refused, and a rewrite would corrupt the suspended machine too', async () => {
    const buf = await base();
    patchFooters(buf, (f) => (f[84] = 1)); // VHD spec "Saved State", byte 84
    expect(await refusalOf(buf)).toEqual({ refused: expect.stringMatching(/saved state/), rewriteKeepsEverything: false });
  });

  it('a differencing disk without a reader of its parent: refused, a rewrite would drop the parent link', async () => {
    const buf = await base();
    const dynamic = await openBuf(new Uint8Array(buf));
    patchFooters(buf, (f) => f.writeUInt32BE(4, 60)); // disk type 4: differencing
    expect(await refusalOf(buf, dynamic)).toEqual({ refused: expect.stringMatching(/differencing .* parent/), rewriteKeepsEverything: false });
  });

  it('a footer that does not start on a sector (a byte before it): a rewrite keeps everything', async () => {
    const b = await base();
    const buf = Buffer.concat([b.subarray(0, b.length - 512), Buffer.from([1]), b.subarray(b.length - 512)]);
    expect(await refusalOf(buf)).toEqual({
      refused: expect.stringMatching(/footer starts at byte \d+, not on a 512-byte sector/),
      rewriteKeepsEverything: true,
    });
  });

  it('no footer at the end (only the copy at 0, as a cut edit may leave): new blocks go after the last sector, the footer back at the end', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    const path = fresh('vhd');
    const small = await readFile(await makeImage('ours', 6 * MIB, [{ at: 0, length: 1000, seed: 3, zeros: false }]));
    writeFileSync(path, Buffer.concat([small, Buffer.from([1])]));
    const model = await readPath(path);
    const { s, done } = await sessionOn(path);
    try {
      await s.write(3 * MIB + 7, fill(3000, 4)); // into a hole
      await s.flush();
    } finally {
      await done();
    }
    model.set(fill(3000, 4), 3 * MIB + 7);
    expect(Buffer.compare(await readPath(path), model)).toBe(0);
    const r = await openWithHandler(vhdHandler, path);
    expect(r.details().footer).toBe('end');
    await r.close();
    const raw = fresh('raw');
    writeFileSync(raw, model);
    qemuAgrees(path, raw);
  });

  it('two BAT entries naming the same block: refused, naming both', async () => {
    const buf = await base();
    const tableOffset = Number(buf.readBigUInt64BE(512 + 16));
    buf.writeUInt32BE(buf.readUInt32BE(tableOffset), tableOffset + 4);
    expect(await refusalOf(buf)).toEqual({ refused: expect.stringMatching(/block 0 and block 1 share bytes/), rewriteKeepsEverything: true });
  });

  it('a BAT that does not start on a sector: a rewrite keeps everything', async () => {
    const buf = await base();
    const tableOffset = Number(buf.readBigUInt64BE(512 + 16));
    buf.copy(buf, tableOffset + 4, tableOffset, tableOffset + 16); // the entries 4 bytes later, still inside the BAT's sector
    buf.writeBigUInt64BE(BigInt(tableOffset + 4), 512 + 16);
    buf.writeUInt32BE(vhdChecksum(buf.subarray(512, 1536), 36), 512 + 36);
    expect(await refusalOf(buf)).toEqual({ refused: expect.stringMatching(/BAT starts at byte \d+, not on a 512-byte sector/), rewriteKeepsEverything: true });
  });

  it('a block over the BAT: refused, naming both', async () => {
    const buf = await base();
    const tableOffset = Number(buf.readBigUInt64BE(512 + 16));
    buf.writeUInt32BE(tableOffset / 512, tableOffset + 8);
    expect((await refusalOf(buf)).refused).toMatch(/the BAT and block 2 share bytes/);
  });
});

describe('a differencing VHD edits through a reader of its parent', () => {
  it('new blocks hold the bytes of the parent around the new data', async () => {
    const buf = await readFile(await makeImage('ours', 6 * MIB, [{ at: 0, length: 1000, seed: 2, zeros: false }]));
    const dynamic = await openBuf(new Uint8Array(buf));
    const parent = fill(6 * MIB + 512 * 1024, 77);
    // A stand-in reader of the differencing disk: the dynamic disk's own blocks, the parent's bytes in its holes.
    const reader: ContainerReader = {
      ...dynamic,
      subformat: 'differencing',
      async read(offset, length) {
        const own = await dynamic.read(offset, length);
        const out = new Uint8Array(own);
        for (let at = offset; at < offset + own.length; at += 1) if (at >= 2 * MIB) out[at - offset] = parent[at];
        return out;
      },
    };
    patchFooters(buf, (f) => f.writeUInt32BE(4, 60));
    const { file, groups } = recordingFile(buf);
    const s = await vhdEditing.openForEdit(file, reader);
    if (!isSession(s)) throw new Error(s.refused);
    await s.write(2 * MIB + 1000, fill(100, 5));
    await s.write(4 * MIB + 10, new Uint8Array(100)); // zeros over the parent still allocate
    await s.flush();
    const after = apply(buf, groups.flat());
    patchFooters(Buffer.from(after.buffer, after.byteOffset, after.length), (f) => f.writeUInt32BE(3, 60)); // read it back as dynamic
    const block = await (await openBuf(after)).read(2 * MIB, 2 * MIB);
    const want = parent.slice(2 * MIB, 4 * MIB);
    want.set(fill(100, 5), 1000);
    expect(Buffer.compare(Buffer.from(block), Buffer.from(want))).toBe(0);
    const zeroed = parent.slice(4 * MIB, 6 * MIB);
    zeroed.fill(0, 10, 110);
    expect(Buffer.compare(Buffer.from(await (await openBuf(after)).read(4 * MIB, 2 * MIB)), Buffer.from(zeroed))).toBe(0);
  });
});
