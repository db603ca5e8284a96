/**
 * What a slot holds: UFS (formats/fs/ufs.ts), FAT (a minimal boot-sector check), ZFS (a vdev
 * label with uberblocks), all zeros, or unknown. Reads at most the first 512 KiB.
 */
import type { DiskReader } from '../model/disk-reader.js';
import { FormatError } from '../../formats/common/errors.js';
import { findUfsSuperblock, UFS_PROBE_BYTES } from '../../formats/fs/ufs.js';

export type FilesystemKind = 'ufs1' | 'ufs2' | 'fat12' | 'fat16' | 'fat32' | 'zfs' | 'empty' | 'unknown';

export interface DetectedFilesystem {
  kind: FilesystemKind;
  label?: string;
  details?: Record<string, string | number>;
}

const KiB = 1024;
/** OpenZFS include/sys/vdev_impl.h: VDEV_PAD_SIZE 8K, VDEV_PHYS_SIZE 112K, label 256K. */
const ZFS_LABEL_SIZE = 256 * KiB;
const ZFS_NVLIST_OFFSET = 16 * KiB;
const ZFS_NVLIST_SIZE = 112 * KiB;
const ZFS_UBERBLOCK_RING_OFFSET = 128 * KiB;
const ZFS_UBERBLOCK_RING_SIZE = 128 * KiB;
/** Uberblock slots are 1 << max(ashift, UBERBLOCK_SHIFT = 10) bytes: scanning every 1 KiB covers all. */
const ZFS_UBERBLOCK_MIN_SLOT = 1 * KiB;
/** include/sys/uberblock_impl.h UBERBLOCK_MAGIC ("oo-ba-bloc!"). */
const ZFS_UBERBLOCK_MAGIC = 0x00bab10cn;
const EMPTY_PROBE = 128 * KiB;
const HEAD_BYTES = Math.max(UFS_PROBE_BYTES, 2 * ZFS_LABEL_SIZE);

/** Never throws on content; I/O errors from the reader propagate. */
export async function detectFilesystem(disk: DiskReader): Promise<DetectedFilesystem> {
  const head = await disk.read(0, Math.max(0, Math.min(disk.size, HEAD_BYTES)));
  let ufsRejected: string | undefined;
  try {
    const sb = findUfsSuperblock(head);
    const details: Record<string, string | number> = {
      endian: sb.endian,
      superblockOffset: sb.superblockOffset,
      blockSize: sb.blockSize,
      fragSize: sb.fragSize,
      sizeFrags: sb.sizeFrags,
      sizeBytes: sb.sizeFrags * sb.fragSize,
      id: sb.id,
      cylinderGroups: sb.cylinderGroups,
    };
    return { kind: sb.version === 1 ? 'ufs1' : 'ufs2', ...(sb.volname ? { label: sb.volname } : {}), details };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    if (e.code !== 'BAD_MAGIC' && e.code !== 'TRUNCATED') ufsRejected = e.message;
  }
  const zfs = detectZfs(head);
  if (zfs) return zfs;
  const fat = detectFat(head);
  if (fat) return fat;
  const probe = head.subarray(0, Math.min(head.length, EMPTY_PROBE));
  if (probe.every((b) => b === 0)) return { kind: 'empty', details: { zeroBytes: probe.length } };
  return ufsRejected ? { kind: 'unknown', details: { ufsRejected } } : { kind: 'unknown' };
}

/**
 * FAT boot sector per Microsoft's FAT specification (fatgen103): 0x55AA at 510, a jump
 * instruction, a sane BPB, and the FAT type from the cluster count (< 4085 FAT12,
 * < 65525 FAT16, else FAT32).
 */
export function detectFat(head: Uint8Array): DetectedFilesystem | undefined {
  if (head.length < 512) return undefined;
  if (head[510] !== 0x55 || head[511] !== 0xaa) return undefined;
  if (!(head[0] === 0xeb || head[0] === 0xe9)) return undefined;
  const dv = new DataView(head.buffer, head.byteOffset, 512);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const bytesPerSector = u16(11);
  const sectorsPerCluster = head[13];
  const reserved = u16(14);
  const fats = head[16];
  const rootEntries = u16(17);
  const media = head[21];
  const fatSize = u16(22) || u32(36);
  const totalSectors = u16(19) || u32(32);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) return undefined;
  if (sectorsPerCluster === 0 || (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0) return undefined;
  if (reserved === 0 || fats === 0 || fatSize === 0 || totalSectors === 0) return undefined;
  if (!(media === 0xf0 || media >= 0xf8)) return undefined;
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSectors = totalSectors - (reserved + fats * fatSize + rootDirSectors);
  if (dataSectors <= 0) return undefined;
  const clusters = Math.floor(dataSectors / sectorsPerCluster);
  if (clusters < 1) return undefined;
  const kind: FilesystemKind = clusters < 4085 ? 'fat12' : clusters < 65525 ? 'fat16' : 'fat32';
  // FAT32 keeps its root directory in clusters and needs BPB_FATSz16 = 0.
  if (kind === 'fat32' && (rootEntries !== 0 || u16(22) !== 0)) return undefined;
  const ext = kind === 'fat32' ? 64 : 36; // BS_DrvNum
  const details: Record<string, string | number> = {
    bytesPerSector,
    sectorsPerCluster,
    reservedSectors: reserved,
    fats,
    totalSectors,
    clusters,
    oem: ascii(head, 3, 8),
  };
  let label: string | undefined;
  if (head[ext + 2] === 0x29) {
    details.volumeId = u32(ext + 3)
      .toString(16)
      .padStart(8, '0');
    const lab = ascii(head, ext + 7, 11);
    if (lab && lab !== 'NO NAME') label = lab;
  }
  return { kind, ...(label ? { label } : {}), details };
}

function ascii(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = off; i < off + len && i < b.length; i++) s += b[i] >= 0x20 && b[i] < 0x7f ? String.fromCharCode(b[i]) : '';
  return s.trimEnd();
}

/**
 * ZFS: vdev labels 0 and 1 sit at 0 and 256 KiB (OpenZFS module/zfs/vdev_label.c); each has
 * its uberblock ring at 128 KiB. Any slot whose first u64 is UBERBLOCK_MAGIC in either byte
 * order makes it ZFS. The pool name comes from the label's XDR nvlist when it parses.
 */
export function detectZfs(head: Uint8Array): DetectedFilesystem | undefined {
  for (const base of [0, ZFS_LABEL_SIZE]) {
    const ringStart = base + ZFS_UBERBLOCK_RING_OFFSET;
    if (ringStart + 8 > head.length) break;
    const dv = new DataView(head.buffer, head.byteOffset, head.length);
    let count = 0;
    let endian: 'little' | 'big' | undefined;
    for (let o = ringStart; o + 8 <= Math.min(head.length, ringStart + ZFS_UBERBLOCK_RING_SIZE); o += ZFS_UBERBLOCK_MIN_SLOT) {
      if (dv.getBigUint64(o, true) === ZFS_UBERBLOCK_MAGIC) {
        count++;
        endian ??= 'little';
      } else if (dv.getBigUint64(o, false) === ZFS_UBERBLOCK_MAGIC) {
        count++;
        endian ??= 'big';
      }
    }
    if (count === 0) continue;
    const details: Record<string, string | number> = { vdevLabel: base / ZFS_LABEL_SIZE, uberblocks: count, endian: endian ?? 'little' };
    const nv = head.subarray(base + ZFS_NVLIST_OFFSET, Math.min(head.length, base + ZFS_NVLIST_OFFSET + ZFS_NVLIST_SIZE));
    const strings = xdrNvlistStrings(nv);
    const name = strings.get('name');
    if (strings.has('hostname')) details.hostname = strings.get('hostname') as string;
    return { kind: 'zfs', ...(name ? { label: name } : {}), details };
  }
  return undefined;
}

/**
 * Top-level string pairs of an XDR-encoded nvlist (OpenZFS module/nvpair/nvpair.c):
 * 4-byte header (encoding 1 = XDR), int32 version, u32 flags, then pairs of
 * {encoded size, decoded size, name (u32 length + bytes padded to 4), type, nelem, value};
 * two zero words end the list. Only DATA_TYPE_STRING (9) values are collected; everything
 * is bounds-checked and anything odd ends the walk.
 */
function xdrNvlistStrings(b: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  if (b.length < 12 || b[0] !== 1) return out;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const text = (o: number, n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(b[o + i]);
    return s;
  };
  let p = 12;
  for (let guard = 0; guard < 4096 && p + 8 <= b.length; guard++) {
    const encSize = dv.getUint32(p, false);
    if (encSize === 0) break;
    if (encSize < 20 || encSize % 4 !== 0 || p + encSize > b.length) break;
    const nameLen = dv.getUint32(p + 8, false);
    const namePad = (nameLen + 3) & ~3;
    const typeAt = p + 12 + namePad;
    if (nameLen > encSize || typeAt + 8 > p + encSize) break;
    const name = text(p + 12, nameLen);
    const type = dv.getUint32(typeAt, false);
    const valAt = typeAt + 8;
    if (type === 9 && valAt + 4 <= p + encSize) {
      const len = dv.getUint32(valAt, false);
      if (valAt + 4 + len <= p + encSize) out.set(name, text(valAt + 4, len));
    }
    p += encSize;
  }
  return out;
}
