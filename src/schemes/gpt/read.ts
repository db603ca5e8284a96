/**
 * The one GPT reader: finds the sector size (the header's place, LBA 1, or the backup at the
 * last LBA) and reads both copies, noting what is wrong with each (UEFI 2.10 section 5.3).
 * `probeGpt` (info, verify) and `readGptForEdit` (slots, attribute edits) both start here.
 */
import { crc32 } from '../../model/crc32.js';
import { FormatError } from '../../../formats/common/errors.js';
import {
  gptEntryArrayBytes,
  isGptHeaderSignature,
  decodeGptEntries,
  decodeGptHeader,
  type GptHeader,
  type GptPartitionEntry,
} from '../../../formats/schemes/gpt.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';

export const WHERE = 'gpt';
/** Sector sizes we try, in order: the header sits at LBA 1 (section 5.3.1). */
export const GPT_SECTOR_SIZES = [512, 4096] as const;

export type Role = 'primary' | 'backup';

export interface GptCopy {
  /** Where the header was read. */
  lba: number;
  /** The header sector as read. */
  sector?: Uint8Array;
  /** Header that parsed with a good CRC. */
  header?: GptHeader;
  entries?: GptPartitionEntry[];
  entriesBytes?: Uint8Array;
  /** Header CRC good, my-LBA right, entry array CRC good. */
  valid: boolean;
}

export interface GptRead {
  sectorSize: number;
  totalSectors: number;
  primary: GptCopy;
  backup: GptCopy;
  /** Where the backup header was looked for. */
  backupLba: number;
  /** The primary header puts the backup past the end of the disk (not read). */
  backupBeyondEnd: boolean;
  /** What reading the copies found, in reading order. */
  findings: Finding[];
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

/** The sector size of a GPT disk: a header signature at LBA 1, else at the last LBA; null when none. */
export async function locateGpt(disk: DiskReader): Promise<{ sectorSize: number; viaBackup: boolean } | null> {
  for (const ss of GPT_SECTOR_SIZES) {
    if (isGptHeaderSignature(await disk.read(ss, 8))) return { sectorSize: ss, viaBackup: false };
  }
  for (const ss of GPT_SECTOR_SIZES) {
    const total = Math.floor(disk.size / ss);
    if (total < 3) continue;
    if (isGptHeaderSignature(await disk.read((total - 1) * ss, 8))) return { sectorSize: ss, viaBackup: true };
  }
  return null;
}

async function readCopy(disk: DiskReader, ss: number, totalSectors: number, lba: number, role: Role, out: Finding[]): Promise<GptCopy> {
  const add = (severity: 'error' | 'warning', code: string, message: string) => out.push(finding(severity, code, message, WHERE));
  if (lba + 1 > totalSectors) {
    add(
      'error',
      'gpt.truncated',
      `The ${role} GPT header belongs at LBA ${lba}, beyond the end of the disk (${totalSectors} sectors): the image is truncated.`,
    );
    return { lba, valid: false };
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
    return { lba, sector, valid: false };
  }
  if (!parsed.headerCrcValid) {
    add('error', `gpt.${role}-header-crc`, `The ${role} GPT header at LBA ${lba} is corrupt: its CRC32 does not match.`);
    return { lba, sector, valid: false };
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
    add(
      'error',
      'gpt.truncated',
      `The ${role} GPT entry array (LBA ${header.entriesLba}, ${arraySectors} sectors) runs past the end of the disk (${totalSectors} sectors): the image is truncated or the header is wrong.`,
    );
    return { lba, sector, header, valid: false };
  }
  const entriesBytes = await disk.read(header.entriesLba * ss, arrayBytes);
  try {
    const { entries, crcValid } = decodeGptEntries(entriesBytes, header);
    if (!crcValid) {
      add('error', `gpt.${role}-entries-crc`, `The ${role} GPT entry array at LBA ${header.entriesLba} is corrupt: its CRC32 does not match the header.`);
      valid = false;
    }
    return { lba, sector, header, entries, entriesBytes, valid };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    add('error', `gpt.${role}-entries-invalid`, `The ${role} GPT entry array at LBA ${header.entriesLba} cannot be read: ${e.message}.`);
    return { lba, sector, header, valid: false };
  }
}

/** Find a GPT and read both copies; null when the disk carries none. Throws only FormatErrors no check anticipated. */
export async function readGpt(disk: DiskReader): Promise<GptRead | null> {
  const located = await locateGpt(disk);
  if (!located) return null;
  const ss = located.sectorSize;
  const totalSectors = Math.floor(disk.size / ss);
  const lastLba = totalSectors - 1;
  const findings: Finding[] = [];
  const primary = await readCopy(disk, ss, totalSectors, 1, 'primary', findings);
  let backupLba = lastLba;
  let backupBeyondEnd = false;
  const alt = primary.header?.alternateLba;
  if (alt !== undefined && alt !== lastLba) {
    if (alt > lastLba) {
      backupBeyondEnd = true;
      findings.push(
        finding(
          'error',
          'gpt.truncated',
          `The primary GPT header puts the backup header at LBA ${alt}, beyond the disk's last sector ${lastLba}: the image is truncated.`,
          WHERE,
        ),
      );
    } else if (alt <= 1) {
      findings.push(
        finding(
          'error',
          'gpt.primary-alternate-lba',
          `The primary GPT header's alternate LBA ${alt} does not point to a backup header (expected ${lastLba}).`,
          WHERE,
        ),
      );
    } else {
      backupLba = alt;
      findings.push(
        finding(
          'warning',
          'gpt.backup-not-at-end',
          `The backup GPT header is at LBA ${alt}, not at the disk's last sector ${lastLba} (was the image resized?).`,
          WHERE,
        ),
      );
    }
  }
  const backup: GptCopy = backupBeyondEnd ? { lba: alt!, valid: false } : await readCopy(disk, ss, totalSectors, backupLba, 'backup', findings);
  return { sectorSize: ss, totalSectors, primary, backup, backupLba, backupBeyondEnd, findings };
}
