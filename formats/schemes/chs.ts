/**
 * Cylinder/head/sector addressing as stored in MBR partition entries.
 *
 * Packing (FreeBSD `sys/sys/disk/mbr.h`, `struct dos_partition`, DPSECT/DPCYL): byte 0 = head,
 * byte 1 = sector (bits 0-5) with cylinder bits 8-9 in bits 6-7, byte 2 = cylinder bits 0-7.
 */
import { fail } from '../common/errors.js';

export interface Geometry {
  heads: number;
  sectorsPerTrack: number;
}

/** 255 heads x 63 sectors: the usual LBA-assist translation (sfdisk, parted, gpart defaults). */
export const DEFAULT_GEOMETRY: Geometry = Object.freeze({ heads: 255, sectorsPerTrack: 63 });

/** Highest cylinder a 10-bit CHS field can hold. */
const MAX_CYLINDER = 1023;
/** Sectors are numbered 1..63 in the 6-bit field. */
const MAX_SECTORS_PER_TRACK = 63;
/** Heads 0..254 (255 heads); DOS cannot use head 255. */
const MAX_HEADS = 255;

function checkGeometry(g: Geometry): void {
  if (
    !Number.isInteger(g.heads) ||
    !Number.isInteger(g.sectorsPerTrack) ||
    g.heads < 1 ||
    g.heads > MAX_HEADS ||
    g.sectorsPerTrack < 1 ||
    g.sectorsPerTrack > MAX_SECTORS_PER_TRACK
  ) {
    throw fail('mbr', 'INVALID_ARGUMENT', `geometry ${g.heads} heads x ${g.sectorsPerTrack} sectors is outside 1-255 x 1-63`);
  }
}

function pack(cylinder: number, head: number, sector: number): [number, number, number] {
  return [head & 0xff, (sector & 0x3f) | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

/**
 * CHS triple for an LBA, packed as in an MBR entry.
 * - heads == 1 or sectorsPerTrack == 1: all 0xff, as FreeBSD mkimg's `mkimg_chs` does for a
 *   degenerate geometry (`usr.bin/mkimg/mkimg.c`); the 1x1 mkimg goldens carry `ff ff ff`.
 * - beyond cylinder 1023: clamped to C=1023, H=heads-1, S=sectorsPerTrack, as util-linux
 *   libfdisk (sfdisk) writes it (255x63 gives `fe ff ff`).
 */
export function encodeChs(lba: number, g: Geometry): [number, number, number] {
  checkGeometry(g);
  if (!Number.isFinite(lba) || lba < 0) {
    throw fail('mbr', 'INVALID_ARGUMENT', `LBA ${lba} is not a sector number`);
  }
  if (g.heads === 1 || g.sectorsPerTrack === 1) return [0xff, 0xff, 0xff];
  const lbaInt = Math.floor(lba);
  const sector = (lbaInt % g.sectorsPerTrack) + 1;
  const track = Math.floor(lbaInt / g.sectorsPerTrack);
  const head = track % g.heads;
  const cylinder = Math.floor(track / g.heads);
  if (cylinder > MAX_CYLINDER) return pack(MAX_CYLINDER, g.heads - 1, g.sectorsPerTrack);
  return pack(cylinder, head, sector);
}

/** Unpack the 3 CHS bytes of an MBR entry. */
export function decodeChs(bytes: [number, number, number] | Uint8Array): {
  cylinder: number;
  head: number;
  sector: number;
} {
  const head = (bytes[0] ?? 0) & 0xff;
  const sectorByte = (bytes[1] ?? 0) & 0xff;
  const cylinderLow = (bytes[2] ?? 0) & 0xff;
  return { cylinder: ((sectorByte & 0xc0) << 2) | cylinderLow, head, sector: sectorByte & 0x3f };
}

/** The LBA a CHS address names under geometry g (sector is 1-based). */
export function chsToLba(chs: { cylinder: number; head: number; sector: number }, g: Geometry): number {
  return (chs.cylinder * g.heads + chs.head) * g.sectorsPerTrack + chs.sector - 1;
}
