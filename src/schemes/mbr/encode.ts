/** A plan's MBR (primaries, the extended partition and its EBR chain) and a bare EBR chain. */
import { encodeEbrChain, encodeMbrTables } from '../../../formats/schemes/mbr.js';
import type { TableBytes, TablePlan } from '../handler.js';
import { padToSector } from '../sectors.js';

export function encodeMbr(plan: TablePlan): TableBytes[] {
  const primaries = plan.partitions.filter((p) => !p.logical);
  const logicals = plan.partitions.filter((p) => p.logical);
  const sectors = encodeMbrTables({
    bootcode: plan.bootcode,
    diskSignature: plan.diskSignature,
    geometry: plan.geometry,
    primaries: primaries.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, active: p.active })),
    extended: plan.extended,
    logicals: logicals.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, active: p.active, ebrLba: p.ebrLba! })),
  });
  return sectors.map((s) => ({ offset: s.lba * plan.sectorSize, bytes: padToSector(s.bytes, plan.sectorSize) }));
}

/** A bare EBR chain (mkimg -s ebr): the first EBR in sector 0, each partition after its own EBR. */
export function encodeEbr(plan: TablePlan): TableBytes[] {
  const sectors = encodeEbrChain({
    start: 0,
    sectors: plan.totalSectors,
    geometry: plan.geometry,
    logicals: plan.partitions.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, ebrLba: p.ebrLba! })),
  });
  return sectors.map((s) => ({ offset: s.lba * plan.sectorSize, bytes: padToSector(s.bytes, plan.sectorSize) }));
}
