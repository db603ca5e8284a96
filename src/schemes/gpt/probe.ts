/**
 * probeGpt: find a GUID Partition Table on a disk, read both copies and report what is wrong
 * (UEFI 2.10 section 5.3). Never throws on bad bytes: every FormatError becomes a finding.
 */
import { crc32 } from '../../model/crc32.js';
import { FormatError } from '../../../formats/common/errors.js';
import {
  GPT_REVISION,
  gptEntryArrayBytes,
  isGptHeaderSignature,
  decodeGptEntries,
  decodeGptHeader,
  type GptHeader,
  type GptPartitionEntry,
} from '../../../formats/schemes/gpt.js';
import { gptAttributeNames } from '../../../formats/schemes/gpt-attributes.js';
import { PARTITION_TABLE_OFFSET } from '../../../formats/schemes/mbr.js';
import { gptTypeName } from '../../../formats/schemes/gpt-types.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { findOutOfBounds, findOverlaps } from '../checks.js';
import type { PartitionTable, TablePartition, TableProbe } from '../types.js';

const WHERE = 'gpt';
/** Sector sizes we try, in order: the header sits at LBA 1 (section 5.3.1). */
const SECTOR_SIZES = [512, 4096] as const;
/** Protective MBR (UEFI 2.10 section 5.2.3): table at byte 446, four 16-byte entries, 0x55AA at 510. */
const MBR_ENTRY_SIZE = 16;
const MBR_ENTRY_COUNT = 4;
const MBR_SIGNATURE_OFFSET = 510;
const MBR_TYPE_OFFSET = 4; // within an entry: status, CHS(3), type, CHS(3), start u32, size u32
const MBR_START_OFFSET = 8;
const MBR_SIZE_OFFSET = 12;
const MBR_TYPE_GPT_PROTECTIVE = 0xee;
const MBR_MAX_SECTORS = 0xffff_ffff;

type Role = 'primary' | 'backup';

interface CopyRead {
  /** Header that parsed with a good CRC. */
  header?: GptHeader;
  entries?: GptPartitionEntry[];
  entriesBytes?: Uint8Array;
  /** Header CRC good, my-LBA right, entry array CRC good. */
  valid: boolean;
}

/** Does the stored header CRC match, judged without trusting anything else in the header? */
function storedHeaderCrcMatches(sector: Uint8Array): boolean {
  if (sector.length < 92) return false;
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  const size = dv.getUint32(12, true); // HeaderSize (section 5.3.2)
  if (size < 92 || size > sector.length) return false;
  const copy = sector.slice(0, size);
  copy.fill(0, 16, 20); // HeaderCRC32 taken as zero while computing
  return crc32(copy) === dv.getUint32(16, true);
}

async function locate(disk: DiskReader): Promise<{ sectorSize: number; viaBackup: boolean } | null> {
  for (const ss of SECTOR_SIZES) {
    if (isGptHeaderSignature(await disk.read(ss, 8))) return { sectorSize: ss, viaBackup: false };
  }
  for (const ss of SECTOR_SIZES) {
    const total = Math.floor(disk.size / ss);
    if (total < 3) continue;
    if (isGptHeaderSignature(await disk.read((total - 1) * ss, 8))) return { sectorSize: ss, viaBackup: true };
  }
  return null;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function readCopy(
  disk: DiskReader,
  ss: number,
  totalSectors: number,
  lba: number,
  role: Role,
  out: Finding[],
): Promise<CopyRead> {
  const add = (severity: 'error' | 'warning', code: string, message: string) =>
    out.push(finding(severity, code, message, WHERE));
  if (lba + 1 > totalSectors) {
    add('error', 'gpt.truncated', `The ${role} GPT header belongs at LBA ${lba}, beyond the end of the disk (${totalSectors} sectors): the image is truncated.`);
    return { valid: false };
  }
  const sector = await disk.read(lba * ss, ss);
  let parsed: GptHeader & { headerCrcValid: boolean };
  try {
    parsed = decodeGptHeader(sector);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    if (e.code === 'BAD_MAGIC') {
      add('error', `gpt.${role}-header-missing`, `There is no ${role} GPT header ("EFI PART") at LBA ${lba}.`);
    } else if (!storedHeaderCrcMatches(sector)) {
      add('error', `gpt.${role}-header-crc`, `The ${role} GPT header at LBA ${lba} is corrupt: its CRC32 does not match (${e.message}).`);
    } else {
      add('error', `gpt.${role}-header-invalid`, `The ${role} GPT header at LBA ${lba} is invalid: ${e.message}.`);
    }
    return { valid: false };
  }
  if (!parsed.headerCrcValid) {
    add('error', `gpt.${role}-header-crc`, `The ${role} GPT header at LBA ${lba} is corrupt: its CRC32 does not match.`);
    return { valid: false };
  }
  const { headerCrcValid: _ignored, ...header } = parsed;
  let valid = true;
  if (header.myLba !== lba) {
    add('error', `gpt.${role}-my-lba`, `The ${role} GPT header at LBA ${lba} claims to be at LBA ${header.myLba}.`);
    valid = false;
  }
  const arrayBytes = gptEntryArrayBytes(header);
  const arraySectors = Math.ceil(arrayBytes / ss);
  if (header.entriesLba + arraySectors > totalSectors) {
    add('error', 'gpt.truncated', `The ${role} GPT entry array (LBA ${header.entriesLba}, ${arraySectors} sectors) runs past the end of the disk (${totalSectors} sectors): the image is truncated or the header is wrong.`);
    return { header, valid: false };
  }
  const entriesBytes = await disk.read(header.entriesLba * ss, arrayBytes);
  try {
    const { entries, crcValid } = decodeGptEntries(entriesBytes, header);
    if (!crcValid) {
      add('error', `gpt.${role}-entries-crc`, `The ${role} GPT entry array at LBA ${header.entriesLba} is corrupt: its CRC32 does not match the header.`);
      valid = false;
    }
    return { header, entries, entriesBytes, valid };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    add('error', `gpt.${role}-entries-invalid`, `The ${role} GPT entry array at LBA ${header.entriesLba} cannot be read: ${e.message}.`);
    return { header, valid: false };
  }
}

function checkProtectiveMbr(sector0: Uint8Array, totalSectors: number, out: Finding[]): void {
  if (sector0.length < 512 || sector0[MBR_SIGNATURE_OFFSET] !== 0x55 || sector0[MBR_SIGNATURE_OFFSET + 1] !== 0xaa) {
    out.push(finding('error', 'gpt.pmbr-missing', 'Sector 0 has no protective MBR (no 0x55AA signature), so MBR-only tools see an empty disk they may overwrite.', WHERE));
    return;
  }
  const dv = new DataView(sector0.buffer, sector0.byteOffset, sector0.byteLength);
  const expected = Math.min(totalSectors - 1, MBR_MAX_SECTORS);
  let protective = -1;
  let others = 0;
  for (let i = 0; i < MBR_ENTRY_COUNT; i++) {
    const at = PARTITION_TABLE_OFFSET + i * MBR_ENTRY_SIZE;
    const type = sector0[at + MBR_TYPE_OFFSET];
    if (type === MBR_TYPE_GPT_PROTECTIVE && protective < 0) protective = at;
    else if (type !== 0) others++;
  }
  if (protective < 0) {
    out.push(finding('error', 'gpt.pmbr-missing', 'The MBR in sector 0 has no protective entry of type 0xEE covering the GPT disk.', WHERE));
    return;
  }
  const start = dv.getUint32(protective + MBR_START_OFFSET, true);
  const size = dv.getUint32(protective + MBR_SIZE_OFFSET, true);
  if (start !== 1) {
    out.push(finding('error', 'gpt.pmbr-start', `The protective MBR entry starts at LBA ${start} instead of LBA 1 where the GPT header is.`, WHERE));
  } else if (size < expected) {
    out.push(finding('warning', 'gpt.pmbr-size', `The protective MBR entry covers only ${size} sectors, not the whole disk (${expected} sectors after LBA 0).`, WHERE));
  } else if (size > expected) {
    out.push(finding('warning', 'gpt.pmbr-size', `The protective MBR entry covers ${size} sectors, more than the disk's ${expected} after LBA 0.`, WHERE));
  }
  if (others > 0) {
    out.push(finding('info', 'gpt.pmbr-hybrid', `The MBR holds ${others} entries besides the protective one (a hybrid MBR).`, WHERE));
  }
}

function compareCopies(primary: CopyRead, backup: CopyRead, out: Finding[]): void {
  const p = primary.header;
  const b = backup.header;
  if (!p || !b) return;
  const add = (code: string, message: string) => out.push(finding('error', code, message, WHERE));
  if (p.diskGuid !== b.diskGuid) add('gpt.header-mismatch', `The primary and backup GPT headers name different disk GUIDs (${p.diskGuid} and ${b.diskGuid}).`);
  if (p.entryCount !== b.entryCount || p.entrySize !== b.entrySize) {
    add('gpt.header-mismatch', `The primary GPT has ${p.entryCount} entries of ${p.entrySize} bytes, the backup ${b.entryCount} of ${b.entrySize}.`);
  }
  if (p.firstUsableLba !== b.firstUsableLba || p.lastUsableLba !== b.lastUsableLba) {
    add('gpt.usable-range-mismatch', `The primary GPT's usable area (sectors ${p.firstUsableLba}-${p.lastUsableLba}) differs from the backup's (sectors ${b.firstUsableLba}-${b.lastUsableLba}).`);
  }
  const pa = primary.entriesBytes;
  const ba = backup.entriesBytes;
  if (pa && ba && primary.valid && backup.valid && !equalBytes(pa, ba)) {
    add('gpt.entries-mismatch', 'The primary and backup GPT entry arrays differ (each has a valid CRC): the two copies describe different partitions.');
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Usable area against the disk and the entry arrays; entries must sit outside it. */
function checkLayout(h: GptHeader, ss: number, totalSectors: number, backupLba: number, out: Finding[]): void {
  const add = (code: string, message: string) => out.push(finding('error', code, message, WHERE));
  const arraySectors = Math.ceil(gptEntryArrayBytes(h) / ss);
  if (h.firstUsableLba > h.lastUsableLba) {
    add('gpt.usable-range', `The first usable LBA ${h.firstUsableLba} is after the last usable LBA ${h.lastUsableLba}.`);
  }
  if (h.firstUsableLba < 2 + arraySectors) {
    add('gpt.usable-range', `The first usable LBA ${h.firstUsableLba} overlaps the primary header or entry array (LBA 1-${1 + arraySectors}).`);
  }
  if (h.lastUsableLba > totalSectors - 1) {
    add('gpt.usable-range', `The last usable LBA ${h.lastUsableLba} lies beyond the end of the disk (last sector ${totalSectors - 1}).`);
  } else if (h.lastUsableLba >= backupLba - arraySectors) {
    add('gpt.usable-range', `The last usable LBA ${h.lastUsableLba} reaches into the backup entry array or header (LBA ${backupLba - arraySectors}-${backupLba}).`);
  }
}

function checkEntriesLocation(h: GptHeader, ss: number, role: Role, out: Finding[]): void {
  const arraySectors = Math.ceil(gptEntryArrayBytes(h) / ss);
  const end = h.entriesLba + arraySectors - 1;
  const ok =
    role === 'primary'
      ? h.entriesLba >= 2 && end < h.firstUsableLba
      : h.entriesLba > h.lastUsableLba && end < h.myLba;
  if (!ok) {
    out.push(finding('error', 'gpt.entries-location', `The ${role} GPT entry array (LBA ${h.entriesLba}-${end}) overlaps its header or the usable area.`, WHERE));
  }
}

function toTablePartition(e: GptPartitionEntry, ss: number): TablePartition {
  return {
    index: e.index,
    typeName: gptTypeName(e.typeGuid) ?? e.typeGuid,
    rawType: e.typeGuid,
    label: e.name,
    firstLba: e.firstLba,
    lastLba: e.lastLba,
    sizeBytes: e.lastLba >= e.firstLba ? (e.lastLba - e.firstLba + 1) * ss : 0,
    attributes: gptAttributeNames(e.attributes),
    attributesRaw: `0x${e.attributes.toString(16).padStart(16, '0')}`,
    guid: e.guid,
  };
}

function checkPartitions(parts: TablePartition[], h: GptHeader, out: Finding[]): void {
  const ordered: TablePartition[] = [];
  for (const p of parts) {
    if (p.firstLba > p.lastLba) {
      out.push(finding('error', 'gpt.partition-reversed', `Partition ${p.index} starts at sector ${p.firstLba}, after its last sector ${p.lastLba}.`, `gpt.partition[${p.index}]`));
    } else ordered.push(p);
  }
  out.push(...findOutOfBounds(ordered, h.firstUsableLba, h.lastUsableLba, WHERE, 'gpt.partition-out-of-bounds', 'the usable area'));
  out.push(...findOverlaps(ordered, WHERE, 'gpt.partition-overlap'));
}

async function probe(disk: DiskReader): Promise<{ table: PartitionTable; findings: Finding[] } | null> {
  const located = await locate(disk);
  if (!located) return null;
  const ss = located.sectorSize;
  const totalSectors = Math.floor(disk.size / ss);
  const lastLba = totalSectors - 1;
  const findings: Finding[] = [];
  if (disk.size % ss !== 0) {
    findings.push(finding('warning', 'gpt.size-not-sector-multiple', `The disk size ${disk.size} bytes is not a whole number of ${ss}-byte sectors.`, WHERE));
  }
  checkProtectiveMbr(await disk.read(0, 512), totalSectors, findings);

  const primary = await readCopy(disk, ss, totalSectors, 1, 'primary', findings);
  let backupLba = lastLba;
  let backupBeyondEnd = false;
  const alt = primary.header?.alternateLba;
  if (alt !== undefined && alt !== lastLba) {
    if (alt > lastLba) {
      backupBeyondEnd = true;
      findings.push(finding('error', 'gpt.truncated', `The primary GPT header puts the backup header at LBA ${alt}, beyond the disk's last sector ${lastLba}: the image is truncated.`, WHERE));
    } else if (alt <= 1) {
      findings.push(finding('error', 'gpt.primary-alternate-lba', `The primary GPT header's alternate LBA ${alt} does not point to a backup header (expected ${lastLba}).`, WHERE));
    } else {
      backupLba = alt;
      findings.push(finding('warning', 'gpt.backup-not-at-end', `The backup GPT header is at LBA ${alt}, not at the disk's last sector ${lastLba} (was the image resized?).`, WHERE));
    }
  }
  const backup: CopyRead = backupBeyondEnd ? { valid: false } : await readCopy(disk, ss, totalSectors, backupLba, 'backup', findings);
  if (backup.header && backup.header.alternateLba !== 1) {
    findings.push(finding('error', 'gpt.backup-alternate-lba', `The backup GPT header's alternate LBA is ${backup.header.alternateLba}, not 1 where the primary header is.`, WHERE));
  }
  compareCopies(primary, backup, findings);

  const candidates: Array<[CopyRead, Role]> = [[primary, 'primary'], [backup, 'backup']];
  const chosen =
    candidates.find(([c]) => c.valid) ?? candidates.find(([c]) => c.entries) ?? candidates.find(([c]) => c.header);
  if (chosen && chosen[1] === 'backup' && chosen[0].valid) {
    findings.push(finding('info', 'gpt.using-backup', 'The partition table was read from the backup GPT because the primary copy is damaged.', WHERE));
  }
  for (const [c, role] of candidates) if (c.header) checkEntriesLocation(c.header, ss, role, findings);

  const h = chosen?.[0].header;
  const parts = (chosen?.[0].entries ?? []).map((e) => toTablePartition(e, ss));
  if (h) {
    if (h.revision !== GPT_REVISION) {
      findings.push(finding('warning', 'gpt.revision', `The GPT header revision is 0x${h.revision.toString(16).padStart(8, '0')}, not 0x00010000.`, WHERE));
    }
    checkLayout(h, ss, totalSectors, backupBeyondEnd ? h.alternateLba : backupLba, findings);
    checkPartitions(parts, h, findings);
  }
  const table: PartitionTable = {
    scheme: 'gpt',
    sectorSize: ss,
    offset: 0,
    diskBytes: disk.size,
    partitions: parts,
  };
  if (h) {
    table.diskGuid = h.diskGuid;
    table.firstUsableLba = h.firstUsableLba;
    table.lastUsableLba = h.lastUsableLba;
    table.entryCount = h.entryCount;
  }
  return { table, findings };
}

/** Find and verify a GPT; null when the disk carries none. */
export const probeGpt: TableProbe = async (disk) => {
  try {
    return await probe(disk);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    // Defensive: a FormatError no check above anticipated still becomes a finding.
    return {
      table: { scheme: 'gpt', sectorSize: 512, offset: 0, diskBytes: disk.size, partitions: [] },
      findings: [finding('error', 'gpt.unreadable', `The GPT cannot be read: ${describe(e)}.`, WHERE)],
    };
  }
};
