/**
 * `diskmint info`: find the partition table(s) of an image, nested ones too (an MBR slice or
 * GPT freebsd partition holding a BSD label), together with every problem the probes saw.
 */
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import type { Finding } from '../model/findings.js';
import { openDisk, type OpenDiskOptions } from '../io/open-disk.js';
import { detectFilesystem } from '../fs/detect.js';
import { PROBE_ORDER, SCHEME_HANDLERS, findScheme } from '../schemes/registry.js';
import { isContainerPartition } from '../schemes/handler.js';
import type { PartitionTable, TablePartition, TableReadResult } from '../schemes/types.js';
import type { ContainerReader } from '../containers/types.js';
import type { DataMap } from '../containers/raw/reader.js';

export interface InspectOptions extends OpenDiskOptions {
  /**
   * Logical sector size for MBR disks (GPT detects its own). Default: 512, or 4096 when the
   * table read with 4096-byte sectors finds file systems or BSD labels where partitions start
   * and the 512-byte reading finds fewer (see `sectorSizeEvidence`).
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
  /** Raw images: how their data is found, from the kernel's map (SEEK_DATA) or by reading it all. */
  dataMap?: DataMap;
}

/** What `info` and `verify` report of an opened image: its container facts, table and findings. */
export function inspectionOf(
  path: string,
  reader: ContainerReader & { dataMap?: DataMap },
  table: PartitionTable | null,
  filesystem: ImageInspection['filesystem'],
  findings: Finding[],
): ImageInspection {
  return {
    path,
    format: reader.format,
    subformat: reader.subformat,
    details: reader.details(),
    sizeBytes: reader.size,
    table,
    ...(filesystem ? { filesystem } : {}),
    findings,
    ...(reader.dataMap ? { dataMap: reader.dataMap } : {}),
  };
}

/** Inspect an image file. */
export async function inspectImage(path: string, opts: InspectOptions = {}): Promise<ImageInspection> {
  const { reader } = await openDisk(path, opts);
  try {
    const { table, findings } = await inspectDisk(reader, opts);
    await detectFilesystems(reader, table);
    const filesystem = table ? undefined : await wholeDiskFilesystem(reader);
    return inspectionOf(path, reader, table, filesystem, findings);
  } finally {
    await reader.close();
  }
}

/**
 * Inspect an open disk: the outer table (each registered scheme probed in turn, the first found
 * wins) and tables nested in its partitions (BSD labels in MBR slices).
 */
export async function inspectDisk(disk: DiskReader, opts: InspectOptions = {}): Promise<{ table: PartitionTable | null; findings: Finding[] }> {
  const probeOpts = { sectorSize: opts.sectorSize, evidence: (read: TableReadResult) => sectorSizeEvidence(disk, read) };
  let result: TableReadResult | null = null;
  for (const scheme of PROBE_ORDER) {
    result = await scheme.probe(disk, probeOpts);
    if (result) break;
  }
  if (!result) return { table: null, findings: [] };
  const findings = [...result.findings];
  await probeNested(disk, result, findings);
  return { table: result.table, findings };
}

/** The first nested table a partition holds (a BSD label in an MBR 0xa5 slice), or null. */
async function probeInside(slice: DiskReader, p: TablePartition): Promise<TableReadResult | null> {
  for (const scheme of SCHEME_HANDLERS) {
    if (!scheme.nestedIn?.has(p.rawType.toLowerCase())) continue;
    const inner = await scheme.probe(slice);
    if (inner) return inner;
  }
  return null;
}

/**
 * For schemes that do not record their sector size (MBR): how many partitions start where a
 * file system or a nested table is, less the reading's errors. The reading with more wins.
 */
async function sectorSizeEvidence(disk: DiskReader, read: TableReadResult): Promise<number> {
  const t = read.table;
  let score = -read.findings.filter((f) => f.severity === 'error').length;
  for (const p of t.partitions) {
    if (p.typeName === 'extended' || (p.firstLba + 1) * t.sectorSize > disk.size) continue;
    const slice = sliceDiskReader(disk, p.firstLba * t.sectorSize, Math.min(p.sizeBytes, disk.size - p.firstLba * t.sectorSize));
    const fs = await detectFilesystem(slice);
    if (fs.kind !== 'unknown' && fs.kind !== 'empty') score++;
    else if (await probeInside(slice, p)) score++;
  }
  return score;
}

async function probeNested(disk: DiskReader, outer: TableReadResult, findings: Finding[]): Promise<void> {
  const t = outer.table;
  for (const p of t.partitions) {
    const start = p.firstLba * t.sectorSize;
    const inner = await probeInside(sliceDiskReader(disk, start, p.sizeBytes), p);
    if (!inner) continue;
    inner.table.offset = t.offset + start;
    p.nested = inner.table;
    const scheme = inner.table.scheme;
    const where = `${t.scheme}.partition[${p.index}].${scheme}`;
    for (const f of inner.findings) findings.push({ ...f, where: f.where && f.where !== scheme ? `${where}.${f.where}` : where });
  }
}

/** Name what each partition holds (as `lsblk -f` does), from its first 512 KiB. */
async function detectFilesystems(disk: DiskReader, root: PartitionTable | null): Promise<void> {
  for (const t of allTables(root)) {
    for (const p of t.partitions) {
      if (p.nested || isContainerPartition(findScheme(t.scheme), p)) continue;
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
