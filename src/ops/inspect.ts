/**
 * `diskmint info`: find the partition table(s) of an image, nested ones too (an MBR slice or
 * GPT freebsd partition holding a BSD label), together with every problem the probes saw.
 */
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import type { Finding } from '../model/findings.js';
import { openDisk } from '../io/open-disk.js';
import { FREEBSD_TYPE } from '../../formats/schemes/gpt-types.js';
import { probeGpt } from '../schemes/gpt/probe.js';
import { makeMbrProbe } from '../schemes/mbr/probe.js';
import { probeBareEbrChain } from '../schemes/ebr/probe.js';
import { probeBsd } from '../schemes/bsd/probe.js';
import { detectFilesystem } from '../fs/detect.js';
import type { PartitionTable, TableReadResult } from '../schemes/types.js';

export interface InspectOptions {
  /**
   * Logical sector size for MBR disks (GPT detects its own). Default: 512, or 4096 when the
   * table read with 4096-byte sectors finds file systems or BSD labels where partitions start
   * and the 512-byte reading finds fewer (see `mbrSectorSizeEvidence`).
   */
  sectorSize?: number;
}

export interface ImageInspection {
  path: string;
  /** Container format (raw, qcow2, vmdk, vhd, vhdx), detected from content. */
  format: string;
  subformat?: string;
  /** Container facts: cluster size, compression, adapter type ... */
  details: Record<string, string | number | boolean>;
  /** Virtual disk size in bytes. */
  sizeBytes: number;
  /** Null when no partition table was found. */
  table: PartitionTable | null;
  /** With no partition table: the file system the whole image holds, when one is recognised. */
  filesystem?: { kind: string; label?: string };
  findings: Finding[];
}

/** MBR type 0xa5 (FreeBSD slice) and GPT `freebsd` partitions hold BSD labels (FreeBSD mbr.h, gpt.h). */
const BSD_CONTAINER_TYPES = new Set(['0xa5', FREEBSD_TYPE]);

/** Inspect an image file. */
export async function inspectImage(path: string, opts: InspectOptions = {}): Promise<ImageInspection> {
  const { reader, format } = await openDisk(path);
  try {
    const { table, findings } = await inspectDisk(reader, opts);
    await detectFilesystems(reader, table);
    const filesystem = table ? undefined : await wholeDiskFilesystem(reader);
    return { path, format, subformat: reader.subformat, details: reader.details(), sizeBytes: reader.size, table, ...(filesystem ? { filesystem } : {}), findings };
  } finally {
    await reader.close();
  }
}

/** Inspect an open disk: the outer table and nested BSD labels. */
export async function inspectDisk(disk: DiskReader, opts: InspectOptions = {}): Promise<{ table: PartitionTable | null; findings: Finding[] }> {
  const result =
    (await probeGpt(disk)) ?? (await probeBareEbrAnySectorSize(disk, opts.sectorSize)) ?? (await probeMbrAnySectorSize(disk, opts.sectorSize)) ?? (await probeBsd(disk));
  if (!result) return { table: null, findings: [] };
  const findings = [...result.findings];
  await probeNested(disk, result, findings);
  return { table: result.table, findings };
}

/** A bare EBR chain of three or more partitions (src/schemes/ebr/probe.ts), at 512 then 4096 unless told. */
async function probeBareEbrAnySectorSize(disk: DiskReader, sectorSize: number | undefined): Promise<TableReadResult | null> {
  for (const size of sectorSize !== undefined ? [sectorSize] : [512, 4096]) {
    const read = await probeBareEbrChain(disk, size);
    if (read) return read;
  }
  return null;
}

/**
 * An MBR says nothing of its sector size: read it both ways (unless told) and keep the reading
 * whose partitions start where something recognisable is, as a person with a hex editor would.
 * Ties go to 512, the usual size.
 */
async function probeMbrAnySectorSize(disk: DiskReader, sectorSize: number | undefined): Promise<TableReadResult | null> {
  if (sectorSize !== undefined) return makeMbrProbe(sectorSize)(disk);
  const at512 = await makeMbrProbe(512)(disk);
  if (!at512?.table.partitions.length) return at512;
  const at4096 = await makeMbrProbe(4096)(disk);
  if (!at4096) return at512;
  return (await mbrSectorSizeEvidence(disk, at4096)) > (await mbrSectorSizeEvidence(disk, at512)) ? at4096 : at512;
}

/** Partitions whose first bytes hold a file system or a BSD label, less the reading's errors. */
async function mbrSectorSizeEvidence(disk: DiskReader, read: TableReadResult): Promise<number> {
  const t = read.table;
  let score = -read.findings.filter((f) => f.severity === 'error').length;
  for (const p of t.partitions) {
    if (p.typeName === 'extended' || (p.firstLba + 1) * t.sectorSize > disk.size) continue;
    const slice = sliceDiskReader(disk, p.firstLba * t.sectorSize, Math.min(p.sizeBytes, disk.size - p.firstLba * t.sectorSize));
    const fs = await detectFilesystem(slice);
    if (fs.kind !== 'unknown' && fs.kind !== 'empty') score++;
    else if (BSD_CONTAINER_TYPES.has(p.rawType.toLowerCase()) && (await probeBsd(slice))) score++;
  }
  return score;
}

async function probeNested(disk: DiskReader, outer: TableReadResult, findings: Finding[]): Promise<void> {
  const t = outer.table;
  for (const p of t.partitions) {
    if (!BSD_CONTAINER_TYPES.has(p.rawType.toLowerCase())) continue;
    const start = p.firstLba * t.sectorSize;
    const slice = sliceDiskReader(disk, start, p.sizeBytes);
    const inner = await probeBsd(slice);
    if (!inner) continue;
    inner.table.offset = t.offset + start;
    p.nested = inner.table;
    const where = `${t.scheme}.partition[${p.index}].bsd`;
    for (const f of inner.findings) findings.push({ ...f, where: f.where && f.where !== 'bsd' ? `${where}.${f.where}` : where });
  }
}

/** Name what each partition holds (as `lsblk -f` does), from its first 512 KiB. */
async function detectFilesystems(disk: DiskReader, root: PartitionTable | null): Promise<void> {
  for (const t of allTables(root)) {
    for (const p of t.partitions) {
      if (p.nested || p.typeName === 'extended' || (t.scheme === 'bsd' && p.label === 'c')) continue;
      const fs = await detectFilesystem(sliceDiskReader(disk, t.offset + p.firstLba * t.sectorSize, p.sizeBytes));
      p.filesystem = fs.label ? { kind: fs.kind, label: fs.label } : { kind: fs.kind };
    }
  }
}

/**
 * An image with no partition table may be a file system on its own (a FAT volume made by
 * `fat create`, an ESP or UFS image bound for a partition): what it holds, when recognised.
 */
export async function wholeDiskFilesystem(disk: DiskReader): Promise<{ kind: string; label?: string } | undefined> {
  const fs = await detectFilesystem(disk);
  if (fs.kind === 'unknown' || fs.kind === 'empty') return undefined;
  return fs.label ? { kind: fs.kind, label: fs.label } : { kind: fs.kind };
}

/** Every table in the tree, outer first. */
export function allTables(table: PartitionTable | null): PartitionTable[] {
  if (!table) return [];
  return [table, ...table.partitions.flatMap((p) => allTables(p.nested ?? null))];
}
