/**
 * UFS directory codec: FreeBSD sys/ufs/ufs/dir.h `struct direct`, little-endian:
 *   0 d_ino u32   4 d_reclen u16   6 d_type u8   7 d_namlen u8   8 d_name (NUL-terminated)
 * An entry takes DIRECTSIZ(namlen) = 8 + roundup(namlen + 1, 4) bytes; entries never cross a
 * DIRBLKSIZ (512-byte) chunk, and the last entry of a chunk stretches its d_reclen to the
 * chunk's end. A directory's size is a whole number of chunks; an empty chunk is one entry
 * with d_ino 0 and d_reclen 512.
 */
import { fail } from '../../common/errors.js';

export const DIRBLKSIZ = 512;
/** dir.h UFS_MAXNAMLEN. */
export const UFS_MAXNAMLEN = 255;
/** dir.h DT_* values for d_type. */
export const DT_UNKNOWN = 0;
export const DT_FIFO = 1;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_BLK = 6;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_SOCK = 12;

export interface DirEntry {
  ino: number;
  type: number;
  /** The name's bytes (UTF-8 or whatever the source held), 1..255 bytes, no '/' or NUL. */
  name: Uint8Array;
}

/** dir.h DIRECTSIZ: the bytes an entry with an n-byte name needs. */
export function directSize(namlen: number): number {
  return 8 + ((namlen + 1 + 3) & ~3);
}

function checkName(name: Uint8Array): void {
  if (name.length < 1 || name.length > UFS_MAXNAMLEN)
    throw fail('ufs', 'BAD_VALUE', `a directory entry name has 1 to ${UFS_MAXNAMLEN} bytes, not ${name.length}`);
  if (name.includes(0) || name.includes(0x2f)) throw fail('ufs', 'BAD_VALUE', 'a directory entry name holds no NUL or slash');
}

/** Bytes the entries take once packed into 512-byte chunks (a multiple of DIRBLKSIZ). */
export function directoryBytes(entries: readonly { name: Uint8Array }[]): number {
  let chunks = 1;
  let used = 0;
  for (const e of entries) {
    const need = directSize(e.name.length);
    if (used + need > DIRBLKSIZ) {
      chunks++;
      used = 0;
    }
    used += need;
  }
  return chunks * DIRBLKSIZ;
}

/** Pack entries in order (callers put '.' and '..' first) into whole 512-byte chunks. */
export function encodeDirectory(entries: readonly DirEntry[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(directoryBytes(entries));
  const dv = new DataView(out.buffer);
  let chunk = 0;
  let used = 0;
  let last = -1;
  const close = () => {
    if (last < 0) {
      dv.setUint16(chunk + 4, DIRBLKSIZ, true); // an empty chunk: d_ino 0, d_reclen DIRBLKSIZ
    } else dv.setUint16(last + 4, chunk + DIRBLKSIZ - last, true);
  };
  for (const e of entries) {
    checkName(e.name);
    const need = directSize(e.name.length);
    if (used + need > DIRBLKSIZ) {
      close();
      chunk += DIRBLKSIZ;
      used = 0;
      last = -1;
    }
    const at = chunk + used;
    dv.setUint32(at, e.ino >>> 0, true);
    dv.setUint16(at + 4, need, true);
    out[at + 6] = e.type;
    out[at + 7] = e.name.length;
    out.set(e.name, at + 8);
    last = at;
    used += need;
  }
  close();
  return out;
}

/** Read every live entry (d_ino != 0) of a directory's bytes; checks each chunk's chaining. */
export function decodeDirectory(bytes: Uint8Array): DirEntry[] {
  if (bytes.length % DIRBLKSIZ !== 0) throw fail('ufs', 'BAD_VALUE', `a directory is whole ${DIRBLKSIZ}-byte chunks, not ${bytes.length} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: DirEntry[] = [];
  for (let chunk = 0; chunk < bytes.length; chunk += DIRBLKSIZ) {
    let at = chunk;
    while (at < chunk + DIRBLKSIZ) {
      const ino = dv.getUint32(at, true);
      const reclen = dv.getUint16(at + 4, true);
      const namlen = bytes[at + 7];
      if (reclen < 8 || reclen % 4 !== 0 || at + reclen > chunk + DIRBLKSIZ) throw fail('ufs', 'BAD_VALUE', `directory entry at ${at} has d_reclen ${reclen}`);
      if (ino !== 0) {
        if (directSize(namlen) > reclen || namlen === 0)
          throw fail('ufs', 'BAD_VALUE', `directory entry at ${at} has d_namlen ${namlen} for d_reclen ${reclen}`);
        out.push({ ino, type: bytes[at + 6], name: bytes.slice(at + 8, at + 8 + namlen) });
      }
      at += reclen;
    }
  }
  return out;
}
