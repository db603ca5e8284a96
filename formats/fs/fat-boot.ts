/**
 * FAT boot sector (BPB) codec, plus the geometry choice mkfs.fat makes (FSInfo: fat-fsinfo.ts).
 *
 * Field offsets: Microsoft "FAT32 File System Specification" (fatgen103), section 3 "Boot Sector
 * and BPB" (common BPB bytes 0..35), 3.1 (FAT12/16 bytes 36..61) and 3.2 (FAT32 bytes 36..89).
 * FAT type follows from the cluster count alone (fatgen103 section 3.5 "FAT Type Determination").
 *
 * Geometry: dosfstools `mkfs.fat.c` establish_params()/setup_tables(): FAT32 from 512 MiB up,
 * FAT12/16 start at 4 sectors per cluster and double until the FAT type fits, structures
 * aligned to the cluster size above 8192 sectors.
 */
import { latin1, putLatin1, view } from '../common/bytes.js';
import { fail } from '../common/errors.js';
import { fatBytesFor, type FatBits } from './fat-table.js';

/** fatgen103 section 3.5: fewer than 4085 clusters is FAT12, fewer than 65525 FAT16. */
export const FAT12_MAX_CLUSTERS = 4084;
export const FAT16_MIN_CLUSTERS = 4085;
export const FAT16_MAX_CLUSTERS = 65524;
export const FAT32_MIN_CLUSTERS = 65525;
/** mkfs.fat (dosfstools 4.2) MAX_CLUST_12 / MAX_CLUST_16, compared with the cluster count + 2. */
const MKFS_MAX_ENTRIES_12 = FAT12_MAX_CLUSTERS;
const MKFS_MAX_ENTRIES_16 = FAT16_MAX_CLUSTERS;
/** fatgen103: the high 4 bits of a FAT32 entry are reserved (mkfs.fat MAX_CLUST_32). */
const MKFS_MAX_ENTRIES_32 = (1 << 28) - 16;
/** Largest cluster fatgen103 allows (BPB_BytsPerSec * BPB_SecPerClus <= 32K; 64K tolerated). */
export const MAX_CLUSTER_BYTES = 64 * 1024;
/** Boot sector signature bytes 510/511 (fatgen103 section 3). */
const SIGNATURE_OFFSET = 510;
/** Extended boot signature BS_BootSig = 0x29: the serial, label and type fields follow. */
const EXTENDED_BOOT_SIGNATURE = 0x29;

export interface FatGeometry {
  bits: FatBits;
  sectorSize: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatCount: number;
  /** 0 on FAT32 (the root is a cluster chain). */
  rootEntries: number;
  totalSectors: number;
  /** Sectors per FAT. */
  fatSectors: number;
  media: number;
  hiddenSectors: number;
  sectorsPerTrack: number;
  heads: number;
  /** Data clusters, numbered 2..clusters+1. */
  clusters: number;
}

export interface FatBootSector {
  geometry: FatGeometry;
  oemName: string;
  driveNumber: number;
  serial: number;
  label: string;
  fsTypeText: string;
  /** FAT32 only. */
  rootCluster: number;
  fsInfoSector: number;
  backupBootSector: number;
  extFlags: number;
  hasSignature: boolean;
}

export const rootDirSectors = (g: Pick<FatGeometry, 'rootEntries' | 'sectorSize'>) => Math.ceil((g.rootEntries * 32) / g.sectorSize);
export const firstFatSector = (g: FatGeometry) => g.reservedSectors;
export const rootDirSector = (g: FatGeometry) => g.reservedSectors + g.fatCount * g.fatSectors;
export const firstDataSector = (g: FatGeometry) => rootDirSector(g) + rootDirSectors(g);
export const clusterBytes = (g: FatGeometry) => g.sectorSize * g.sectorsPerCluster;

export interface GeometryRequest {
  totalSectors: number;
  sectorSize: number;
  bits: 'auto' | FatBits;
  /** Override, in sectors. */
  sectorsPerCluster?: number;
  hiddenSectors?: number;
}

/**
 * mkfs.fat's floppy table for exact sizes (establish_params):
 * KiB -> [sectors per cluster, root entries, media, sectors per track, heads].
 */
type Floppy = [number, number, number, number, number];
const FLOPPIES: Record<number, Floppy> = {
  360: [2, 112, 0xfd, 9, 2],
  720: [2, 112, 0xf9, 9, 2],
  1200: [1, 224, 0xf9, 15, 2],
  1440: [1, 224, 0xf0, 18, 2],
  2880: [2, 224, 0xf0, 36, 2],
};

/**
 * The geometry mkfs.fat would choose for a volume of `totalSectors`, or throw FormatError
 * INVALID_ARGUMENT when no cluster size gives the requested FAT type a legal cluster count.
 */
export function chooseFatGeometry(req: GeometryRequest): FatGeometry {
  const { totalSectors, sectorSize } = req;
  if (!Number.isSafeInteger(totalSectors) || totalSectors < 1 || totalSectors > 0xffffffff) {
    throw fail('fat', 'INVALID_ARGUMENT', `a FAT volume holds 1..4294967295 sectors, not ${totalSectors}`);
  }
  const bytes = totalSectors * sectorSize;
  const floppy = sectorSize === 512 ? FLOPPIES[bytes / 1024] : undefined;
  let bits = req.bits;
  // mkfs.fat: "Auto-selecting FAT32 for large filesystem" from 512 MiB.
  if (bits === 'auto' && bytes >= 512 * 1024 * 1024) bits = 32;
  let start = floppy ? floppy[0] : 4;
  if (bits === 32) {
    // mkfs.fat after fatgen103's table (section 3.5): <= 260 MiB 512-byte clusters, <= 8 GiB 4K,
    // <= 16 GiB 8K, <= 32 GiB 16K, else 32K; at least one sector.
    const mib = Math.floor(bytes / (1024 * 1024));
    const clusterBytes = mib > 32 * 1024 ? 32768 : mib > 16 * 1024 ? 16384 : mib > 8 * 1024 ? 8192 : mib > 260 ? 4096 : 512;
    start = Math.max(1, clusterBytes / sectorSize);
  }
  const maxSpc = Math.max(1, MAX_CLUSTER_BYTES / sectorSize);
  let candidates: number[];
  if (req.sectorsPerCluster !== undefined) {
    const spc = req.sectorsPerCluster;
    if (!Number.isInteger(spc) || spc < 1 || spc > 128 || (spc & (spc - 1)) !== 0 || spc > maxSpc) {
      throw fail('fat', 'INVALID_ARGUMENT', `cluster size of ${spc * sectorSize} bytes is not a power of two from ${sectorSize} to ${MAX_CLUSTER_BYTES} bytes`);
    }
    candidates = [spc];
  } else {
    // mkfs.fat doubles from the start; when that overshoots we also try smaller clusters.
    start = Math.min(start, maxSpc);
    candidates = [];
    for (let s = start; s <= maxSpc; s *= 2) candidates.push(s);
    for (let s = start / 2; s >= 1; s /= 2) candidates.push(s);
  }
  for (const spc of candidates) {
    const g = tryGeometry(totalSectors, sectorSize, spc, bits, floppy);
    if (g) return { ...g, hiddenSectors: req.hiddenSectors ?? 0 };
  }
  const what = bits === 'auto' ? 'FAT12 or FAT16' : `FAT${bits}`;
  const rule =
    bits === 32
      ? `FAT32 needs at least ${FAT32_MIN_CLUSTERS} clusters (about ${Math.ceil((FAT32_MIN_CLUSTERS * sectorSize) / 1048576) + 1} MiB with ${sectorSize}-byte sectors)`
      : bits === 16
        ? `FAT16 needs ${FAT16_MIN_CLUSTERS}..${FAT16_MAX_CLUSTERS} clusters`
        : `FAT12 holds at most ${FAT12_MAX_CLUSTERS} clusters`;
  throw fail('fat', 'INVALID_ARGUMENT', `no cluster size makes a legal ${what} volume of ${bytes} bytes: ${rule}`);
}

function tryGeometry(
  totalSectors: number,
  sectorSize: number,
  spc: number,
  bits: 'auto' | FatBits,
  floppy: Floppy | undefined,
): Omit<FatGeometry, 'hiddenSectors'> | undefined {
  // mkfs.fat: no alignment for volumes of 8192 sectors or less.
  const align = totalSectors > 8192;
  const up = (n: number) => (align ? Math.ceil(n / spc) * spc : n);
  const media = floppy ? floppy[2] : 0xf8;
  const chs = dummyChsGeometry(totalSectors);
  const common = {
    sectorSize,
    sectorsPerCluster: spc,
    fatCount: 2,
    totalSectors,
    media,
    sectorsPerTrack: floppy ? floppy[3] : chs[0],
    heads: floppy ? floppy[4] : chs[1],
  };
  const fit = (b: FatBits): Omit<FatGeometry, 'hiddenSectors'> | undefined => {
    const reserved = up(b === 32 ? 32 : 1);
    const rootEntriesWanted = b === 32 ? 0 : floppy ? floppy[1] : 512;
    const rootSectors = up(Math.ceil((rootEntriesWanted * 32) / sectorSize));
    const rootEntries = (rootSectors * sectorSize) / 32;
    const fatData = totalSectors - reserved - rootSectors;
    if (fatData <= 0) return undefined;
    // Solve clusters*spc + 2*fatSectors <= fatData with fatSectors covering clusters+2 entries.
    // Each cluster costs its sectors plus one entry in each of the two FATs (mkfs.fat's estimate),
    // then the count is recomputed with the FAT size rounded up to whole (aligned) sectors.
    const estimate = Math.floor((fatData * sectorSize) / (spc * sectorSize + fatBytesFor(b, 2)));
    const fatSectors = up(Math.ceil(fatBytesFor(b, estimate + 2) / sectorSize));
    const clusters = Math.floor((fatData - 2 * fatSectors) / spc);
    if (clusters < 1) return undefined;
    const entriesInFat = Math.floor((fatSectors * sectorSize * 8) / b);
    const cap = Math.min(entriesInFat, b === 12 ? MKFS_MAX_ENTRIES_12 : b === 16 ? MKFS_MAX_ENTRIES_16 : MKFS_MAX_ENTRIES_32);
    if (clusters > cap - 2) return undefined;
    if (b === 12 && clusters > FAT12_MAX_CLUSTERS) return undefined;
    if (b === 16 && (clusters < FAT16_MIN_CLUSTERS || clusters > FAT16_MAX_CLUSTERS)) return undefined;
    if (b === 32 && clusters < FAT32_MIN_CLUSTERS) return undefined;
    return { ...common, bits: b, reservedSectors: reserved, rootEntries, fatSectors, clusters };
  };
  if (bits === 'auto') return fit(12) ?? fit(16);
  return fit(bits);
}

/**
 * The CHS values mkfs.fat (dosfstools 4.2) stores for an image file, by sector count: small
 * sizes use 16 or 32 sectors per track, larger ones the BIOS "LBA assist" scheme (63 sectors
 * per track, heads doubling at 1024 cylinders). Nothing reads them on LBA media.
 */
function dummyChsGeometry(totalSectors: number): [number, number] {
  if (totalSectors <= 4096) return [16, 2];
  if (totalSectors <= 32768) return [32, 2];
  if (totalSectors <= 65536) return [32, 4];
  if (totalSectors <= 262144) return [32, 8];
  if (totalSectors <= 524288) return [32, 16];
  for (const heads of [16, 32, 64, 128]) if (totalSectors <= 1024 * heads * 63) return [63, heads];
  return [63, 255];
}

export interface BootSectorFields {
  geometry: FatGeometry;
  oemName: string;
  serial: number;
  /** 11 characters, already validated and upper-cased; 'NO NAME    ' when none. */
  label: string;
  /** FAT32: cluster of the root directory (2). */
  rootCluster?: number;
}

/** FAT32: FSInfo in sector 1, backup boot sector in sector 6 (fatgen103 section 3.2). */
export const FAT32_FSINFO_SECTOR = 1;
export const FAT32_BACKUP_BOOT_SECTOR = 6;

/** Encode a boot sector of geometry.sectorSize bytes. */
export function encodeBootSector(f: BootSectorFields): Uint8Array {
  const g = f.geometry;
  const out = new Uint8Array(g.sectorSize);
  const v = new DataView(out.buffer);
  const fat32 = g.bits === 32;
  // The boot code follows the BPB: byte 62 on FAT12/16, byte 90 on FAT32.
  const codeAt = fat32 ? 90 : 62;
  out.set([0xeb, codeAt - 2, 0x90], 0); // BS_jmpBoot: short jump + NOP
  putLatin1(out, 3, f.oemName, 8, 0x20); // BS_OEMName
  v.setUint16(11, g.sectorSize, true); // BPB_BytsPerSec
  out[13] = g.sectorsPerCluster; // BPB_SecPerClus
  v.setUint16(14, g.reservedSectors, true); // BPB_RsvdSecCnt
  out[16] = g.fatCount; // BPB_NumFATs
  v.setUint16(17, g.rootEntries, true); // BPB_RootEntCnt
  // BPB_TotSec16 when it fits (never on FAT32), else BPB_TotSec32.
  const small = !fat32 && g.totalSectors < 0x10000;
  v.setUint16(19, small ? g.totalSectors : 0, true);
  out[21] = g.media; // BPB_Media
  v.setUint16(22, fat32 ? 0 : g.fatSectors, true); // BPB_FATSz16
  v.setUint16(24, g.sectorsPerTrack, true); // BPB_SecPerTrk
  v.setUint16(26, g.heads, true); // BPB_NumHeads
  v.setUint32(28, g.hiddenSectors >>> 0, true); // BPB_HiddSec
  v.setUint32(32, small ? 0 : g.totalSectors, true); // BPB_TotSec32
  let ext = 36;
  if (fat32) {
    v.setUint32(36, g.fatSectors, true); // BPB_FATSz32
    v.setUint16(40, 0, true); // BPB_ExtFlags: mirroring on
    v.setUint16(42, 0, true); // BPB_FSVer 0.0
    v.setUint32(44, f.rootCluster ?? 2, true); // BPB_RootClus
    v.setUint16(48, FAT32_FSINFO_SECTOR, true); // BPB_FSInfo
    v.setUint16(50, FAT32_BACKUP_BOOT_SECTOR, true); // BPB_BkBootSec
    ext = 64;
  }
  out[ext] = g.media === 0xf8 ? 0x80 : 0x00; // BS_DrvNum (mkfs.fat: 0x80 for fixed media)
  out[ext + 2] = EXTENDED_BOOT_SIGNATURE; // BS_BootSig
  v.setUint32(ext + 3, f.serial >>> 0, true); // BS_VolID
  putLatin1(out, ext + 7, f.label, 11, 0x20); // BS_VolLab
  putLatin1(out, ext + 18, fat32 ? 'FAT32' : g.bits === 16 ? 'FAT16' : 'FAT12', 8, 0x20); // BS_FilSysType
  out.set(bootStub(codeAt), codeAt);
  out[SIGNATURE_OFFSET] = 0x55;
  out[SIGNATURE_OFFSET + 1] = 0xaa;
  return out;
}

/**
 * A real-mode stub in the spirit of mkfs.fat's: print a message through BIOS teletype
 * (int 10h AH=0Eh), wait for a key (int 16h), then ask the BIOS for the next boot device (int 19h).
 */
function bootStub(codeAt: number): Uint8Array {
  const message = 'This is not a bootable disk.  Please insert a bootable floppy and\r\npress any key to try again ... \r\n\0';
  // prettier-ignore
  const code = [
    0x0e, 0x1f, /* push cs; pop ds */ 0xbe, 0, 0, /* mov si, message (patched below) */
    0xac, /* next: lodsb */ 0x84, 0xc0, /* test al, al */ 0x74, 0x0b, /* jz wait (+11) */
    0x56, /* push si */ 0xb4, 0x0e, /* mov ah, 0Eh */ 0xbb, 0x07, 0x00, /* mov bx, 0007h */
    0xcd, 0x10, /* int 10h */ 0x5e, /* pop si */ 0xeb, 0xf0, /* jmp next (-16) */
    0x31, 0xc0, /* wait: xor ax, ax */ 0xcd, 0x16, /* int 16h */ 0xcd, 0x19, /* int 19h */ 0xeb, 0xfe, /* jmp $ */
  ];
  const messageAddress = 0x7c00 + codeAt + code.length;
  code[3] = messageAddress & 0xff;
  code[4] = messageAddress >> 8;
  const out = new Uint8Array(code.length + message.length);
  out.set(code, 0);
  for (let i = 0; i < message.length; i++) out[code.length + i] = message.charCodeAt(i);
  return out;
}

/**
 * Decode and sanity-check a boot sector (at least 512 bytes). Throws FormatError BAD_MAGIC when
 * it is not a FAT BPB, BAD_VALUE for impossible fields.
 */
export function decodeBootSector(bytes: Uint8Array): FatBootSector {
  if (bytes.length < 512) throw fail('fat', 'TRUNCATED', `a FAT boot sector needs 512 bytes, got ${bytes.length}`);
  const v = view(bytes);
  const sectorSize = v.getUint16(11, true);
  const spc = bytes[13];
  const reserved = v.getUint16(14, true);
  const fatCount = bytes[16];
  const rootEntries = v.getUint16(17, true);
  const tot16 = v.getUint16(19, true);
  const media = bytes[21];
  const fatSz16 = v.getUint16(22, true);
  const tot32 = v.getUint32(32, true);
  const hasSignature = bytes[SIGNATURE_OFFSET] === 0x55 && bytes[SIGNATURE_OFFSET + 1] === 0xaa;
  if (![512, 1024, 2048, 4096].includes(sectorSize)) {
    throw fail('fat', hasSignature ? 'BAD_VALUE' : 'BAD_MAGIC', `not a FAT boot sector: bytes per sector ${sectorSize}`);
  }
  if (spc === 0 || (spc & (spc - 1)) !== 0) throw fail('fat', 'BAD_VALUE', `sectors per cluster ${spc} is not a power of two`);
  if (spc * sectorSize > 256 * 1024) throw fail('fat', 'BAD_VALUE', `cluster of ${spc * sectorSize} bytes is too large`);
  if (reserved === 0) throw fail('fat', 'BAD_VALUE', 'no reserved sectors');
  if (fatCount === 0 || fatCount > 4) throw fail('fat', 'BAD_VALUE', `${fatCount} FATs`);
  if (media < 0xf0 && media !== 0) throw fail('fat', 'BAD_VALUE', `media byte 0x${media.toString(16)}`);
  const fatSectors = fatSz16 !== 0 ? fatSz16 : v.getUint32(36, true);
  const totalSectors = tot16 !== 0 ? tot16 : tot32;
  if (fatSectors === 0) throw fail('fat', 'BAD_VALUE', 'FAT size is zero');
  if (totalSectors === 0) throw fail('fat', 'BAD_VALUE', 'total sector count is zero');
  const rootSectors = Math.ceil((rootEntries * 32) / sectorSize);
  const dataStart = reserved + fatCount * fatSectors + rootSectors;
  if (dataStart >= totalSectors) throw fail('fat', 'BAD_VALUE', `metadata (${dataStart} sectors) fills the whole volume of ${totalSectors} sectors`);
  const clusters = Math.floor((totalSectors - dataStart) / spc);
  // fatgen103 section 3.5: the type is decided by the count of clusters only.
  const bits: FatBits = clusters < FAT16_MIN_CLUSTERS ? 12 : clusters < FAT32_MIN_CLUSTERS ? 16 : 32;
  if (bits === 32 && (fatSz16 !== 0 || rootEntries !== 0)) throw fail('fat', 'BAD_VALUE', 'FAT32 cluster count with a FAT12/16 BPB');
  if (bits !== 32 && rootEntries === 0) throw fail('fat', 'BAD_VALUE', 'FAT12/16 volume without root directory entries');
  if (Math.floor((fatSectors * sectorSize * 8) / bits) < clusters + 2) {
    throw fail('fat', 'BAD_VALUE', `FAT of ${fatSectors} sectors cannot map ${clusters} clusters`);
  }
  const ext = bits === 32 ? 64 : 36;
  const extended = bytes[ext + 2] === EXTENDED_BOOT_SIGNATURE || bytes[ext + 2] === 0x28;
  const geometry: FatGeometry = {
    bits,
    sectorSize,
    sectorsPerCluster: spc,
    reservedSectors: reserved,
    fatCount,
    rootEntries,
    totalSectors,
    fatSectors,
    media,
    hiddenSectors: v.getUint32(28, true),
    sectorsPerTrack: v.getUint16(24, true),
    heads: v.getUint16(26, true),
    clusters,
  };
  const rootCluster = bits === 32 ? v.getUint32(44, true) & 0x0fffffff : 0;
  if (bits === 32 && (rootCluster < 2 || rootCluster > clusters + 1)) throw fail('fat', 'BAD_VALUE', `root cluster ${rootCluster} is out of range`);
  return {
    geometry,
    oemName: latin1(bytes, 3, 8),
    driveNumber: bytes[ext],
    serial: extended ? v.getUint32(ext + 3, true) : 0,
    label: bytes[ext + 2] === EXTENDED_BOOT_SIGNATURE ? latin1(bytes, ext + 7, 11) : '',
    fsTypeText: bytes[ext + 2] === EXTENDED_BOOT_SIGNATURE ? latin1(bytes, ext + 18, 8) : '',
    rootCluster,
    fsInfoSector: bits === 32 ? v.getUint16(48, true) : 0,
    backupBootSector: bits === 32 ? v.getUint16(50, true) : 0,
    extFlags: bits === 32 ? v.getUint16(40, true) : 0,
    hasSignature,
  };
}
