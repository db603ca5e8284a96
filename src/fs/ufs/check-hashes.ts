/**
 * Metadata check-hashes (FreeBSD 12+, sys/ufs/ffs/fs.h fs_metackhash): when the superblock says
 * CK_SUPERBLOCK, CK_CYLGRP or CK_INODE, the superblock's fs_ckhash, each group's cg_ckhash and
 * each inode's di_ckhash must be calculate_crc32c(~0, bytes with the hash field zeroed), which
 * is the bitwise complement of the standard CRC-32C (sys/libkern/crc32.c keeps no final xor).
 */
import { crc32c } from '../../../formats/common/crc32c.js';
import { cgTod, type UfsGeometry } from './read-geometry.js';
import type { UfsVolume } from './read-volume.js';
import type { Report } from './check-report.js';

/** fs.h CK_SUPERBLOCK, CK_CYLGRP, CK_INODE. */
export const CK_SUPERBLOCK = 0x1;
export const CK_CYLGRP = 0x2;
export const CK_INODE = 0x4;
/** Where each hash lives: struct fs fs_ckhash, struct cg cg_ckhash, ufs2_dinode di_ckhash. */
const FS_CKHASH_AT = 1304;
const CG_CKHASH_AT = 132;
const DI_CKHASH_AT = 244;

/** FreeBSD's calculate_crc32c(~0, bytes) with the 4 bytes at `field` taken as zero. */
export function ffsCheckHash(bytes: Uint8Array, field: number): number {
  const copy = bytes.slice();
  copy.fill(0, field, field + 4);
  return ~crc32c(copy) >>> 0;
}

const stored = (bytes: Uint8Array, at: number) => new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(at, true);

/** The superblock's and every group's check-hash, when the file system keeps them. */
export async function checkMetadataHashes(v: UfsVolume, report: Report): Promise<void> {
  const { g, sb } = v;
  if (sb.metackhash & CK_SUPERBLOCK) {
    const bytes = await v.readExact(g.superblockOffset, sb.sbsize);
    const want = ffsCheckHash(bytes, FS_CKHASH_AT);
    if (stored(bytes, FS_CKHASH_AT) !== want)
      report('ufs.checksum', 'error', `the superblock's check-hash is ${hex(stored(bytes, FS_CKHASH_AT))}; its bytes give ${hex(want)}`);
  }
  if (!(sb.metackhash & CK_CYLGRP)) return;
  for (let c = 0; c < g.ncg; c++) {
    const bytes = await v.readExact(cgTod(g, c) * g.fragSize, g.cgsize);
    const want = ffsCheckHash(bytes, CG_CKHASH_AT);
    if (stored(bytes, CG_CKHASH_AT) !== want)
      report('ufs.checksum', 'error', `cylinder group ${c}'s check-hash is ${hex(stored(bytes, CG_CKHASH_AT))}; its bytes give ${hex(want)}`);
  }
}

/** An allocated UFS2 inode's di_ckhash, when the file system keeps inode check-hashes. */
export function checkInodeHash(g: UfsGeometry, metackhash: number, ino: number, raw: Uint8Array, report: Report): void {
  if (g.version !== 2 || !(metackhash & CK_INODE)) return;
  const want = ffsCheckHash(raw, DI_CKHASH_AT);
  if (stored(raw, DI_CKHASH_AT) !== want)
    report('ufs.checksum', 'error', `inode ${ino}'s check-hash is ${hex(stored(raw, DI_CKHASH_AT))}; its bytes give ${hex(want)}`);
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
