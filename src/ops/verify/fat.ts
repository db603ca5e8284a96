/**
 * verify's look inside FAT partitions: the EFI System Partition against the UEFI rules
 * (UEFI 2.10 section 13.3.1.1: FAT32 for system partitions; section 3.5.1.1: removable-media
 * loaders \EFI\BOOT\BOOT{arch}.EFI), and every FAT volume's own consistency.
 */
import { sliceDiskReader, type DiskReader } from '../../model/disk-reader.js';
import { finding, type Finding } from '../../model/findings.js';
import { FormatError } from '../../../formats/common/errors.js';
import { openFat } from '../../fs/fat/index.js';
import { allTables } from '../inspect.js';
import type { PartitionTable, TablePartition } from '../../schemes/types.js';

const ESP_TYPES = new Set(['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', '0xef']);
/** Other partition types that usually hold FAT (GPT basic data; MBR FAT12/16/32 variants). */
const FAT_TYPES = new Set(['ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', '0x01', '0x04', '0x06', '0x0b', '0x0c', '0x0e']);

/** UEFI 2.10 section 3.5.1.1, table 3-2: removable-media boot file names by architecture. */
export const REMOVABLE_MEDIA_LOADERS: ReadonlyArray<[string, string]> = [
  ['BOOTX64.EFI', 'x86-64'],
  ['BOOTIA32.EFI', 'IA-32'],
  ['BOOTAA64.EFI', 'AArch64'],
  ['BOOTARM.EFI', 'ARM'],
  ['BOOTRISCV64.EFI', 'RISC-V 64'],
];

/** fatgen103: a FAT32 volume has at least 65525 clusters. */
const FAT32_MIN_CLUSTERS = 65525;

export async function fatFindings(disk: DiskReader, root: PartitionTable | null): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const t of allTables(root)) {
    for (const p of t.partitions) {
      const raw = p.rawType.toLowerCase();
      const isEsp = ESP_TYPES.has(raw);
      if (!isEsp && !FAT_TYPES.has(raw)) continue;
      out.push(...(await checkFatPartition(disk, t, p, isEsp)));
    }
  }
  return out;
}

async function checkFatPartition(disk: DiskReader, t: PartitionTable, p: TablePartition, isEsp: boolean): Promise<Finding[]> {
  const where = `${t.scheme}.partition[${p.index}]`;
  const slice = sliceDiskReader(disk, t.offset + p.firstLba * t.sectorSize, p.sizeBytes);
  let fat;
  try {
    fat = await openFat(slice);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    if (!isEsp) return [];
    // An unformatted ESP (all zeros) is a warning; anything else that isn't FAT is an error.
    const head = await slice.read(0, 512);
    return head.every((b) => b === 0)
      ? [finding('warning', 'esp.empty', `EFI System Partition ${p.index} holds no file system yet`, where)]
      : [finding('error', 'esp.not-fat', `EFI System Partition ${p.index} is not a FAT volume: ${err.message}`, where)];
  }
  return fatVolumeFindings(fat, isEsp ? `EFI System Partition ${p.index}` : `FAT volume in partition ${p.index}`, where, isEsp);
}

/**
 * An image that is a FAT volume itself (no partition table; `fat create` makes these): its
 * consistency, and the ESP rules when it has an \EFI folder (an ESP image bound for a partition).
 */
export async function wholeDiskFatFindings(disk: DiskReader): Promise<Finding[]> {
  let fat;
  try {
    fat = await openFat(disk);
  } catch (err) {
    if (err instanceof FormatError) return [];
    throw err;
  }
  const efi = await fat.stat('/EFI').catch(() => undefined);
  const isEsp = efi?.isDirectory === true;
  return fatVolumeFindings(fat, isEsp ? 'The EFI System Partition image' : 'The FAT volume', 'disk', isEsp);
}

async function fatVolumeFindings(fat: Awaited<ReturnType<typeof openFat>>, what: string, where: string, isEsp: boolean): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const problem of await fat.check()) out.push(finding(problem.severity, `fat.${problem.code}`, `${what}: ${problem.message}`, where));
  if (!isEsp) return out;
  if (fat.type !== 32) {
    out.push(
      finding(
        'warning',
        'esp.fat-type',
        `${what} is FAT${fat.type}; UEFI requires firmware to read FAT32 system partitions, and some firmware rejects FAT12/16 ESPs`,
        where,
      ),
    );
  } else if (fat.clusters < FAT32_MIN_CLUSTERS) {
    out.push(
      finding(
        'warning',
        'esp.fat32-clusters',
        `${what} is FAT32 with only ${fat.clusters} clusters (the specification's minimum is ${FAT32_MIN_CLUSTERS}); strict firmware reads it as FAT16`,
        where,
      ),
    );
  }
  let loaders = 0;
  for (const [name, arch] of REMOVABLE_MEDIA_LOADERS) {
    const entry = await fat.stat(`/EFI/BOOT/${name}`).catch(() => undefined);
    if (entry && !entry.isDirectory) {
      loaders++;
      out.push(finding('info', 'esp.loader', `${what} has the ${arch} removable-media loader \\EFI\\BOOT\\${name} (${entry.size} bytes)`, where));
    }
  }
  if (loaders === 0) {
    out.push(
      finding(
        'warning',
        'esp.no-loader',
        `${what} has no removable-media loader (\\EFI\\BOOT\\BOOTX64.EFI, BOOTAA64.EFI, BOOTIA32.EFI or BOOTRISCV64.EFI); it boots only through a firmware boot entry`,
        where,
      ),
    );
  }
  return out;
}
