/**
 * probeMbr: read an MBR partition table (primaries plus the EBR chain) and verify it.
 *
 * Not an MBR (returns null): sector 0 has neither 0x55AA nor a plausible entry; any slot's
 * status byte is neither 0 nor 0x80 (FreeBSD `g_part_mbr.c` g_part_mbr_probe); a GPT protective
 * MBR (a 0xEE entry: the GPT probe owns it); an empty table over a FAT/NTFS BIOS parameter
 * block (a partitionless boot sector, the same g_part_mbr_probe test).
 */
import type { DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { findOutOfBounds, findOverlaps } from '../checks.js';
import type { PartitionTable, TablePartition, TableProbe, TableReadResult } from '../types.js';
import {
  EXTENDED_TYPES,
  MBR_SECTOR_BYTES,
  PARTITION_TABLE_OFFSET,
  PRIMARY_SLOTS,
  decodeMbrSector,
  walkEbrChainAsync,
  type MbrEntry,
} from '../../../formats/schemes/mbr.js';
import { mbrTypeName } from '../../../formats/schemes/mbr-types.js';
import { decodeBootSector } from '../../../formats/fs/fat-boot.js';
import { FormatError } from '../../../formats/common/errors.js';

/** DOSPTYP_PMBR. */
const TYPE_PROTECTIVE = 0xee;
const WHERE = 'mbr';

function hex2(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** BPB check of g_part_mbr_probe: bytes/sector at 0x0b a power of two 512-4096, sectors/cluster at 0x0d a power of two 1-128. */
function looksLikeBootSectorBpb(sector: Uint8Array): boolean {
  const bytesPerSector = sector[0x0b] | (sector[0x0c] << 8);
  const sectorsPerCluster = sector[0x0d];
  const pow2 = (x: number) => (x & (x - 1)) === 0;
  return (
    bytesPerSector >= 512 && bytesPerSector <= 4096 && pow2(bytesPerSector) && sectorsPerCluster >= 1 && sectorsPerCluster <= 128 && pow2(sectorsPerCluster)
  );
}

/**
 * mkfs.fat --mbr (dosfstools, the default on media it takes for removable) writes into the FAT
 * boot sector itself one partition entry: active, a FAT type, starting at sector 0 and as long
 * as the volume, so that BIOSes that want a partition table on a USB stick find one. sfdisk
 * lists that partition and fsck.fat is clean: it is a shape, not a table overwriting its own
 * sector. Recognised when sector 0 decodes as a FAT boot sector and the one entry starts at 0
 * and covers exactly the volume's sectors.
 */
function isFatSelfEntry(sector0: Uint8Array, p: TablePartition): boolean {
  if (p.firstLba !== 0 || p.logical) return false;
  let g;
  try {
    g = decodeBootSector(sector0).geometry;
  } catch (err) {
    if (err instanceof FormatError) return false;
    throw err;
  }
  return p.sizeBytes === g.totalSectors * g.sectorSize && FAT_PARTITION_TYPES.has(Number(p.rawType));
}

/** MBR types for FAT (mbr.h): FAT12 0x01, FAT16 <32M 0x04, FAT16 0x06, FAT32 0x0b/0x0c, FAT16 LBA 0x0e. */
const FAT_PARTITION_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);

/** A 0xEE protective entry beside at least one other non-empty entry (Boot Camp, `sgdisk -h`). */
function isHybrid(used: readonly MbrEntry[]): boolean {
  return used.some((e) => e.type === TYPE_PROTECTIVE) && used.some((e) => e.type !== TYPE_PROTECTIVE && e.sectors > 0);
}

/**
 * The MBR view of a hybrid MBR in front of a GPT: every non-empty entry (the 0xEE one too, as
 * sfdisk lists it), or undefined when sector 0 is a plain protective MBR (or no MBR).
 */
export function hybridMbrView(sector0: Uint8Array, sectorSize: number, diskBytes: number): PartitionTable | undefined {
  if (sector0.length < MBR_SECTOR_BYTES) return undefined;
  for (let slot = 0; slot < PRIMARY_SLOTS; slot++) {
    const status = sector0[PARTITION_TABLE_OFFSET + slot * 16];
    if (status !== 0 && status !== 0x80) return undefined;
  }
  const mbr = decodeMbrSector(sector0);
  if (!mbr.hasBootSignature) return undefined;
  const used = mbr.entries.filter((e): e is MbrEntry => e !== null);
  if (!isHybrid(used)) return undefined;
  const partitions: TablePartition[] = [];
  mbr.entries.forEach((e, slot) => {
    if (e && e.sectors > 0) partitions.push(toPartition(slot + 1, e, sectorSize));
  });
  return { scheme: 'mbr', sectorSize, offset: 0, diskBytes, diskSignature: `0x${mbr.diskSignature.toString(16).padStart(8, '0')}`, partitions };
}

export function toPartition(index: number, e: MbrEntry, sectorSize: number, extra: Partial<TablePartition> = {}): TablePartition {
  return {
    index,
    typeName: EXTENDED_TYPES.has(e.type) && !extra.logical ? 'extended' : (mbrTypeName(e.type) ?? hex2(e.type)),
    rawType: hex2(e.type),
    firstLba: e.startLba,
    lastLba: e.startLba + e.sectors - 1,
    sizeBytes: e.sectors * sectorSize,
    active: e.active,
    ...extra,
  };
}

function allZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** Probe for an MBR on a disk with the given logical sector size (512 or 4096). */
export function makeMbrProbe(sectorSize = 512): TableProbe {
  return async (disk: DiskReader): Promise<TableReadResult | null> => {
    if (disk.size < MBR_SECTOR_BYTES) return null;
    const sector0 = await disk.read(0, MBR_SECTOR_BYTES);
    if (sector0.length < MBR_SECTOR_BYTES) return null;
    const mbr = decodeMbrSector(sector0);
    const diskSectors = Math.floor(disk.size / sectorSize);
    for (let slot = 0; slot < PRIMARY_SLOTS; slot++) {
      const status = sector0[PARTITION_TABLE_OFFSET + slot * 16];
      if (status !== 0 && status !== 0x80) return null;
    }
    const used = mbr.entries.filter((e): e is MbrEntry => e !== null);
    // A protective MBR belongs to the GPT probe, which runs first. A hybrid one (0xEE beside real
    // partitions) reaches here only when no GPT was found behind it: read it as sfdisk does.
    const hybrid = used.some((e) => e.type === TYPE_PROTECTIVE) && isHybrid(used);
    if (used.some((e) => e.type === TYPE_PROTECTIVE) && !hybrid) return null;
    const plausible = used.some((e) => e.sectors > 0 && e.startLba > 0 && e.startLba < diskSectors);
    if (!mbr.hasBootSignature && !plausible) return null;
    if (used.length === 0 && looksLikeBootSectorBpb(sector0)) return null;

    const findings: Finding[] = [];
    if (hybrid) {
      findings.push(
        finding(
          'warning',
          'mbr.hybrid',
          `sector 0 is a hybrid MBR (a 0xEE GPT protective entry beside ${used.filter((e) => e.type !== TYPE_PROTECTIVE && e.sectors > 0).length} real partitions), but no valid GPT was found behind it: the MBR's entries are shown`,
          WHERE,
        ),
      );
    }
    if (!mbr.hasBootSignature) {
      findings.push(finding('error', 'mbr.boot-signature', 'sector 0 lacks the 0x55AA boot signature at byte 510', WHERE));
    }
    const primaries: TablePartition[] = [];
    const extendeds: Array<{ part: TablePartition; entry: MbrEntry }> = [];
    mbr.entries.forEach((e, slot) => {
      if (!e) return;
      if (e.sectors === 0) {
        findings.push(finding('warning', 'mbr.empty-entry', `entry ${slot + 1} has type ${hex2(e.type)} but no sectors; it is ignored`, WHERE));
        return;
      }
      const part = toPartition(slot + 1, e, sectorSize);
      primaries.push(part);
      if (EXTENDED_TYPES.has(e.type)) extendeds.push({ part, entry: e });
    });
    if (extendeds.length > 1) {
      findings.push(finding('warning', 'mbr.multiple-extended', `${extendeds.length} extended partitions; DOS and fdisk expect one`, WHERE));
    }

    const logicals: TablePartition[] = [];
    for (const { part: ext, entry } of extendeds) {
      logicals.push(...(await readLogicals(disk, sectorSize, entry, ext, 5 + logicals.length, findings)));
    }

    const all = [...primaries, ...logicals];
    if (all.length === 1 && isFatSelfEntry(sector0, all[0])) {
      findings.push(
        finding(
          'info',
          'mbr.fat-self-entry',
          `sector 0 is a FAT boot sector whose partition table holds one entry covering the volume itself (as mkfs.fat --mbr writes it); partition 1 is the whole FAT volume`,
          WHERE,
        ),
      );
    } else if (all.some((p) => p.firstLba === 0)) {
      findings.push(finding('error', 'mbr.overlaps-mbr', 'a partition starts at sector 0 and overwrites the MBR', WHERE));
    }
    findings.push(
      ...findOutOfBounds(
        all.filter((p) => p.firstLba > 0),
        1,
        diskSectors - 1,
        WHERE,
        'mbr.beyond-disk',
        'the disk',
      ),
    );
    findings.push(
      ...overlapFindings(
        primaries,
        logicals,
        extendeds.map((x) => x.part),
      ),
    );
    const active = primaries.filter((p) => p.active);
    if (active.length > 1) {
      findings.push(
        finding(
          'warning',
          'mbr.multiple-active',
          `partitions ${active.map((p) => p.index).join(', ')} are all marked active; BIOS boot code expects one`,
          WHERE,
        ),
      );
    }
    const table: PartitionTable = {
      scheme: 'mbr',
      sectorSize,
      offset: 0,
      diskBytes: disk.size,
      diskSignature: `0x${mbr.diskSignature.toString(16).padStart(8, '0')}`,
      partitions: all,
    };
    return { table, findings };
  };
}

/** Overlaps among all partitions, except an extended container against its own logicals. */
function overlapFindings(primaries: TablePartition[], logicals: TablePartition[], extendeds: TablePartition[]): Finding[] {
  const isExtended = new Set(extendeds);
  const plain = primaries.filter((p) => !isExtended.has(p));
  const out = findOverlaps([...plain, ...logicals], WHERE, 'mbr.overlap');
  for (const ext of extendeds) {
    for (const other of primaries) {
      if (other === ext || (isExtended.has(other) && other.index < ext.index)) continue;
      out.push(...findOverlaps([ext, other], WHERE, 'mbr.overlap'));
    }
  }
  return out;
}

async function readLogicals(
  disk: DiskReader,
  sectorSize: number,
  entry: MbrEntry,
  ext: TablePartition,
  firstIndex: number,
  findings: Finding[],
): Promise<TablePartition[]> {
  const extStart = entry.startLba;
  const extEnd = entry.startLba + entry.sectors; // exclusive
  const where = `${WHERE}.partition[${ext.index}]`;
  let linkOutside = false;
  const readEbr = async (lba: number): Promise<Uint8Array | undefined> => {
    if (lba < extStart || lba >= extEnd) {
      linkOutside = true;
      findings.push(
        finding('error', 'mbr.ebr-outside-extended', `an EBR link points at sector ${lba}, outside the extended partition (${extStart}-${extEnd - 1})`, where),
      );
      return undefined;
    }
    const bytes = await disk.read(lba * sectorSize, MBR_SECTOR_BYTES);
    return bytes.length === MBR_SECTOR_BYTES ? bytes : undefined;
  };
  const chain = await walkEbrChainAsync(readEbr, extStart);
  switch (chain.stop) {
    case 'loop':
      findings.push(finding('error', 'mbr.ebr-loop', `the EBR chain loops back to sector ${chain.stopLba}; logical partitions after it are lost`, where));
      break;
    case 'too-many':
      findings.push(finding('error', 'mbr.ebr-chain-too-long', `the EBR chain goes on past ${chain.ebrLbas.length} records; reading stopped`, where));
      break;
    case 'unreadable':
      if (!linkOutside) findings.push(finding('error', 'mbr.ebr-unreadable', `the EBR at sector ${chain.stopLba} lies beyond the end of the disk`, where));
      break;
    case 'no-signature': {
      const first = chain.stopLba === extStart;
      const bytes = first ? await disk.read(extStart * sectorSize, MBR_SECTOR_BYTES) : undefined;
      if (first && bytes && allZero(bytes)) {
        findings.push(finding('info', 'mbr.ebr-empty', 'the extended partition holds no EBR (no logical partitions)', where));
      } else {
        findings.push(finding('error', 'mbr.ebr-signature', `the EBR at sector ${chain.stopLba} lacks the 0x55AA signature; the chain ends there`, where));
      }
      break;
    }
    case 'end':
      break;
  }
  return chain.logicals.map((l, i) => {
    const part = toPartition(firstIndex + i, l.entry, sectorSize, { logical: true });
    if (part.firstLba < extStart || part.lastLba >= extEnd) {
      findings.push(
        finding(
          'error',
          'mbr.logical-outside-extended',
          `logical partition ${part.index} (sectors ${part.firstLba}-${part.lastLba}) lies outside the extended partition (${extStart}-${extEnd - 1})`,
          where,
        ),
      );
    }
    if (l.entry.startLba === l.ebrLba) {
      findings.push(finding('error', 'mbr.logical-overwrites-ebr', `logical partition ${part.index} starts on its own EBR (sector ${l.ebrLba})`, where));
    }
    return part;
  });
}

/** MBR on a 512-byte-sector disk. */
export const probeMbr: TableProbe = makeMbrProbe(512);
