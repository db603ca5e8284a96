/**
 * `diskmint verify`: is the image sound, and (with an expected layout) is it what the layout
 * says? Exit status contract for the CLI: 0 sound, 1 problems found, 2 not a disk image.
 */
import { finding, type Finding } from '../../model/findings.js';
import { allTables, inspectDisk, inspectionOf, wholeDiskFilesystem, type ImageInspection, type InspectOptions } from '../inspect.js';
import { openDisk } from '../../io/open-disk.js';
import { fatFindings, wholeDiskFatFindings } from './fat.js';
import { ufsFindings, wholeDiskUfsFindings } from './ufs.js';
import { bootChainFindings } from './boot.js';
import { zfsFindings } from '../zfs-findings.js';
import type { PartitionTable } from '../../schemes/types.js';
import { isContainerPartition } from '../../schemes/handler.js';
import { findScheme } from '../../schemes/registry.js';
import type { Layout } from '../../layout/schema.js';
import type { PlannedImage } from '../../layout/plan.js';
import type { VirtualDisk } from '../../model/extents.js';
import { withPlannedImage } from '../build.js';
import { compareWithPlan } from './expect.js';
import { firstDifference } from '../compare.js';
import { virtualDiskReader } from '../../io/run-reader.js';

export interface VerifyOptions extends InspectOptions {
  /** A layout (file path or object) the image must match. */
  expect?: Layout | string;
  /** Seed for the expected layout (only matters for GUIDs derived from it). */
  seed?: string;
  /** Folder the expected layout's contents paths are relative to (default: its file's folder, else cwd). */
  baseDir?: string;
  /** Treat warnings as failures. */
  strict?: boolean;
  /** Also report the boot chain (MBR code, boot stages, OS slot attributes). */
  boot?: boolean;
  /**
   * With `expect`: also compare every byte of the image with what the layout and its input
   * files build (tables, contents, FAT volumes): a reproducibility check.
   */
  contents?: boolean;
}

export interface VerifyReport extends ImageInspection {
  /** True when no finding is an error (or, with `strict`, a warning). */
  ok: boolean;
  errors: number;
  warnings: number;
}

const MiB = 1 << 20;

export async function verifyImage(path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const { reader } = await openDisk(path, opts);
  let inspection: ImageInspection;
  try {
    const { table, findings } = await inspectDisk(reader, opts);
    findings.push(...containerFindings(reader.details()));
    const filesystem = table ? undefined : await wholeDiskFilesystem(reader);
    if (filesystem?.kind.startsWith('fat')) findings.push(...(await wholeDiskFatFindings(reader)));
    if (filesystem?.kind.startsWith('ufs')) findings.push(...(await wholeDiskUfsFindings(reader)));
    findings.push(...(await fatFindings(reader, table)));
    findings.push(...(await ufsFindings(reader, table)));
    findings.push(...(await zfsFindings(reader, table)));
    if (opts.boot) findings.push(...(await bootChainFindings(reader, table)));
    inspection = inspectionOf(path, reader, table, filesystem, findings);
  } finally {
    await reader.close();
  }
  const findings = [...inspection.findings];
  if (!inspection.table && inspection.filesystem) {
    const fs = inspection.filesystem;
    findings.push(
      finding(
        'info',
        'disk.whole-disk-filesystem',
        `no partition table: the whole image is a ${fs.kind} file system${fs.label ? ` labelled "${fs.label}"` : ''}`,
        'disk',
      ),
    );
  } else if (!inspection.table) {
    findings.push(finding('error', 'disk.no-partition-table', 'no GPT, MBR or BSD partition table was found', 'disk'));
  }
  findings.push(...alignmentFindings(inspection.table));
  if (opts.expect !== undefined) {
    const expected = await withPlannedImage(opts.expect, { seed: opts.seed, baseDir: opts.baseDir }, async ({ plan, disk }) => [
      ...compareWithPlan(plan, inspection.table, inspection.sizeBytes),
      ...(opts.contents ? [await contentsFinding(path, plan, disk)] : []),
    ]);
    findings.push(...expected);
  }
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  return { ...inspection, findings, ok: errors === 0 && (!opts.strict || warnings === 0), errors, warnings };
}

/** What the container itself says needs doing: a VHDX log that was replayed in memory only. */
function containerFindings(details: Record<string, string | number | boolean>): Finding[] {
  const entries = details.logReplayedInMemory;
  if (!entries) return [];
  return [
    finding(
      'warning',
      'vhdx.log-pending',
      `the VHDX log holds ${entries} entr${entries === 1 ? 'y' : 'ies'} not yet applied to the file; they were replayed in memory for this check (the file is unchanged), and \`diskmint repair\` applies them, as Hyper-V does on open`,
      'vhdx',
    ),
  ];
}

/** Partitions whose absolute start is not on a 4 KiB or 1 MiB boundary. */
export function alignmentFindings(root: PartitionTable | null): Finding[] {
  const out: Finding[] = [];
  for (const t of allTables(root)) {
    for (const p of t.partitions) {
      // The raw 'c' partition and the extended container are not data partitions.
      if (isContainerPartition(findScheme(t.scheme), p)) continue;
      const start = t.offset + p.firstLba * t.sectorSize;
      const where = `${t.scheme}.partition[${p.index}]`;
      if (start % 4096 !== 0) {
        out.push(
          finding('warning', 'align.4k', `partition ${p.index} starts at byte ${start}, not on a 4 KiB boundary (slow on 4K-sector and flash media)`, where),
        );
      } else if (start % MiB !== 0) {
        out.push(finding('warning', 'align.1m', `partition ${p.index} starts at byte ${start}, not on a 1 MiB boundary`, where));
      }
    }
  }
  return out;
}

/** `verify --expect --contents`: is the image, byte for byte, what the layout builds? */
async function contentsFinding(path: string, plan: PlannedImage, disk: VirtualDisk): Promise<Finding> {
  const { reader } = await openDisk(path);
  const built = virtualDiskReader(disk);
  try {
    const at = reader.size === disk.size ? await firstDifference(reader, built) : Math.min(reader.size, disk.size);
    if (at === undefined) return finding('info', 'expect.contents', `every byte (${disk.size}) is what the layout builds`, 'expect');
    const sector = Math.floor(at / plan.sectorSize);
    const p = plan.partitions.find((x) => sector >= x.startLba && sector < x.startLba + x.sectors);
    const where = p ? `partition ${p.index} (${p.jsonPath}), ${at - p.startLba * plan.sectorSize} bytes in` : 'outside every partition (the tables)';
    const what =
      reader.size === disk.size ? `differs from what the layout builds from byte ${at}: ${where}` : `is ${reader.size} bytes; the layout builds ${disk.size}`;
    return finding('error', 'expect.contents', `the image ${what}`, 'expect');
  } finally {
    await built.close();
    await reader.close();
  }
}
