/**
 * VHD on-disk structures (Microsoft "Virtual Hard Disk Image Format Specification", October
 * 2006, hereafter "VHD spec"): the hard disk footer (section "Hard Disk Footer Format"), the
 * dynamic disk header ("Dynamic Disk Header Format"), the BAT and sector bitmaps ("Block
 * Allocation Table" / "Data Blocks") and the CHS algorithm (appendix "CHS Calculation").
 * All integers are big-endian. Parsers throw only FormatError (format 'vhd').
 */
import { latin1, putLatin1, safeU64 } from '../common/bytes.js';
import { fail } from '../common/errors.js';

export const VHD_SECTOR = 512;
export const VHD_FOOTER_SIZE = 512;
export const VHD_DYNAMIC_HEADER_SIZE = 1024;
/** The spec's default (and qemu's and Hyper-V's) block size: 2 MiB. */
export const VHD_DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;
/** BAT entry of a block with no data (VHD spec, "Block Allocation Table"). */
export const VHD_BAT_UNUSED = 0xffffffff;
/** "Data Offset ... For fixed disks, this field should be set to 0xFFFFFFFF." (all 8 bytes). */
const NO_OFFSET = 0xffffffffffffffffn;

export const VHD_DISK_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;
const DISK_TYPE_NAMES: Record<number, string> = { 0: 'none', 1: 'reserved', 2: 'fixed', 3: 'dynamic', 4: 'differencing', 5: 'reserved', 6: 'reserved' };
export function diskTypeName(t: number): string {
  return DISK_TYPE_NAMES[t] ?? `unknown (${t})`;
}

/** Largest CHS the footer can hold: 65535 cylinders x 16 heads x 255 sectors (VHD spec appendix). */
export const VHD_MAX_CHS_SECTORS = 65535 * 16 * 255;
/** "The maximum size of a dynamic hard disk is 2040 GB" (VHD spec, "Dynamic Hard Disk Image"). */
export const VHD_MAX_SIZE = 2040 * 1024 * 1024 * 1024;

export interface Chs {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

export interface VhdFooter {
  features: number;
  version: number;
  /** Offset of the dynamic header; null for fixed disks (0xFFFFFFFFFFFFFFFF). */
  dataOffset: number | null;
  /** Seconds since 2000-01-01 00:00:00 UTC. */
  timestamp: number;
  creatorApp: string;
  creatorVersion: number;
  creatorHostOs: string;
  originalSize: number;
  currentSize: number;
  geometry: Chs;
  diskType: number;
  uniqueId: Uint8Array;
  savedState: number;
}

export interface VhdDynamicHeader {
  tableOffset: number;
  headerVersion: number;
  maxTableEntries: number;
  blockSize: number;
  /** Non-zero only for differencing disks. */
  parentUniqueId: Uint8Array;
}

/** VHD spec "Checksum": one's complement of the sum of all bytes, the checksum field excluded. */
export function vhdChecksum(bytes: Uint8Array, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += bytes[i];
  return ~sum >>> 0;
}

/**
 * VHD spec appendix "CHS Calculation", verbatim: the geometry for a sector count (capped at
 * 65535 x 16 x 255). The product may be smaller than the count asked for.
 */
export function vhdChsFor(totalSectors: number): Chs {
  const total = Math.min(totalSectors, VHD_MAX_CHS_SECTORS);
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

export function chsSectors(g: Chs): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

/**
 * The size and geometry a writer records for a disk of `bytes`, as qemu-img's vpc driver does
 * (QEMU 7.2 block/vpc.c, vpc_co_create):
 * - default: round the sector count up until the spec's CHS algorithm covers it, and record
 *   the CHS product as the size, so CHS readers (Virtual PC, qemu) and current_size readers
 *   (Hyper-V, 7-Zip) agree. When the geometry reaches 65535x16x255 the exact size is kept.
 * - forceSize: keep the exact size (rounded up to a 512-byte sector) and record the maximum
 *   geometry 65535x16x255, which makes qemu (any creator application) read current_size.
 */
export function vhdSizeFor(bytes: number, forceSize: boolean): { size: number; geometry: Chs } {
  const sectors = Math.ceil(bytes / VHD_SECTOR);
  const max: Chs = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };
  let geometry: Chs = { cylinders: 0, heads: 0, sectorsPerTrack: 0 };
  if (forceSize) geometry = max;
  else {
    const total = Math.min(VHD_MAX_CHS_SECTORS, sectors);
    // Each step adds one sector; the geometry jumps far past the count within a few hundred steps.
    for (let i = 0; total > chsSectors(geometry) && i < 1 << 20; i++) geometry = vhdChsFor(total + i);
  }
  const size = chsSectors(geometry) === VHD_MAX_CHS_SECTORS ? sectors * VHD_SECTOR : chsSectors(geometry) * VHD_SECTOR;
  return { size, geometry };
}

/** A big-endian u64, clamped to Number.MAX_SAFE_INTEGER. */
function u64(dv: DataView, at: number): number {
  return safeU64(dv, at, false) ?? Number.MAX_SAFE_INTEGER;
}

/** Hard disk footer (VHD spec "Hard Disk Footer Format"), 512 bytes with its checksum. */
export function encodeVhdFooter(f: VhdFooter): Uint8Array {
  const out = new Uint8Array(VHD_FOOTER_SIZE);
  const dv = new DataView(out.buffer);
  putLatin1(out, 0, 'conectix', 8);
  dv.setUint32(8, f.features);
  dv.setUint32(12, f.version);
  dv.setBigUint64(16, f.dataOffset === null ? NO_OFFSET : BigInt(f.dataOffset));
  dv.setUint32(24, f.timestamp >>> 0);
  putLatin1(out, 28, f.creatorApp, 4);
  dv.setUint32(32, f.creatorVersion);
  putLatin1(out, 36, f.creatorHostOs, 4);
  dv.setBigUint64(40, BigInt(f.originalSize));
  dv.setBigUint64(48, BigInt(f.currentSize));
  dv.setUint16(56, f.geometry.cylinders);
  out[58] = f.geometry.heads;
  out[59] = f.geometry.sectorsPerTrack;
  dv.setUint32(60, f.diskType);
  out.set(f.uniqueId.subarray(0, 16), 68);
  out[84] = f.savedState;
  dv.setUint32(64, vhdChecksum(out, 64));
  return out;
}

/** True when `bytes` starts with the footer cookie "conectix". */
export function hasFooterCookie(bytes: Uint8Array, at = 0): boolean {
  return bytes.length >= at + 8 && latin1(bytes, at, 8) === 'conectix';
}

/**
 * Parse a footer (512 bytes, or the 511 bytes of pre-Virtual-PC-2004 images, zero-padded).
 * Checks cookie and checksum; `where` names the copy in messages.
 */
export function decodeVhdFooter(bytes: Uint8Array, where: string): VhdFooter {
  if (bytes.length < 511) throw fail('vhd', 'TRUNCATED', `VHD footer ${where} is ${bytes.length} bytes, not 512`);
  const b = new Uint8Array(VHD_FOOTER_SIZE);
  b.set(bytes.subarray(0, VHD_FOOTER_SIZE));
  if (!hasFooterCookie(b)) throw fail('vhd', 'BAD_MAGIC', `no VHD footer cookie "conectix" ${where}`);
  const dv = new DataView(b.buffer);
  const stored = dv.getUint32(64);
  const computed = vhdChecksum(b, 64);
  if (stored !== computed) {
    throw fail('vhd', 'BAD_CHECKSUM', `VHD footer ${where}: checksum 0x${stored.toString(16)} should be 0x${computed.toString(16)}`);
  }
  const offset = dv.getBigUint64(16);
  return {
    features: dv.getUint32(8),
    version: dv.getUint32(12),
    dataOffset: offset === NO_OFFSET ? null : u64(dv, 16),
    timestamp: dv.getUint32(24),
    creatorApp: latin1(b, 28, 4),
    creatorVersion: dv.getUint32(32),
    creatorHostOs: latin1(b, 36, 4),
    originalSize: u64(dv, 40),
    currentSize: u64(dv, 48),
    geometry: { cylinders: dv.getUint16(56), heads: b[58], sectorsPerTrack: b[59] },
    diskType: dv.getUint32(60),
    uniqueId: b.slice(68, 84),
    savedState: b[84],
  };
}

/** Dynamic disk header (VHD spec "Dynamic Disk Header Format"), 1024 bytes. */
export function encodeVhdDynamicHeader(h: { tableOffset: number; maxTableEntries: number; blockSize: number }): Uint8Array {
  const out = new Uint8Array(VHD_DYNAMIC_HEADER_SIZE);
  const dv = new DataView(out.buffer);
  putLatin1(out, 0, 'cxsparse', 8);
  dv.setBigUint64(8, NO_OFFSET); // Data Offset: "currently unused ... set to 0xFFFFFFFF"
  dv.setBigUint64(16, BigInt(h.tableOffset));
  dv.setUint32(24, 0x00010000); // Header Version
  dv.setUint32(28, h.maxTableEntries);
  dv.setUint32(32, h.blockSize);
  dv.setUint32(36, vhdChecksum(out, 36));
  return out;
}

export function decodeVhdDynamicHeader(bytes: Uint8Array): VhdDynamicHeader {
  if (bytes.length < VHD_DYNAMIC_HEADER_SIZE) throw fail('vhd', 'TRUNCATED', 'VHD dynamic header runs past the end of the file');
  if (latin1(bytes, 0, 8) !== 'cxsparse') throw fail('vhd', 'BAD_MAGIC', 'no VHD dynamic header cookie "cxsparse"');
  const b = bytes.subarray(0, VHD_DYNAMIC_HEADER_SIZE);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const stored = dv.getUint32(36);
  const computed = vhdChecksum(b, 36);
  if (stored !== computed) {
    throw fail('vhd', 'BAD_CHECKSUM', `VHD dynamic header checksum 0x${stored.toString(16)} should be 0x${computed.toString(16)}`);
  }
  return {
    tableOffset: u64(dv, 16),
    headerVersion: dv.getUint32(24),
    maxTableEntries: dv.getUint32(28),
    blockSize: dv.getUint32(32),
    parentUniqueId: b.slice(40, 56),
  };
}

/** Bytes of a block's sector bitmap: one bit per sector, padded to a sector (VHD spec "Data Blocks"). */
export function vhdBitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / VHD_SECTOR / 8 / VHD_SECTOR) * VHD_SECTOR;
}

/**
 * The footer's time stamp for `unixSeconds` (seconds since 1970): seconds since 2000-01-01
 * 00:00:00 UTC, clamped to the field (a time before 2000 is 0). The caller chooses the time
 * (diskmint: SOURCE_DATE_EPOCH, else 0), so writes stay deterministic.
 */
export function vhdTimestamp(unixSeconds: number): number {
  return Math.max(0, Math.min(0xffffffff, unixSeconds - 946684800));
}

/**
 * The BAT's first `entries` entries (VHD spec "Block Allocation Table": big-endian u32 sector
 * numbers of each block's sector bitmap, VHD_BAT_UNUSED for a block with no data).
 */
export function decodeVhdBat(bytes: Uint8Array, entries: number): Uint32Array {
  if (bytes.length < entries * 4) throw fail('vhd', 'TRUNCATED', `VHD BAT of ${entries} entries needs ${entries * 4} bytes, has ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const bat = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) bat[i] = dv.getUint32(i * 4);
  return bat;
}

/** Store BAT entry `index` (a block's sector number) into the table's bytes, big-endian. */
export function putVhdBatEntry(bytes: Uint8Array, index: number, sector: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.length).setUint32(index * 4, sector);
}

/** VHD spec "Sector Bitmap": bit 7 of byte 0 is the block's first sector; set = the sector holds data. */
export function vhdSectorPresent(bitmap: Uint8Array, sector: number): boolean {
  return ((bitmap[sector >> 3] ?? 0) & (0x80 >> (sector & 7))) !== 0;
}

/**
 * Mark sectors [from, to) present in a block's bitmap; returns the indexes of the bitmap's
 * 512-byte sectors that changed (ascending), the ones an editor writes back.
 */
export function markVhdSectorsPresent(bitmap: Uint8Array, from: number, to: number): number[] {
  const changed: number[] = [];
  for (let s = from; s < to; s++) {
    const bit = 0x80 >> (s & 7);
    if (bitmap[s >> 3] & bit) continue;
    bitmap[s >> 3] |= bit;
    const at = Math.floor((s >> 3) / VHD_SECTOR);
    if (changed[changed.length - 1] !== at) changed.push(at);
  }
  return changed;
}
