/** A plan's BSD label: the boot area (boot code, the label in sector 1). */
import { encodeBsdLabel } from '../../../formats/schemes/bsd.js';
import type { TableBytes, TablePlan } from '../handler.js';

export function encodeBsd(plan: TablePlan): TableBytes[] {
  const ss = plan.sectorSize;
  const bootArea = encodeBsdLabel({
    sectorSize: ss,
    totalSectors: plan.totalSectors,
    geometry: plan.geometry,
    bootcode: plan.bootcode,
    partitions: plan.partitions.map((p) => ({ letter: p.bsdLetter!, offset: p.startLba, size: p.sectors, fstype: p.bsdFstype! })),
  });
  if (!plan.bootcode) copyLabelForLibparted(bootArea, ss);
  return [{ offset: 0, bytes: bootArea }];
}

/**
 * FreeBSD reads the label at sector 1 (bsd.h LABELSECTOR 1, LABELOFFSET 0). libparted (and so
 * parted) only looks at sector 0, byte 64 (the Alpha/NetBSD place). With no boot code, sector 0
 * is unused, so a second copy there lets parted read the label without disturbing FreeBSD.
 */
const LIBPARTED_LABEL_OFFSET = 64;
const BSD_LABEL_FIXED_BYTES = 148; // d_partitions starts at byte 148 of struct disklabel
const BSD_PARTITION_BYTES = 16;

function copyLabelForLibparted(bootArea: Uint8Array, sectorSize: number): void {
  const npartitions = bootArea[sectorSize + 138] | (bootArea[sectorSize + 139] << 8); // d_npartitions (u16 at 138)
  const length = BSD_LABEL_FIXED_BYTES + npartitions * BSD_PARTITION_BYTES;
  if (LIBPARTED_LABEL_OFFSET + length > 512) return; // would run into the real label
  bootArea.copyWithin(LIBPARTED_LABEL_OFFSET, sectorSize, sectorSize + length);
}
