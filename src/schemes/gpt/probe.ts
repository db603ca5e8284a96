/**
 * probeGpt: find a GUID Partition Table on a disk, read both copies and report what is wrong
 * (UEFI 2.10 section 5.3). Never throws on bad bytes: every FormatError becomes a finding.
 */
import { FormatError } from '../../../formats/common/errors.js';
import { equalBytes } from '../../../formats/common/bytes.js';
import { GPT_REVISION, gptEntryArrayBytes, type GptHeader, type GptPartitionEntry } from '../../../formats/schemes/gpt.js';
import { PARTITION_TABLE_OFFSET } from '../../../formats/schemes/mbr.js';
import { gptAttributeNames } from '../../../formats/schemes/gpt-attributes.js';
import { gptTypeName } from '../../../formats/schemes/gpt-types.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { findOutOfBounds, findOverlaps } from '../checks.js';
import type { PartitionTable, TablePartition, TableProbe } from '../types.js';
import { readGpt, WHERE, type GptCopy, type Role } from './read.js';
import { hybridMbrView } from '../mbr/probe.js';

/** Protective MBR (UEFI 2.10 section 5.2.3): table at byte 446, four 16-byte entries, 0x55AA at 510. */
const MBR_ENTRY_SIZE = 16;
const MBR_ENTRY_COUNT = 4;
const MBR_SIGNATURE_OFFSET = 510;
const MBR_TYPE_OFFSET = 4; // within an entry: status, CHS(3), type, CHS(3), start u32, size u32
const MBR_START_OFFSET = 8;
const MBR_SIZE_OFFSET = 12;
const MBR_TYPE_GPT_PROTECTIVE = 0xee;
const MBR_MAX_SECTORS = 0xffff_ffff;

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function checkProtectiveMbr(sector0: Uint8Array, totalSectors: number, out: Finding[]): void {
  if (sector0.length < 512 || sector0[MBR_SIGNATURE_OFFSET] !== 0x55 || sector0[MBR_SIGNATURE_OFFSET + 1] !== 0xaa) {
    out.push(
      finding(
        'error',
        'gpt.pmbr-missing',
        'Sector 0 has no protective MBR (no 0x55AA signature), so MBR-only tools see an empty disk they may overwrite.',
        WHERE,
      ),
    );
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
  } else if (others > 0) {
    // A hybrid MBR's 0xEE entry covers only what the real entries leave (sgdisk -h, Boot Camp);
    // its shape is checked by hybridFindings.
  } else if (size < expected) {
    out.push(
      finding('warning', 'gpt.pmbr-size', `The protective MBR entry covers only ${size} sectors, not the whole disk (${expected} sectors after LBA 0).`, WHERE),
    );
  } else if (size > expected) {
    out.push(finding('warning', 'gpt.pmbr-size', `The protective MBR entry covers ${size} sectors, more than the disk's ${expected} after LBA 0.`, WHERE));
  }
}

/**
 * A hybrid MBR (UEFI 2.10 section 5.2.3 forbids it; Boot Camp and `sgdisk -h` write it): two
 * views of one disk that tools read differently. A warning naming what the MBR shows, and one
 * for each real MBR entry that matches no GPT partition (the views disagree on the disk).
 */
function hybridFindings(view: PartitionTable, gptParts: readonly TablePartition[]): Finding[] {
  const real = view.partitions.filter((p) => p.rawType !== '0xee');
  const list = real.map((p) => `${p.index} (type ${p.rawType}, sectors ${p.firstLba}-${p.lastLba})`).join(', ');
  const out = [
    finding(
      'warning',
      'mbr.hybrid',
      `Sector 0 is a hybrid MBR: beside the 0xEE protective entry it lists partition${real.length === 1 ? '' : 's'} ${list}; MBR-only tools and BIOS boot code see those, GPT tools the GPT. An edit through one view leaves the other stale.`,
      'mbr',
    ),
  ];
  for (const p of real) {
    if (!gptParts.some((g) => g.firstLba === p.firstLba && g.lastLba === p.lastLba)) {
      out.push(
        finding(
          'warning',
          'mbr.hybrid-mismatch',
          `Hybrid MBR partition ${p.index} (sectors ${p.firstLba}-${p.lastLba}) matches no GPT partition: the two views disagree about the disk.`,
          'mbr',
        ),
      );
    }
  }
  return out;
}

function compareCopies(primary: GptCopy, backup: GptCopy, out: Finding[]): void {
  const p = primary.header;
  const b = backup.header;
  if (!p || !b) return;
  const add = (code: string, message: string) => out.push(finding('error', code, message, WHERE));
  if (p.diskGuid !== b.diskGuid) add('gpt.header-mismatch', `The primary and backup GPT headers name different disk GUIDs (${p.diskGuid} and ${b.diskGuid}).`);
  if (p.entryCount !== b.entryCount || p.entrySize !== b.entrySize) {
    add('gpt.header-mismatch', `The primary GPT has ${p.entryCount} entries of ${p.entrySize} bytes, the backup ${b.entryCount} of ${b.entrySize}.`);
  }
  if (p.firstUsableLba !== b.firstUsableLba || p.lastUsableLba !== b.lastUsableLba) {
    add(
      'gpt.usable-range-mismatch',
      `The primary GPT's usable area (sectors ${p.firstUsableLba}-${p.lastUsableLba}) differs from the backup's (sectors ${b.firstUsableLba}-${b.lastUsableLba}).`,
    );
  }
  const pa = primary.entriesBytes;
  const ba = backup.entriesBytes;
  if (pa && ba && primary.valid && backup.valid && !equalBytes(pa, ba)) {
    add('gpt.entries-mismatch', 'The primary and backup GPT entry arrays differ (each has a valid CRC): the two copies describe different partitions.');
  }
}

/**
 * Which copy is stale, in one finding: a damaged copy beside a whole one, or a whole copy whose
 * entries differ from the primary's (the primary is authoritative, as gpart and sgdisk hold).
 * `diskmint repair` rewrites it from the good copy.
 */
function staleCopyFinding(primary: GptCopy, backup: GptCopy, out: Finding[]): void {
  const say = (stale: Role, good: Role, how: string) =>
    out.push(
      finding(
        'warning',
        'gpt.stale-copy',
        `The ${stale} GPT copy is ${how}; the ${good} copy is whole: \`diskmint repair\` rewrites the ${stale} from it.`,
        WHERE,
      ),
    );
  if (primary.valid && !backup.valid) say('backup', 'primary', 'damaged');
  else if (!primary.valid && backup.valid) say('primary', 'backup', 'damaged');
  else if (primary.valid && backup.valid && primary.entriesBytes && backup.entriesBytes && !equalBytes(primary.entriesBytes, backup.entriesBytes))
    say('backup', 'primary', "out of date (its entries differ from the primary's)");
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
    add(
      'gpt.usable-range',
      `The last usable LBA ${h.lastUsableLba} reaches into the backup entry array or header (LBA ${backupLba - arraySectors}-${backupLba}).`,
    );
  }
}

function checkEntriesLocation(h: GptHeader, ss: number, role: Role, out: Finding[]): void {
  const arraySectors = Math.ceil(gptEntryArrayBytes(h) / ss);
  const end = h.entriesLba + arraySectors - 1;
  const ok = role === 'primary' ? h.entriesLba >= 2 && end < h.firstUsableLba : h.entriesLba > h.lastUsableLba && end < h.myLba;
  if (!ok) {
    out.push(
      finding('error', 'gpt.entries-location', `The ${role} GPT entry array (LBA ${h.entriesLba}-${end}) overlaps its header or the usable area.`, WHERE),
    );
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
      out.push(
        finding(
          'error',
          'gpt.partition-reversed',
          `Partition ${p.index} starts at sector ${p.firstLba}, after its last sector ${p.lastLba}.`,
          `gpt.partition[${p.index}]`,
        ),
      );
    } else ordered.push(p);
  }
  out.push(...findOutOfBounds(ordered, h.firstUsableLba, h.lastUsableLba, WHERE, 'gpt.partition-out-of-bounds', 'the usable area'));
  out.push(...findOverlaps(ordered, WHERE, 'gpt.partition-overlap'));
}

async function probe(disk: DiskReader): Promise<{ table: PartitionTable; findings: Finding[] } | null> {
  const read = await readGpt(disk);
  if (!read) return null;
  const { sectorSize: ss, totalSectors, primary, backup, backupLba, backupBeyondEnd } = read;
  const findings: Finding[] = [];
  if (disk.size % ss !== 0) {
    findings.push(finding('warning', 'gpt.size-not-sector-multiple', `The disk size ${disk.size} bytes is not a whole number of ${ss}-byte sectors.`, WHERE));
  }
  const sector0 = await disk.read(0, 512);
  checkProtectiveMbr(sector0, totalSectors, findings);
  const hybrid = hybridMbrView(sector0, ss, disk.size);
  findings.push(...read.findings);
  if (backup.header && backup.header.alternateLba !== 1) {
    findings.push(
      finding(
        'error',
        'gpt.backup-alternate-lba',
        `The backup GPT header's alternate LBA is ${backup.header.alternateLba}, not 1 where the primary header is.`,
        WHERE,
      ),
    );
  }
  compareCopies(primary, backup, findings);

  const candidates: Array<[GptCopy, Role]> = [
    [primary, 'primary'],
    [backup, 'backup'],
  ];
  const chosen = candidates.find(([c]) => c.valid) ?? candidates.find(([c]) => c.entries) ?? candidates.find(([c]) => c.header);
  staleCopyFinding(primary, backup, findings);
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
  if (hybrid) {
    table.hybridMbr = hybrid;
    findings.push(...hybridFindings(hybrid, parts));
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
