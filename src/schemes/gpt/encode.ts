/** A plan's GPT: the protective MBR in sector 0, then both GPT copies (UEFI 2.10 section 5.3). */
import { encodeGptTables } from '../../../formats/schemes/gpt.js';
import { PARTITION_TABLE_OFFSET, encodeMbrSector } from '../../../formats/schemes/mbr.js';
import type { TableBytes, TablePlan } from '../handler.js';
import { padToSector } from '../sectors.js';

/** UEFI 2.10 section 5.2.3: the protective MBR's single entry has OS type 0xEE. */
const PROTECTIVE_MBR_TYPE = 0xee;

export function encodeGpt(plan: TablePlan): TableBytes[] {
  const ss = plan.sectorSize;
  const tables = encodeGptTables({
    sectorSize: ss,
    totalSectors: plan.totalSectors,
    diskGuid: plan.diskGuid!,
    entryCount: plan.entries,
    partitions: plan.partitions.map((p) => ({
      index: p.index,
      typeGuid: p.gptType!,
      guid: p.guid!,
      firstLba: p.startLba,
      lastLba: p.startLba + p.sectors - 1,
      attributes: p.attributes,
      name: p.label ?? '',
    })),
  });
  const protective = encodeMbrSector({
    bootcode: plan.bootcode,
    diskSignature: plan.diskSignature,
    geometry: plan.geometry,
    entries: [{ type: PROTECTIVE_MBR_TYPE, startLba: 1, sectors: Math.min(plan.totalSectors - 1, 0xffffffff) }],
  });
  setProtectiveChs(protective);
  return [
    { offset: 0, bytes: padToSector(protective, ss) },
    { offset: tables.primary.lba * ss, bytes: tables.primary.bytes },
    { offset: tables.backup.lba * ss, bytes: tables.backup.bytes },
  ];
}

/**
 * UEFI 2.10 table 5.4: the protective entry's StartingCHS is 0x000200; its EndingCHS is written
 * as 0xFFFFFF (the "cannot represent" value), as FreeBSD mkimg's gpt.c and most tools do.
 */
function setProtectiveChs(sector: Uint8Array): void {
  const entry = PARTITION_TABLE_OFFSET; // first partition entry (FreeBSD mbr.h DOSPARTOFF)
  sector.set([0x00, 0x02, 0x00], entry + 1);
  sector.set([0xff, 0xff, 0xff], entry + 5);
}
