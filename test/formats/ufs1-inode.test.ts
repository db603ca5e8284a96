/**
 * The UFS1 dinode decoder (formats/fs/ufs1-inode.ts): every field read from its place in
 * struct ufs1_dinode (sys/ufs/ufs/dinode.h), written here with a DataView; any 128 bytes
 * decode or give a FormatError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../formats/common/errors.js';
import { decodeUfs1Dinode, UFS1_DINODE_SIZE } from '../../formats/fs/ufs1-inode.js';

const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const u32 = fc.nat(2 ** 32 - 1);

describe('UFS1 dinode', () => {
  it('reads each field at its dinode.h offset', () => {
    const fields = fc.record({
      mode: fc.nat(0xffff),
      nlink: fc.integer({ min: -32768, max: 32767 }),
      size: fc.nat(Number.MAX_SAFE_INTEGER),
      times: fc.array(i32, { minLength: 6, maxLength: 6 }),
      db: fc.array(i32, { minLength: 12, maxLength: 12 }),
      ib: fc.array(i32, { minLength: 3, maxLength: 3 }),
      flags: u32,
      blocks: u32,
      gen: u32,
      uid: u32,
      gid: u32,
    });
    fc.assert(
      fc.property(fields, (f) => {
        const b = new Uint8Array(UFS1_DINODE_SIZE);
        const dv = new DataView(b.buffer);
        dv.setUint16(0, f.mode, true);
        dv.setInt16(2, f.nlink, true);
        dv.setBigUint64(8, BigInt(f.size), true);
        f.times.forEach((t, i) => dv.setInt32(16 + 4 * i, t, true));
        f.db.forEach((p, i) => dv.setInt32(40 + 4 * i, p, true));
        f.ib.forEach((p, i) => dv.setInt32(88 + 4 * i, p, true));
        dv.setUint32(100, f.flags, true);
        dv.setUint32(104, f.blocks, true);
        dv.setUint32(108, f.gen, true);
        dv.setUint32(112, f.uid, true);
        dv.setUint32(116, f.gid, true);
        const d = decodeUfs1Dinode(b);
        expect(d).toMatchObject({
          mode: f.mode,
          nlink: f.nlink,
          size: f.size,
          db: f.db,
          ib: f.ib,
          flags: f.flags,
          blocks: f.blocks,
          gen: f.gen,
          uid: f.uid,
          gid: f.gid,
        });
        const [atime, atimensec, mtime, mtimensec, ctime, ctimensec] = f.times;
        expect(d).toMatchObject({ atime, atimensec, mtime, mtimensec, ctime, ctimensec });
        expect(d.pointerArea).toEqual(b.slice(40, 100));
      }),
    );
  });

  it('any bytes decode or give a FormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          decodeUfs1Dinode(b);
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
    );
  });
});
