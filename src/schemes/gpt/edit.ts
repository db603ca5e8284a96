/**
 * Rewriting GPT attributes in place, crash-safe. Both copies get the same new entry array and
 * fresh CRCs, written in the order backup array, backup header, primary array, primary header
 * (UEFI 2.10 section 5.3.2 checks each header's CRC and its array's CRC). Between any two writes
 * one copy is whole: first the old primary, then the new backup.
 */
import { DiskmintError } from '../../model/errors.js';
import { crc32 } from '../../model/crc32.js';
import { FormatError } from '../../../formats/common/errors.js';
import type { GptHeader, GptPartitionEntry } from '../../../formats/schemes/gpt.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { TableWriter } from '../handler.js';
import { readGpt, type GptCopy } from './read.js';

/** UEFI 2.10 table 5-5: header field offsets. */
const HEADER_CRC = 16;
const MY_LBA = 24;
const ALTERNATE_LBA = 32;
const ENTRIES_LBA = 72;
const ENTRIES_CRC = 88;
/** Table 5-6: attributes at byte 48 of an entry. */
const ENTRY_ATTRIBUTES = 48;

interface Copy {
  lba: number;
  sector: Uint8Array;
  header: GptHeader;
  entriesBytes: Uint8Array;
  valid: boolean;
}

export interface EditableGpt {
  sectorSize: number;
  entries: GptPartitionEntry[];
  /** The copy whose entries are authoritative (primary when valid). */
  good: Copy;
  primary?: Copy;
  backup?: Copy;
}

/** A copy whose header and entry array were read (valid or not). */
function editable(c: GptCopy): Copy | undefined {
  return c.sector && c.header && c.entriesBytes ? { lba: c.lba, sector: c.sector, header: c.header, entriesBytes: c.entriesBytes, valid: c.valid } : undefined;
}

/** Read both GPT copies (the reader `probeGpt` uses); refuse when neither is valid. */
export async function readGptForEdit(disk: DiskReader): Promise<EditableGpt> {
  const read = await readGpt(disk).catch((err: unknown) => {
    if (err instanceof FormatError)
      throw new DiskmintError('NOT_A_DISK', `the GPT cannot be read (${err.message}); nothing safe to edit (see \`diskmint verify\`)`);
    throw err;
  });
  if (!read) throw new DiskmintError('NOT_A_DISK', 'no GPT found');
  const primary = editable(read.primary);
  const backup = editable(read.backup);
  const good = primary?.valid ? primary : backup?.valid ? backup : undefined;
  if (!good) throw new DiskmintError('NOT_A_DISK', 'neither GPT copy is valid; nothing safe to edit (see `diskmint verify`)');
  const entries = (good === primary ? read.primary : read.backup).entries!;
  return { sectorSize: read.sectorSize, entries, good, primary, backup };
}

/** True when a copy is damaged, missing, or holds other entries than its twin: any edit rewrites both. */
export function gptNeedsRepair(gpt: EditableGpt): boolean {
  const { primary, backup } = gpt;
  if (!primary?.valid || !backup?.valid) return true;
  return Buffer.compare(Buffer.from(primary.entriesBytes), Buffer.from(backup.entriesBytes)) !== 0;
}

/** A header sector for `myLba`, derived from the good copy, pointing at `entriesLba`, with fresh CRCs. */
function headerSector(good: Copy, myLba: number, alternateLba: number, entriesLba: number, entriesCrc: number): Uint8Array {
  const sector = new Uint8Array(good.sector);
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  dv.setBigUint64(MY_LBA, BigInt(myLba), true);
  dv.setBigUint64(ALTERNATE_LBA, BigInt(alternateLba), true);
  dv.setBigUint64(ENTRIES_LBA, BigInt(entriesLba), true);
  dv.setUint32(ENTRIES_CRC, entriesCrc, true);
  dv.setUint32(HEADER_CRC, 0, true);
  dv.setUint32(HEADER_CRC, crc32(sector.subarray(0, good.header.headerSize)), true);
  return sector;
}

/** Where the rewrite puts each copy: the good copy's places, a damaged copy's usual ones. */
function copyLocations(gpt: EditableGpt): { primaryLba: number; backupLba: number; primaryEntriesLba: number; backupEntriesLba: number; entryBytes: number } {
  const { good, sectorSize: ss } = gpt;
  const entryBytes = good.entriesBytes.length;
  const backupLba = good === gpt.primary ? good.header.alternateLba : good.header.myLba;
  return {
    primaryLba: 1,
    backupLba,
    primaryEntriesLba: gpt.primary?.valid ? gpt.primary.header.entriesLba : 2,
    backupEntriesLba: gpt.backup?.valid ? gpt.backup.header.entriesLba : backupLba - Math.ceil(entryBytes / ss),
    entryBytes,
  };
}

/**
 * Refuse, before anything is written, an image whose GPT copies do not both fit in it (a cut
 * image, its backup past the end): a rewrite would stop with half a backup copy written.
 */
export function checkGptCopiesFit(gpt: EditableGpt, imageSize: number): void {
  const ss = gpt.sectorSize;
  const at = copyLocations(gpt);
  const ends = [at.backupEntriesLba * ss + at.entryBytes, (at.backupLba + 1) * ss, at.primaryEntriesLba * ss + at.entryBytes];
  if (at.backupEntriesLba <= at.primaryLba || ends.some((end) => end > imageSize)) {
    throw new DiskmintError(
      'NOT_A_DISK',
      `the backup GPT belongs at LBA ${at.backupLba} (entries at ${at.backupEntriesLba}), outside this ${imageSize}-byte image: was it cut short? Nothing was written (see \`diskmint verify\`)`,
    );
  }
}

/**
 * Set each listed entry's attributes and rewrite both copies in the crash-safe order.
 * A damaged copy is rebuilt from the good one.
 */
export async function writeGptAttributes(editor: TableWriter, gpt: EditableGpt, attributes: ReadonlyMap<number, bigint>): Promise<void> {
  const { good, sectorSize: ss } = gpt;
  const h = good.header;
  checkGptCopiesFit(gpt, editor.disk.size);
  const array = new Uint8Array(good.entriesBytes);
  const dv = new DataView(array.buffer, array.byteOffset, array.byteLength);
  for (const [index, bits] of attributes) {
    if (index < 1 || index > h.entryCount) throw new DiskmintError('BAD_ARGUMENT', `GPT has no entry ${index}`);
    dv.setBigUint64((index - 1) * h.entrySize + ENTRY_ATTRIBUTES, bits, true);
  }
  const entriesCrc = crc32(array);
  const { primaryLba, backupLba, primaryEntriesLba, backupEntriesLba } = copyLocations(gpt);
  await editor.writeBytes(backupEntriesLba * ss, array);
  await editor.writeBytes(backupLba * ss, headerSector(good, backupLba, primaryLba, backupEntriesLba, entriesCrc));
  await editor.writeBytes(primaryEntriesLba * ss, array);
  await editor.writeBytes(primaryLba * ss, headerSector(good, primaryLba, backupLba, primaryEntriesLba, entriesCrc));
}
