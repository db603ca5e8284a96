/**
 * verify's ZFS checks: the findings for a vdev's four labels (missing, bad checksums,
 * disagreements, the boot request), on every ZFS partition or a whole disk that is a vdev.
 */
import { FormatError } from '../../formats/common/errors.js';
import { FREEBSD_ZFS_TYPE } from '../../formats/schemes/gpt-types.js';
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import { allTables } from './inspect.js';
import { finding, type Finding } from '../model/findings.js';
import type { PartitionTable } from '../schemes/types.js';
import { activeUberblock, LABEL_SIZE, summariseConfig, VDEV_BOOT_MAGIC } from '../../formats/fs/zfs-label.js';
import { nvString } from '../../formats/fs/nvlist.js';
import { FREEBSD_BOOTONCE, bootenvAsNvlist, currentBootenv, descriptorPool, disagreements, readZfsLabels, type ZfsLabelSet } from './zfs.js';

/** Partition types that hold ZFS vdevs: GPT freebsd-zfs, GPT Solaris/Apple ZFS (Linux), BSD fstype 27. */
const ZFS_TYPES = new Set([FREEBSD_ZFS_TYPE, '6a898cc3-1dd2-11b2-99a6-080020736631', '27']);

/** Findings for one vdev's labels. */
export function labelFindings(set: ZfsLabelSet, where: string): Finding[] {
  const out: Finding[] = [];
  for (const i of set.missing) out.push(finding('error', 'zfs.label-missing', `label ${i} lies past the end of the device`, where));
  for (const l of set.labels) {
    if (!l.config) out.push(finding('error', 'zfs.label-unreadable', `label ${l.index} nvlist does not unpack: ${l.configError}`, where));
    else if (!l.configChecksum.valid)
      out.push(finding('error', 'zfs.label-checksum', `label ${l.index} nvlist checksum is ${l.configChecksum.endian ? 'wrong' : 'missing'}`, where));
    if (!l.bootenv.checksum.endian) out.push(finding('warning', 'zfs.bootenv-unsealed', `label ${l.index} boot environment block has no checksum`, where));
    else if (!l.bootenv.checksum.valid) out.push(finding('error', 'zfs.bootenv-checksum', `label ${l.index} boot environment checksum is wrong`, where));
    const old = l.bootenv.oldBootHeader;
    if (old)
      out.push(
        finding(
          'info',
          'zfs.old-boot-header',
          `label ${l.index} holds an old vdev_boot_header (magic 0x${VDEV_BOOT_MAGIC.toString(16)}, version ${old.version}, boot area at byte ${old.offset}, ${old.size} bytes, ${old.endian}-endian) where newer pools keep a boot environment; it has none`,
          where,
        ),
      );
    if (!l.uberblocks.some((u) => u.checksumValid))
      out.push(finding('error', 'zfs.uberblock-none', `label ${l.index} has no uberblock with a valid checksum`, where));
  }
  for (const d of disagreements(set)) out.push(finding('warning', 'zfs.labels-disagree', `labels disagree: ${d}`, where));
  const good = set.labels.find((l) => l.config && l.configChecksum.valid);
  const pool = good && summariseConfig(good.config!).name;
  const be = currentBootenv(set);
  const once = be && nvString(bootenvAsNvlist(be), FREEBSD_BOOTONCE);
  const named = once && descriptorPool(once);
  if (once && pool && named !== pool) {
    out.push(
      finding(
        'error',
        'zfs.bootonce-other-pool',
        `one-time boot request "${once}" names ${named ? `pool "${named}"` : 'no pool'}, but this vdev belongs to pool "${pool}"`,
        where,
      ),
    );
  }
  if (good) {
    const s = summariseConfig(good.config!);
    const ub = activeUberblock(set.labels.flatMap((l) => l.uberblocks));
    const valid = set.labels.filter((l) => l.configChecksum.valid).map((l) => l.index);
    out.push(
      finding(
        'info',
        'zfs.pool',
        `ZFS pool "${s.name}" (guid ${s.poolGuid}, version ${s.version}), labels ${valid.join(', ')} valid, active uberblock txg ${ub?.txg ?? 'none'}${once ? `, bootonce ${once}` : ''}`,
        where,
      ),
    );
  }
  return out;
}

/**
 * verify's ZFS checks: every freebsd-zfs (or Solaris/Apple ZFS GPT, BSD fstype 27) partition,
 * or the whole disk when it carries ZFS labels itself.
 */
export async function zfsFindings(reader: DiskReader, table: PartitionTable | null): Promise<Finding[]> {
  const out: Finding[] = [];
  const check = async (vdev: DiskReader, where: string, expectZfs: boolean) => {
    let set: ZfsLabelSet;
    try {
      set = await readZfsLabels(vdev);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      if (expectZfs) out.push(finding('warning', 'zfs.too-small', `ZFS partition cannot hold four labels: ${err.message}`, where));
      return;
    }
    if (!set.labels.some((l) => l.config || l.configChecksum.endian)) {
      if (expectZfs) out.push(finding('info', 'zfs.no-labels', 'ZFS partition holds no ZFS label (empty?)', where));
      return;
    }
    out.push(...labelFindings(set, where));
  };
  let found = false;
  for (const t of allTables(table)) {
    for (const p of t.partitions) {
      if (!ZFS_TYPES.has(p.rawType.toLowerCase())) continue;
      found = true;
      await check(sliceDiskReader(reader, t.offset + p.firstLba * t.sectorSize, p.sizeBytes), `${t.scheme}.partition[${p.index}].zfs`, true);
    }
  }
  if (!found && reader.size >= 4 * LABEL_SIZE) await check(reader, 'zfs', false);
  return out;
}
