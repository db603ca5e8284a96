/**
 * probeBsd: read a BSD disklabel from the start of a slice (or a whole disk) and verify it.
 * The label is at LABELSECTOR 1: byte 512 on 512-byte-sector media, byte 4096 on 4Kn media.
 * Last resort: byte 64 of sector 0, the Alpha layout that GNU parted's "bsd" label uses
 * (libparted `labels/bsd.c` BSD_LABEL_OFFSET 64); reported as an info finding.
 */
import type { DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { findOutOfBounds, findOverlaps } from '../checks.js';
import type { PartitionTable, TablePartition, TableProbe, TableReadResult } from '../types.js';
import { BSD_MAGIC, BSD_NPARTS_MAX, bsdFstypeName, decodeBsdLabel, type BsdLabel } from '../../../formats/schemes/bsd.js';
import { FormatError } from '../../../formats/common/errors.js';

const WHERE = 'bsd';
/** Bytes read at the label: struct disklabel with BSD_NPARTS_MAX (20) slots is 148 + 320. */
const LABEL_READ_BYTES = 512;
/** Where d_magic2 sits (bsd.h). */
const OFF_MAGIC2 = 132;
const OFF_NPARTITIONS = 138;
const RAW_LETTER = 'c';

function magicAt(b: Uint8Array, off: number): boolean {
  return b.length >= off + 4 && (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0 === BSD_MAGIC;
}

function putMagic(b: Uint8Array, off: number): void {
  b[off] = BSD_MAGIC & 0xff;
  b[off + 1] = (BSD_MAGIC >>> 8) & 0xff;
  b[off + 2] = (BSD_MAGIC >>> 16) & 0xff;
  b[off + 3] = (BSD_MAGIC >>> 24) & 0xff;
}

/** Parse what we can of a damaged label, recording what was wrong. Null if nothing usable. */
function lenientParse(raw: Uint8Array, findings: Finding[]): BsdLabel | null {
  const bytes = raw.slice();
  const m1 = magicAt(bytes, 0);
  const m2 = magicAt(bytes, OFF_MAGIC2);
  if (!m1 && !m2) return null;
  if (!m1 || !m2) {
    findings.push(finding('error', 'bsd.magic', `the label's ${m1 ? 'second (d_magic2)' : 'first (d_magic)'} magic number is missing`, WHERE));
    putMagic(bytes, 0);
    putMagic(bytes, OFF_MAGIC2);
  }
  if (bytes.length > OFF_NPARTITIONS + 1) {
    const n = bytes[OFF_NPARTITIONS] | (bytes[OFF_NPARTITIONS + 1] << 8);
    if (n > BSD_NPARTS_MAX) {
      findings.push(
        finding(
          'error',
          'bsd.too-many-partitions',
          `d_npartitions is ${n}, more than the ${BSD_NPARTS_MAX} FreeBSD allows; reading the first ${BSD_NPARTS_MAX}`,
          WHERE,
        ),
      );
      bytes[OFF_NPARTITIONS] = BSD_NPARTS_MAX;
      bytes[OFF_NPARTITIONS + 1] = 0;
    }
  }
  try {
    return decodeBsdLabel(bytes);
  } catch (e) {
    if (e instanceof FormatError) {
      findings.push(finding('error', `bsd.${e.code.toLowerCase()}`, e.message, WHERE));
      return null;
    }
    throw e;
  }
}

/** Where labels are looked for, in order: byte offset and the sector size it implies. */
const LOCATIONS = [
  { at: 512, sectorSize: 512 }, // LABELSECTOR 1, LABELOFFSET 0
  { at: 4096, sectorSize: 4096 }, // the same on 4Kn media
  { at: 64, sectorSize: 512 }, // Alpha / GNU parted: sector 0, offset 64
];

/** Probe a slice (or disk) for a BSD label at byte 512, then 4096, then 64. */
export const probeBsd: TableProbe = async (disk: DiskReader): Promise<TableReadResult | null> => {
  for (const { at, sectorSize } of LOCATIONS) {
    if (disk.size < at + OFF_MAGIC2 + 4) continue;
    const bytes = await disk.read(at, LABEL_READ_BYTES);
    if (!magicAt(bytes, 0) && !magicAt(bytes, OFF_MAGIC2)) continue;
    const findings: Finding[] = [];
    if (at === 64) findings.push(finding('info', 'bsd.alpha-location', 'label found at byte 64 of sector 0 (Alpha/GNU parted layout), not in sector 1', WHERE));
    const label = lenientParse(bytes, findings);
    if (!label) return { table: emptyTable(disk, sectorSize), findings };
    return { table: buildTable(disk, label, sectorSize, findings), findings };
  }
  return null;
};

function emptyTable(disk: DiskReader, sectorSize: number): PartitionTable {
  return { scheme: 'bsd', sectorSize, offset: 0, diskBytes: disk.size, partitions: [] };
}

function buildTable(disk: DiskReader, label: BsdLabel, sectorSize: number, findings: Finding[]): PartitionTable {
  // The label's location implies the sector size; d_secsize should agree.
  if (label.secsize !== sectorSize) {
    findings.push(
      finding(
        'warning',
        'bsd.secsize',
        `d_secsize is ${label.secsize} but the label's location implies ${sectorSize}-byte sectors; using ${sectorSize}`,
        WHERE,
      ),
    );
  }
  if (!label.checksumValid) {
    findings.push(finding('error', 'bsd.checksum', `label checksum 0x${label.checksum.toString(16).padStart(4, '0')} does not match its contents`, WHERE));
  }
  const sliceSectors = Math.floor(disk.size / sectorSize);
  if (label.secperunit > sliceSectors) {
    findings.push(finding('error', 'bsd.secperunit-beyond-slice', `d_secperunit (${label.secperunit}) exceeds the slice (${sliceSectors} sectors)`, WHERE));
  }
  const raw = label.partitions.find((p) => p.letter === RAW_LETTER);
  const base = raw && raw.offset !== 0 ? raw.offset : 0;
  if (base !== 0) {
    findings.push(
      finding('info', 'bsd.absolute-offsets', `partition c starts at ${base}: offsets are absolute (old style); shown relative to the slice`, WHERE),
    );
  }
  const partitions: TablePartition[] = label.partitions
    .filter((p) => p.size > 0)
    .map((p) => ({
      index: p.letter.charCodeAt(0) - 0x60,
      typeName: bsdFstypeName(p.fstype) ?? String(p.fstype),
      rawType: String(p.fstype),
      label: p.letter,
      firstLba: p.offset - base,
      lastLba: p.offset - base + p.size - 1,
      sizeBytes: p.size * sectorSize,
    }));
  const unitSectors = label.secperunit > 0 ? Math.min(label.secperunit, sliceSectors) : sliceSectors;
  const what = unitSectors < sliceSectors ? 'd_secperunit' : 'the slice';
  findings.push(...findOutOfBounds(partitions, 0, unitSectors - 1, WHERE, 'bsd.partition-outside-slice', what));
  findings.push(
    ...findOverlaps(
      partitions.filter((p) => p.label !== RAW_LETTER),
      WHERE,
      'bsd.overlap',
    ),
  );
  return { scheme: 'bsd', sectorSize, offset: 0, diskBytes: disk.size, partitions };
}
