/**
 * verify's look inside UFS file systems: every partition (or a whole image) holding UFS1/UFS2
 * gets the fsck_ffs -n style check (src/fs/ufs/check.ts); each problem becomes a finding with
 * its `ufs.*` code. A superblock that is found but cannot be opened is itself an error.
 */
import { sliceDiskReader, type DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { FormatError } from '../../../formats/common/errors.js';
import { detectFilesystem } from '../../fs/detect.js';
import { openUfs } from '../../fs/ufs/read.js';
import { isContainerPartition } from '../../schemes/handler.js';
import { findScheme } from '../../schemes/registry.js';
import type { PartitionTable } from '../../schemes/types.js';
import { allTables } from '../inspect.js';

export async function ufsFindings(disk: DiskReader, root: PartitionTable | null): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const t of allTables(root)) {
    for (const p of t.partitions) {
      if (p.nested || isContainerPartition(findScheme(t.scheme), p)) continue;
      const slice = sliceDiskReader(disk, t.offset + p.firstLba * t.sectorSize, p.sizeBytes);
      out.push(...(await ufsVolumeFindings(slice, `UFS file system in partition ${p.index}`, `${t.scheme}.partition[${p.index}]`)));
    }
  }
  return out;
}

/** An image that is a UFS file system itself (no partition table). */
export function wholeDiskUfsFindings(disk: DiskReader): Promise<Finding[]> {
  return ufsVolumeFindings(disk, 'The UFS file system', 'disk');
}

async function ufsVolumeFindings(disk: DiskReader, what: string, where: string): Promise<Finding[]> {
  const kind = (await detectFilesystem(disk)).kind;
  if (kind !== 'ufs1' && kind !== 'ufs2') return [];
  try {
    const ufs = await openUfs(disk);
    return (await ufs.check()).map((p) => finding(p.severity, p.code, `${what}: ${p.message}`, where));
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    return [finding('error', 'ufs.unreadable', `${what} cannot be read: ${err.message}`, where)];
  }
}
