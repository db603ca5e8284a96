/**
 * A bare EBR chain (FreeBSD mkimg `-s ebr`, diskmint's `"scheme": "ebr"`): the contents of an
 * extended partition, its first EBR in sector 0 and every link relative to sector 0.
 *
 * Sector 0 reads as an MBR too. For one or two partitions both readings give the same partitions
 * (1, then an extended entry holding logical 5), so the MBR probe keeps those. From the third
 * partition on, an MBR reading follows the links from the wrong base (the extended entry's start
 * instead of sector 0) and loses them; this probe claims such images: sector 0 has the shape of
 * a first EBR (no boot code or disk signature, entry 1 a partition, entry 2 a link, entries 3
 * and 4 empty) and the chain from sector 0 holds three or more partitions, every EBR signed.
 */
import type { DiskReader } from '../../model/disk-reader.js';
import { finding } from '../../model/findings.js';
import { findOutOfBounds, findOverlaps } from '../checks.js';
import { toPartition } from '../mbr/probe.js';
import type { TableReadResult } from '../types.js';
import { EXTENDED_TYPES, MBR_SECTOR_BYTES, PARTITION_TABLE_OFFSET, decodeMbrSector, walkEbrChainAsync } from '../../../formats/schemes/mbr.js';

const WHERE = 'ebr';
/** Fewer partitions read the same as an MBR (see above). */
const MIN_PARTITIONS = 3;

/** The bare chain at this sector size, or null when the disk does not hold one. */
export async function probeBareEbrChain(disk: DiskReader, sectorSize: number): Promise<TableReadResult | null> {
  if (disk.size < MBR_SECTOR_BYTES) return null;
  const sector0 = await disk.read(0, MBR_SECTOR_BYTES);
  if (sector0.length < MBR_SECTOR_BYTES || sector0.subarray(0, PARTITION_TABLE_OFFSET).some((b) => b !== 0)) return null;
  const [data, link, third, fourth] = decodeMbrSector(sector0).entries;
  if (!data || EXTENDED_TYPES.has(data.type) || !link || !EXTENDED_TYPES.has(link.type) || third || fourth) return null;
  const diskSectors = Math.floor(disk.size / sectorSize);
  const chain = await walkEbrChainAsync(async (lba) => (lba < diskSectors ? disk.read(lba * sectorSize, MBR_SECTOR_BYTES) : undefined), 0);
  if (chain.stop !== 'end' || chain.logicals.length < MIN_PARTITIONS) return null;

  // Numbered as the MBR reading numbers the first two: 1, then logicals from 5.
  const partitions = chain.logicals.map((l, i) => toPartition(i === 0 ? 1 : 4 + i, l.entry, sectorSize, { logical: true }));
  const findings = [
    finding(
      'info',
      'ebr.bare-chain',
      `a bare EBR chain of ${partitions.length} partitions from sector 0 (an extended partition's contents, as mkimg -s ebr writes)`,
      WHERE,
    ),
    ...findOutOfBounds(partitions, 1, diskSectors - 1, WHERE, 'ebr.beyond-disk', 'the disk'),
    ...findOverlaps(partitions, WHERE, 'ebr.overlap'),
  ];
  for (const [i, l] of chain.logicals.entries()) {
    const overwritten = chain.ebrLbas.find((ebr) => ebr !== l.ebrLba && ebr >= partitions[i].firstLba && ebr <= partitions[i].lastLba);
    if (overwritten !== undefined)
      findings.push(finding('error', 'ebr.ebr-inside-partition', `partition ${partitions[i].index} covers the EBR at sector ${overwritten}`, WHERE));
  }
  return { table: { scheme: 'ebr', sectorSize, offset: 0, diskBytes: disk.size, partitions }, findings };
}
