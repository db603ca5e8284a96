/**
 * Rewriting GPT attributes in place, crash-safe. Both copies get the same new entry array and
 * fresh CRCs (UEFI 2.10 section 5.3.2 checks each header's CRC and its array's CRC, so a copy
 * is valid only when its header and its array landed together).
 *
 * The order, with write barriers (fdatasync: every write before one is on the disk before any
 * write after it starts; a disk may persist the writes between two barriers in any order):
 *
 *   BARRIER (what this session wrote before, e.g. a slot's data, is durable first)
 *   the other copy's entries + header   (any subset may land: the good copy is untouched)
 *   BARRIER
 *   the good copy's entries + header    (any subset may land: the other copy is whole and new)
 *   BARRIER (commit's fsync)
 *
 * "The good copy" is the primary when it is valid, else the backup, so the usual order is
 * backup then primary, and a damaged primary is rebuilt before the backup it is rebuilt from
 * is touched. Entries and header of one copy may share a group: whichever lands alone, the
 * copy fails a CRC (a new header's entries CRC does not match the old array; an old header's
 * does not match the new array) and is read as damaged, never as a wrong table. Without the
 * middle barrier, the two arrays alone landing left both copies failing their CRC (4 of the 16
 * subsets): test/ops/gpt-barriers.test.ts applies every subset of every group.
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
const LAST_USABLE_LBA = 48;
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
function headerSector(good: Copy, myLba: number, alternateLba: number, entriesLba: number, entriesCrc: number, lastUsableLba?: number): Uint8Array {
  const sector = new Uint8Array(good.sector);
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  if (lastUsableLba !== undefined) dv.setBigUint64(LAST_USABLE_LBA, BigInt(lastUsableLba), true);
  dv.setBigUint64(MY_LBA, BigInt(myLba), true);
  dv.setBigUint64(ALTERNATE_LBA, BigInt(alternateLba), true);
  dv.setBigUint64(ENTRIES_LBA, BigInt(entriesLba), true);
  dv.setUint32(ENTRIES_CRC, entriesCrc, true);
  dv.setUint32(HEADER_CRC, 0, true);
  dv.setUint32(HEADER_CRC, crc32(sector.subarray(0, good.header.headerSize)), true);
  return sector;
}

export interface GptRewriteOptions {
  /** Put the backup copy at the disk's last sector when it lies before it (the disk grew), as `sgdisk -e` does. */
  backupToEnd?: boolean;
}

interface Locations {
  primaryLba: number;
  backupLba: number;
  primaryEntriesLba: number;
  backupEntriesLba: number;
  entryBytes: number;
  /** A new last usable LBA (the backup moved to the end), else the good header's. */
  lastUsableLba?: number;
}

/** Where the rewrite puts each copy: the good copy's places, a damaged copy's usual ones. */
function copyLocations(gpt: EditableGpt, diskSize?: number, opts: GptRewriteOptions = {}): Locations {
  const { good, sectorSize: ss } = gpt;
  const entryBytes = good.entriesBytes.length;
  const backupLba = good === gpt.primary ? good.header.alternateLba : good.header.myLba;
  const lastLba = diskSize === undefined ? backupLba : Math.floor(diskSize / ss) - 1;
  if (opts.backupToEnd && lastLba > backupLba) {
    const backupEntriesLba = lastLba - Math.ceil(entryBytes / ss);
    return {
      primaryLba: 1,
      backupLba: lastLba,
      primaryEntriesLba: gpt.primary?.valid ? gpt.primary.header.entriesLba : 2,
      backupEntriesLba,
      entryBytes,
      lastUsableLba: backupEntriesLba - 1,
    };
  }
  return {
    primaryLba: 1,
    backupLba,
    primaryEntriesLba: gpt.primary?.valid ? gpt.primary.header.entriesLba : 2,
    backupEntriesLba: gpt.backup?.valid && gpt.backup.lba === backupLba ? gpt.backup.header.entriesLba : backupLba - Math.ceil(entryBytes / ss),
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

/** One write of a rewrite. */
export interface GptWrite {
  offset: number;
  bytes: Uint8Array;
  copy: 'primary' | 'backup';
}

/**
 * The writes of a rewrite in two groups, to be separated by barriers (see the order at the top):
 * first the copy that is not the good one, then the good one. Each group is entries, header.
 */
export function planGptRewrite(
  gpt: EditableGpt,
  diskSize: number,
  attributes: ReadonlyMap<number, bigint> = new Map(),
  opts: GptRewriteOptions = {},
): GptWrite[][] {
  const { good, sectorSize: ss } = gpt;
  const h = good.header;
  const array = new Uint8Array(good.entriesBytes);
  const dv = new DataView(array.buffer, array.byteOffset, array.byteLength);
  for (const [index, bits] of attributes) {
    if (index < 1 || index > h.entryCount) throw new DiskmintError('BAD_ARGUMENT', `GPT has no entry ${index}`);
    dv.setBigUint64((index - 1) * h.entrySize + ENTRY_ATTRIBUTES, bits, true);
  }
  const entriesCrc = crc32(array);
  const at = copyLocations(gpt, diskSize, opts);
  const primary: GptWrite[] = [
    { offset: at.primaryEntriesLba * ss, bytes: array, copy: 'primary' },
    { offset: at.primaryLba * ss, bytes: headerSector(good, at.primaryLba, at.backupLba, at.primaryEntriesLba, entriesCrc, at.lastUsableLba), copy: 'primary' },
  ];
  const backup: GptWrite[] = [
    { offset: at.backupEntriesLba * ss, bytes: array, copy: 'backup' },
    { offset: at.backupLba * ss, bytes: headerSector(good, at.backupLba, at.primaryLba, at.backupEntriesLba, entriesCrc, at.lastUsableLba), copy: 'backup' },
  ];
  return good === gpt.primary ? [backup, primary] : [primary, backup];
}

/** Issue a planned rewrite: barrier, first group, barrier, second group, barrier. */
export async function writeGptPlan(editor: TableWriter, plan: GptWrite[][]): Promise<void> {
  await editor.barrier();
  for (const group of plan) {
    for (const w of group) await editor.writeBytes(w.offset, w.bytes);
    await editor.barrier();
  }
}

/**
 * Set each listed entry's attributes and rewrite both copies in the crash-safe order.
 * A damaged copy is rebuilt from the good one.
 */
export async function writeGptAttributes(editor: TableWriter, gpt: EditableGpt, attributes: ReadonlyMap<number, bigint>): Promise<void> {
  checkGptCopiesFit(gpt, editor.disk.size);
  await writeGptPlan(editor, planGptRewrite(gpt, editor.disk.size, attributes));
}
