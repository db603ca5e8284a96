/**
 * BSD disklabel codec (FreeBSD `sys/sys/disk/bsd.h`, `struct disklabel`), little-endian.
 *
 * The label lives at LABELSECTOR 1, LABELOFFSET 0: byte `sectorSize` of the slice, inside the
 * 8 KiB boot area (BSD_BOOTBLOCK_SIZE). The writer follows FreeBSD mkimg `usr.bin/mkimg/bsd.c`.
 */
import { DEFAULT_GEOMETRY, type Geometry } from './chs.js';
import { latin1Z, putU16le, putU32le, u16le, u32le } from '../common/bytes.js';
import { fail } from '../common/errors.js';

/** BSD_MAGIC, at d_magic (offset 0) and d_magic2 (offset 132). */
export const BSD_MAGIC = 0x82564557;
/** BSD_BOOTBLOCK_SIZE: the boot area at the start of the slice, label included. */
export const BSD_BOOT_AREA = 8192;
/** BSD_NPARTS_MIN: d_partitions[] in struct disklabel; mkimg writes at least this many. */
export const BSD_NPARTS_MIN = 8;
/** BSD_NPARTS_MAX. */
export const BSD_NPARTS_MAX = 20;
/** BSD_PART_RAW: 'c', the whole slice. */
export const BSD_RAW_PART = 2;

// Field offsets in struct disklabel (bsd.h; CTASSERT size 148 + 8 * 16).
const OFF_MAGIC = 0;
const OFF_TYPE = 4; // u16 d_type
const OFF_TYPENAME = 8; // char[16]
const OFF_PACKNAME = 24; // char[16]
const OFF_SECSIZE = 40;
const OFF_NSECTORS = 44;
const OFF_NTRACKS = 48;
const OFF_NCYLINDERS = 52;
const OFF_SECPERCYL = 56;
const OFF_SECPERUNIT = 60;
const OFF_RPM = 72; // u16
const OFF_MAGIC2 = 132;
const OFF_CHECKSUM = 136; // u16
const OFF_NPARTITIONS = 138; // u16
const OFF_BBSIZE = 140;
const OFF_SBSIZE = 144;
/** d_partitions[]: 16 bytes each (p_size, p_offset, p_fsize u32; p_fstype, p_frag u8; p_cpg u16). */
const OFF_PARTITIONS = 148;
const PARTITION_BYTES = 16;
/** mkimg bsd.c: le16enc(&d->d_rpm, 3600). */
const MKIMG_RPM = 3600;
const U32_MAX = 0xffffffff;

export interface BsdPartition {
  letter: string;
  offset: number;
  size: number;
  fstype: number;
  fsize: number;
  frag: number;
  cpg: number;
}

export interface BsdLabel {
  secsize: number;
  nsectors: number;
  ntracks: number;
  ncylinders: number;
  secpercyl: number;
  secperunit: number;
  npartitions: number;
  bbsize: number;
  sbsize: number;
  checksum: number;
  checksumValid: boolean;
  /** Non-empty slots (size > 0 or fstype != 0) in slot order, lettered from 'a'. */
  partitions: BsdPartition[];
  type: number;
  rpm: number;
  typename: string;
  packname: string;
}

/** fstypenames[] from FreeBSD `sys/sys/disklabel.h` (what bsdlabel prints); '?' slots left out. */
const FSTYPE_NAMES: ReadonlyArray<string | undefined> = [
  'unused',
  'swap',
  'Version 6',
  'Version 7',
  'System V',
  '4.1BSD',
  'Eighth Edition',
  '4.2BSD',
  'MSDOS',
  '4.4LFS',
  'unknown',
  'HPFS',
  'ISO9660',
  'boot',
  'vinum',
  'raid',
  'Filecore',
  'EXT2FS',
  'NTFS',
  undefined,
  'ccd',
  'jfs',
  'HAMMER',
  'HAMMER2',
  'UDF',
  undefined,
  'EFS',
  'ZFS',
  undefined,
  undefined,
  'nandfs',
];

/** gpart/mkimg aliases (`usr.bin/mkimg/bsd.c` bsd_aliases, `sys/geom/part/g_part_bsd.c`). */
const FSTYPE_ALIASES: Readonly<Record<string, number>> = {
  'freebsd-swap': 1, // FS_SWAP
  'freebsd-ufs': 7, // FS_BSDFFS
  'freebsd-vinum': 14, // FS_VINUM
  'freebsd-zfs': 27, // FS_ZFS
  'freebsd-nandfs': 30, // FS_NANDFS
};

function buildFstypes(): Record<string, number> {
  const out: Record<string, number> = {};
  FSTYPE_NAMES.forEach((name, t) => {
    if (name !== undefined) out[name] = t;
  });
  return { ...out, ...FSTYPE_ALIASES };
}

/** fstype names (as bsdlabel prints them, plus the freebsd-* aliases) -> p_fstype. */
export const BSD_FSTYPES: Readonly<Record<string, number>> = Object.freeze(buildFstypes());

/** Name bsdlabel prints for an fstype, undefined when it has none. */
export function bsdFstypeName(t: number): string | undefined {
  return Number.isInteger(t) && t >= 0 ? FSTYPE_NAMES[t] : undefined;
}

/** fstype for a name (case-insensitive) or a number 0-255. */
export function bsdFstypeByte(nameOrRaw: string | number): number | undefined {
  if (typeof nameOrRaw === 'number') return Number.isInteger(nameOrRaw) && nameOrRaw >= 0 && nameOrRaw <= 0xff ? nameOrRaw : undefined;
  const text = nameOrRaw.trim().toLowerCase();
  for (const [name, t] of Object.entries(BSD_FSTYPES)) if (name.toLowerCase() === text) return t;
  return /^[0-9]{1,3}$/.test(text) && Number(text) <= 0xff ? Number(text) : undefined;
}

/** dkcksum(): XOR of the u16 words from the label start to the end of d_partitions[npartitions]. */
function labelChecksum(label: Uint8Array, npartitions: number): number {
  const end = OFF_PARTITIONS + npartitions * PARTITION_BYTES;
  let sum = 0;
  for (let off = 0; off < end; off += 2) if (off !== OFF_CHECKSUM) sum ^= u16le(label, off);
  return sum;
}

/** Letter of partition slot i ('a' + i). */
export function bsdPartitionLetter(slot: number): string {
  return String.fromCharCode(0x61 + slot);
}

/**
 * Decode a label from `bytes`, which start at the label (byte sectorSize of the slice).
 * Throws FormatError TRUNCATED, BAD_MAGIC (d_magic or d_magic2 missing) or TOO_LARGE
 * (d_npartitions > BSD_NPARTS_MAX), nothing else.
 */
export function decodeBsdLabel(bytes: Uint8Array): BsdLabel {
  if (bytes.length < OFF_PARTITIONS) {
    throw fail('bsd', 'TRUNCATED', `BSD label needs at least ${OFF_PARTITIONS} bytes, got ${bytes.length}`);
  }
  if (u32le(bytes, OFF_MAGIC) !== BSD_MAGIC || u32le(bytes, OFF_MAGIC2) !== BSD_MAGIC) {
    throw fail('bsd', 'BAD_MAGIC', 'BSD label magic 0x82564557 missing at offset 0 or 132');
  }
  const npartitions = u16le(bytes, OFF_NPARTITIONS);
  if (npartitions > BSD_NPARTS_MAX) {
    throw fail('bsd', 'TOO_LARGE', `BSD label claims ${npartitions} partitions, at most ${BSD_NPARTS_MAX} allowed`);
  }
  const end = OFF_PARTITIONS + npartitions * PARTITION_BYTES;
  if (bytes.length < end) {
    throw fail('bsd', 'TRUNCATED', `BSD label with ${npartitions} partitions needs ${end} bytes, got ${bytes.length}`);
  }
  const partitions: BsdPartition[] = [];
  for (let slot = 0; slot < npartitions; slot++) {
    const off = OFF_PARTITIONS + slot * PARTITION_BYTES;
    const p: BsdPartition = {
      letter: bsdPartitionLetter(slot),
      size: u32le(bytes, off),
      offset: u32le(bytes, off + 4),
      fsize: u32le(bytes, off + 8),
      fstype: bytes[off + 12],
      frag: bytes[off + 13],
      cpg: u16le(bytes, off + 14),
    };
    if (p.size > 0 || p.fstype !== 0) partitions.push(p);
  }
  const checksum = u16le(bytes, OFF_CHECKSUM);
  return {
    secsize: u32le(bytes, OFF_SECSIZE),
    nsectors: u32le(bytes, OFF_NSECTORS),
    ntracks: u32le(bytes, OFF_NTRACKS),
    ncylinders: u32le(bytes, OFF_NCYLINDERS),
    secpercyl: u32le(bytes, OFF_SECPERCYL),
    secperunit: u32le(bytes, OFF_SECPERUNIT),
    npartitions,
    bbsize: u32le(bytes, OFF_BBSIZE),
    sbsize: u32le(bytes, OFF_SBSIZE),
    checksum,
    checksumValid: labelChecksum(bytes, npartitions) === checksum,
    partitions,
    type: u16le(bytes, OFF_TYPE),
    rpm: u16le(bytes, OFF_RPM),
    typename: latin1Z(bytes, OFF_TYPENAME, 16),
    packname: latin1Z(bytes, OFF_PACKNAME, 16),
  };
}

export interface BsdLabelPartitionSpec {
  letter: string;
  offset: number;
  size: number;
  fstype: number;
  fsize?: number;
  frag?: number;
  cpg?: number;
}

export interface BsdLabelSpec {
  sectorSize: number;
  totalSectors: number;
  geometry?: Geometry;
  npartitions?: number;
  bootcode?: Uint8Array;
  partitions: ReadonlyArray<BsdLabelPartitionSpec>;
  /**
   * d_ncylinders override (default ceil(totalSectors / secpercyl)). mkimg computes it from the
   * partition layout before an output format (vhdf) grows d_secperunit, so some goldens carry
   * fewer cylinders than d_secperunit implies.
   */
  ncylinders?: number;
}

function checkUint(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw fail('bsd', 'INVALID_ARGUMENT', `${what} ${value} is outside 0-${max}`);
}

/** Size of the boot area for a sector size: 8 KiB, or two sectors when that is larger. */
export function bsdBootAreaBytes(sectorSize: number): number {
  return Math.max(BSD_BOOT_AREA, 2 * sectorSize);
}

/**
 * The whole boot area with the label at byte sectorSize, as FreeBSD mkimg bsd.c writes it:
 * bootcode copied first, the label's bytes (struct disklabel, at least 8 partition slots)
 * zeroed, then d_magic/d_magic2, d_secsize, d_nsectors, d_ntracks, d_ncylinders,
 * d_secpercyl, d_secperunit, d_rpm 3600, d_npartitions, d_bbsize 8192 and the table, with
 * 'c' = whole slice at offset 0, fstype unused. d_type, d_typename, d_interleave and d_sbsize
 * stay 0 as in the mkimg goldens. npartitions defaults to max(8, highest slot + 1), at most 20.
 */
export function encodeBsdLabel(spec: BsdLabelSpec): Uint8Array {
  const { sectorSize, totalSectors } = spec;
  if (!Number.isInteger(sectorSize) || sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0) {
    throw fail('bsd', 'INVALID_ARGUMENT', `sector size ${sectorSize} is not a power of two >= 512`);
  }
  checkUint(totalSectors, U32_MAX, 'total sectors');
  const g = spec.geometry ?? DEFAULT_GEOMETRY;
  checkUint(g.heads, U32_MAX, 'heads');
  checkUint(g.sectorsPerTrack, U32_MAX, 'sectors per track');
  const secpercyl = g.heads * g.sectorsPerTrack;
  if (secpercyl < 1 || secpercyl > U32_MAX) throw fail('bsd', 'INVALID_ARGUMENT', `geometry ${g.heads}x${g.sectorsPerTrack} is not usable`);
  const slots = new Map<number, BsdLabelPartitionSpec>();
  for (const p of spec.partitions) {
    const slot = /^[a-t]$/.test(p.letter) ? p.letter.charCodeAt(0) - 0x61 : -1;
    if (slot < 0 || slot === BSD_RAW_PART) throw fail('bsd', 'INVALID_ARGUMENT', `partition letter '${p.letter}' is not one of a-b, d-t`);
    if (slots.has(slot)) throw fail('bsd', 'INVALID_ARGUMENT', `partition '${p.letter}' given twice`);
    checkUint(p.offset, U32_MAX, `partition ${p.letter} offset`);
    checkUint(p.size, U32_MAX, `partition ${p.letter} size`);
    checkUint(p.fstype, 0xff, `partition ${p.letter} fstype`);
    checkUint(p.fsize ?? 0, U32_MAX, `partition ${p.letter} fsize`);
    checkUint(p.frag ?? 0, 0xff, `partition ${p.letter} frag`);
    checkUint(p.cpg ?? 0, 0xffff, `partition ${p.letter} cpg`);
    slots.set(slot, p);
  }
  const highest = Math.max(BSD_RAW_PART, ...slots.keys());
  const npartitions = spec.npartitions ?? Math.max(BSD_NPARTS_MIN, highest + 1);
  if (!Number.isInteger(npartitions) || npartitions <= highest || npartitions > BSD_NPARTS_MAX) {
    throw fail('bsd', 'INVALID_ARGUMENT', `npartitions ${npartitions} must be ${highest + 1}-${BSD_NPARTS_MAX}`);
  }
  const ncylinders = spec.ncylinders ?? Math.ceil(totalSectors / secpercyl);
  checkUint(ncylinders, U32_MAX, 'cylinders');

  const area = new Uint8Array(bsdBootAreaBytes(sectorSize));
  if (spec.bootcode) {
    if (spec.bootcode.length > area.length)
      throw fail('bsd', 'INVALID_ARGUMENT', `boot code of ${spec.bootcode.length} bytes exceeds the ${area.length}-byte boot area`);
    area.set(spec.bootcode, 0);
  }
  const labelBytes = OFF_PARTITIONS + Math.max(BSD_NPARTS_MIN, npartitions) * PARTITION_BYTES;
  const label = area.subarray(sectorSize, sectorSize + labelBytes);
  label.fill(0);
  putU32le(label, OFF_MAGIC, BSD_MAGIC);
  putU32le(label, OFF_SECSIZE, sectorSize);
  putU32le(label, OFF_NSECTORS, g.sectorsPerTrack);
  putU32le(label, OFF_NTRACKS, g.heads);
  putU32le(label, OFF_NCYLINDERS, ncylinders);
  putU32le(label, OFF_SECPERCYL, secpercyl);
  putU32le(label, OFF_SECPERUNIT, totalSectors);
  putU16le(label, OFF_RPM, MKIMG_RPM);
  putU32le(label, OFF_MAGIC2, BSD_MAGIC);
  putU16le(label, OFF_NPARTITIONS, npartitions);
  putU32le(label, OFF_BBSIZE, BSD_BOOT_AREA);
  const rawOff = OFF_PARTITIONS + BSD_RAW_PART * PARTITION_BYTES;
  putU32le(label, rawOff, totalSectors);
  for (const [slot, p] of slots) {
    const off = OFF_PARTITIONS + slot * PARTITION_BYTES;
    putU32le(label, off, p.size);
    putU32le(label, off + 4, p.offset);
    putU32le(label, off + 8, p.fsize ?? 0);
    label[off + 12] = p.fstype;
    label[off + 13] = p.frag ?? 0;
    putU16le(label, off + 14, p.cpg ?? 0);
  }
  putU16le(label, OFF_CHECKSUM, labelChecksum(label, npartitions));
  return area;
}
