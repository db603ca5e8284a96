/**
 * UFS2 superblock codec: FreeBSD sys/ufs/ffs/fs.h `struct fs` (1376 bytes, CTASSERT in fs.h),
 * little-endian. The probe (formats/fs/ufs.ts) reads its offsets from SB_OFFSETS here, so
 * there is one table of superblock offsets.
 *
 * Fields the in-core kernel owns (fs_ocsp, fs_si pointers at 728..855, fs_snapinum) and spare
 * words are written as zeros and not decoded.
 */
import { fail } from '../../common/errors.js';

/** fs.h: FS_UFS2_MAGIC; SBLOCK_UFS2 (byte offset of the standard superblock); SBLOCKSIZE. */
export const FS_UFS2_MAGIC = 0x19540119;
/** fs.h FS_UFS1_MAGIC: a UFS1 superblock has the same struct fs (the reader decodes both). */
export const FS_UFS1_MAGIC = 0x011954;
export const SBLOCK_UFS2 = 65536;
export const SBLOCKSIZE = 8192;
/** sizeof(struct fs), fs.h CTASSERT. */
export const STRUCT_FS_SIZE = 1376;
/** fs.h MAXMNTLEN and MAXVOLLEN. */
export const MAXMNTLEN = 468;
export const MAXVOLLEN = 32;
/** fs.h fs_flags and fs_old_flags bits we use. */
export const FS_DOSOFTDEP = 0x2;
export const FS_FLAGS_UPDATED = 0x80;
/** fs.h FS_ISCLEAN is 1 (fs_clean). */
export const FS_ISCLEAN = 1;
/** fs.h FS_44INODEFMT (fs_old_inodefmt). */
export const FS_44INODEFMT = 2;
/** fs.h FS_OPTTIME, FS_OPTSPACE (fs_optim). */
export const FS_OPTTIME = 0;
export const FS_OPTSPACE = 1;

type FieldType = 'i8' | 'u8' | 'i32' | 'u32' | 'i64' | 'u64';

/** Byte offsets of struct fs (fs.h), scalar fields in declaration order. */
export const SB_OFFSETS = {
  sblkno: 8,
  cblkno: 12,
  iblkno: 16,
  dblkno: 20,
  oldCgoffset: 24,
  oldCgmask: 28,
  oldTime: 32,
  oldSize: 36,
  oldDsize: 40,
  ncg: 44,
  bsize: 48,
  fsize: 52,
  frag: 56,
  minfree: 60,
  oldRotdelay: 64,
  oldRps: 68,
  bmask: 72,
  fmask: 76,
  bshift: 80,
  fshift: 84,
  maxcontig: 88,
  maxbpg: 92,
  fragshift: 96,
  fsbtodb: 100,
  sbsize: 104,
  nindir: 116,
  inopb: 120,
  oldNspf: 124,
  optim: 128,
  oldNpsect: 132,
  oldInterleave: 136,
  oldTrackskew: 140,
  id0: 144,
  id1: 148,
  oldCsaddr: 152,
  cssize: 156,
  cgsize: 160,
  oldNsect: 168,
  oldSpc: 172,
  oldNcyl: 176,
  oldCpg: 180,
  ipg: 184,
  fpg: 188,
  fmod: 208,
  clean: 209,
  ronly: 210,
  oldFlags: 211,
  swuid: 712,
  cgrotor: 724,
  oldCpc: 856,
  maxbsize: 860,
  unrefs: 864,
  providersize: 872,
  metaspace: 880,
  sblockactualloc: 992,
  sblockloc: 1000,
  time: 1072,
  size: 1080,
  dsize: 1088,
  csaddr: 1096,
  pendingblocks: 1104,
  pendinginodes: 1112,
  avgfilesize: 1196,
  avgfpdir: 1200,
  saveCgsize: 1204,
  mtime: 1208,
  sujfree: 1216,
  ckhash: 1304,
  metackhash: 1308,
  flags: 1312,
  contigsumsize: 1316,
  maxsymlinklen: 1320,
  oldInodefmt: 1324,
  maxfilesize: 1328,
  qbmask: 1336,
  qfmask: 1344,
  state: 1352,
  oldPostblformat: 1356,
  oldNrpos: 1360,
  magic: 1372,
} as const;
/** fs_old_cstotal (struct csum, 4 x int32), fs_fsmnt, fs_volname, fs_cstotal (struct csum_total). */
export const SB_OLD_CSTOTAL = 192;
export const SB_FSMNT = 212;
export const SB_VOLNAME = 680;
export const SB_CSTOTAL = 1008;

export type SuperblockScalars = { -readonly [K in keyof typeof SB_OFFSETS]: number };

const TYPES: { [K in keyof typeof SB_OFFSETS]: FieldType } = {
  sblkno: 'i32',
  cblkno: 'i32',
  iblkno: 'i32',
  dblkno: 'i32',
  oldCgoffset: 'i32',
  oldCgmask: 'u32',
  oldTime: 'i32',
  oldSize: 'i32',
  oldDsize: 'i32',
  ncg: 'u32',
  bsize: 'i32',
  fsize: 'i32',
  frag: 'i32',
  minfree: 'i32',
  oldRotdelay: 'i32',
  oldRps: 'i32',
  bmask: 'i32',
  fmask: 'i32',
  bshift: 'i32',
  fshift: 'i32',
  maxcontig: 'i32',
  maxbpg: 'i32',
  fragshift: 'i32',
  fsbtodb: 'i32',
  sbsize: 'i32',
  nindir: 'i32',
  inopb: 'u32',
  oldNspf: 'i32',
  optim: 'i32',
  oldNpsect: 'i32',
  oldInterleave: 'i32',
  oldTrackskew: 'i32',
  id0: 'u32',
  id1: 'u32',
  oldCsaddr: 'i32',
  cssize: 'i32',
  cgsize: 'i32',
  oldNsect: 'i32',
  oldSpc: 'i32',
  oldNcyl: 'i32',
  oldCpg: 'i32',
  ipg: 'u32',
  fpg: 'i32',
  fmod: 'i8',
  clean: 'i8',
  ronly: 'i8',
  oldFlags: 'u8',
  swuid: 'u64',
  cgrotor: 'i32',
  oldCpc: 'i32',
  maxbsize: 'i32',
  unrefs: 'i64',
  providersize: 'i64',
  metaspace: 'i64',
  sblockactualloc: 'i64',
  sblockloc: 'i64',
  time: 'i64',
  size: 'i64',
  dsize: 'i64',
  csaddr: 'i64',
  pendingblocks: 'i64',
  pendinginodes: 'u32',
  avgfilesize: 'u32',
  avgfpdir: 'u32',
  saveCgsize: 'i32',
  mtime: 'i64',
  sujfree: 'i32',
  ckhash: 'u32',
  metackhash: 'u32',
  flags: 'i32',
  contigsumsize: 'i32',
  maxsymlinklen: 'i32',
  oldInodefmt: 'i32',
  maxfilesize: 'u64',
  qbmask: 'i64',
  qfmask: 'i64',
  state: 'i32',
  oldPostblformat: 'i32',
  oldNrpos: 'i32',
  magic: 'i32',
};

/** struct csum (fs.h): per-cylinder-group counts, 4 x int32. */
export interface Csum {
  ndir: number;
  nbfree: number;
  nifree: number;
  nffree: number;
}
/** struct csum_total (fs.h): the file system's totals, int64 each (cs_spare[3] stay zero). */
export interface CsumTotal extends Csum {
  numclusters: number;
}

export interface Superblock extends SuperblockScalars {
  oldCstotal: Csum;
  cstotal: CsumTotal;
  /** fs_fsmnt: where it was last mounted (up to 467 bytes, NUL-terminated). */
  fsmnt: string;
  /** fs_volname: the label, /dev/ufs/LABEL (up to 31 bytes, NUL-terminated). */
  volname: string;
}

export const SCALAR_TYPES: Readonly<typeof TYPES> = TYPES;

function put(dv: DataView, at: number, type: FieldType, v: number, name: string): void {
  if (!Number.isSafeInteger(v)) throw fail('ufs', 'BAD_VALUE', `superblock ${name} ${v} is not a whole number`);
  switch (type) {
    case 'i8':
      dv.setInt8(at, v);
      return;
    case 'u8':
      dv.setUint8(at, v);
      return;
    case 'i32':
      dv.setInt32(at, v, true);
      return;
    case 'u32':
      dv.setUint32(at, v >>> 0, true);
      return;
    case 'i64':
      dv.setBigInt64(at, BigInt(v), true);
      return;
    case 'u64':
      dv.setBigUint64(at, BigInt(v), true);
  }
}

function get(dv: DataView, at: number, type: FieldType, name: string): number {
  switch (type) {
    case 'i8':
      return dv.getInt8(at);
    case 'u8':
      return dv.getUint8(at);
    case 'i32':
      return dv.getInt32(at, true);
    case 'u32':
      return dv.getUint32(at, true);
    case 'i64':
    case 'u64': {
      const big = type === 'i64' ? dv.getBigInt64(at, true) : dv.getBigUint64(at, true);
      // fs_maxfilesize of a UFS1 file system (and fs_swuid) may exceed 2^53: read as "at least 2^53 - 1".
      if (type === 'u64' && big > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw fail('ufs', 'BAD_VALUE', `superblock ${name} ${big} is beyond 2^53`);
      }
      return Number(big);
    }
  }
}

const encoder = new TextEncoder();

function putString(out: Uint8Array, at: number, text: string, width: number, name: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length >= width || bytes.includes(0)) throw fail('ufs', 'BAD_VALUE', `${name} must be under ${width} bytes without NUL`);
  out.set(bytes, at);
}

function getString(b: Uint8Array, at: number, width: number): string {
  let end = at;
  while (end < at + width && b[end] !== 0) end++;
  return new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(at, end));
}

/** Encode into `length` bytes (fs_sbsize; at least STRUCT_FS_SIZE), the rest zero. */
export function encodeSuperblock(sb: Superblock, length = STRUCT_FS_SIZE): Uint8Array {
  if (length < STRUCT_FS_SIZE) throw fail('ufs', 'BAD_VALUE', `a superblock needs ${STRUCT_FS_SIZE} bytes`);
  const out = new Uint8Array(length);
  const dv = new DataView(out.buffer);
  for (const key of Object.keys(SB_OFFSETS) as (keyof typeof SB_OFFSETS)[]) put(dv, SB_OFFSETS[key], TYPES[key], sb[key], key);
  const old = [sb.oldCstotal.ndir, sb.oldCstotal.nbfree, sb.oldCstotal.nifree, sb.oldCstotal.nffree];
  old.forEach((v, i) => put(dv, SB_OLD_CSTOTAL + 4 * i, 'i32', v, 'fs_old_cstotal'));
  const tot = [sb.cstotal.ndir, sb.cstotal.nbfree, sb.cstotal.nifree, sb.cstotal.nffree, sb.cstotal.numclusters];
  tot.forEach((v, i) => put(dv, SB_CSTOTAL + 8 * i, 'i64', v, 'fs_cstotal'));
  putString(out, SB_FSMNT, sb.fsmnt, MAXMNTLEN, 'fs_fsmnt');
  putString(out, SB_VOLNAME, sb.volname, MAXVOLLEN, 'fs_volname');
  return out;
}

/** Decode struct fs from `bytes` (starting at the superblock). Checks the magic only. */
export function decodeSuperblock(bytes: Uint8Array): Superblock {
  if (bytes.length < STRUCT_FS_SIZE) throw fail('ufs', 'TRUNCATED', `superblock needs ${STRUCT_FS_SIZE} bytes, have ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, STRUCT_FS_SIZE);
  const magic = dv.getInt32(SB_OFFSETS.magic, true);
  if (magic !== FS_UFS2_MAGIC && magic !== FS_UFS1_MAGIC) throw fail('ufs', 'BAD_MAGIC', 'no little-endian UFS2 (or UFS1) magic in the superblock');
  const scalars = {} as SuperblockScalars;
  for (const key of Object.keys(SB_OFFSETS) as (keyof typeof SB_OFFSETS)[]) scalars[key] = get(dv, SB_OFFSETS[key], TYPES[key], key);
  const o = (i: number) => dv.getInt32(SB_OLD_CSTOTAL + 4 * i, true);
  const t = (i: number) => get(dv, SB_CSTOTAL + 8 * i, 'i64', 'fs_cstotal');
  return {
    ...scalars,
    oldCstotal: { ndir: o(0), nbfree: o(1), nifree: o(2), nffree: o(3) },
    cstotal: { ndir: t(0), nbfree: t(1), nifree: t(2), nffree: t(3), numclusters: t(4) },
    fsmnt: getString(bytes, SB_FSMNT, MAXMNTLEN),
    volname: getString(bytes, SB_VOLNAME, MAXVOLLEN),
  };
}

/** The cylinder-group summary area at fs_csaddr: one struct csum per group, 16 bytes each. */
export function encodeCsumArray(groups: readonly Csum[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (groups.length * 16 > length) throw fail('ufs', 'BAD_VALUE', `${groups.length} group summaries do not fit in ${length} bytes`);
  const dv = new DataView(out.buffer);
  groups.forEach((g, i) => {
    [g.ndir, g.nbfree, g.nifree, g.nffree].forEach((v, j) => put(dv, 16 * i + 4 * j, 'i32', v, 'struct csum'));
  });
  return out;
}

export function decodeCsumArray(bytes: Uint8Array, count: number): Csum[] {
  if (count * 16 > bytes.length) throw fail('ufs', 'TRUNCATED', `${count} group summaries need ${count * 16} bytes, have ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: Csum[] = [];
  for (let i = 0; i < count; i++) {
    const at = 16 * i;
    out.push({ ndir: dv.getInt32(at, true), nbfree: dv.getInt32(at + 4, true), nifree: dv.getInt32(at + 8, true), nffree: dv.getInt32(at + 12, true) });
  }
  return out;
}
