/** Where each scheme's tables sit, which decides the usable sectors of a layout. */
import { BOOTCODE_KINDS } from '../../bootcode/kinds.js';
import { BSD_BOOT_AREA } from '../../formats/schemes/bsd.js';
import { DEFAULT_MAX_LOGICALS } from '../../formats/schemes/mbr.js';
import type { Layout } from '../layout/schema.js';

/** u32 LBA fields: MBR entries address at most 2^32 - 1 sectors. */
export const MBR_MAX_SECTORS = 0xffffffff;

/** BSD partition letters in slot order, without 'c' (the raw partition; FreeBSD bsd.h RAW_PART 2). 20 slots in all. */
export const BSD_LETTERS = 'abdefghijklmnopqrst';

export const BOOTCODE_LIMITS: Record<Layout['scheme'], { bytes: number; what: string }> = {
  gpt: { bytes: BOOTCODE_KINDS.mbr.maxBytes, what: 'the protective MBR boot area' },
  mbr: { bytes: BOOTCODE_KINDS.mbr.maxBytes, what: 'the MBR boot area' },
  bsd: { bytes: BOOTCODE_KINDS.bsd.maxBytes, what: 'the BSD boot area' },
  ebr: { bytes: 0, what: 'an EBR chain (it has no boot area)' },
};

export interface TableGeometry {
  /** First sector a partition may use. */
  firstUsable: number;
  /** Sectors the table needs at the end of the disk (GPT backup array + header). */
  trailerSectors: number;
  /** GPT entry count. */
  entries: number;
}

export function tableGeometry(layout: Layout, sectorSize: number): TableGeometry {
  if (layout.scheme === 'gpt') {
    const entries = layout.entries ?? 128;
    // UEFI 2.10 section 5.3: LBA 0 protective MBR, LBA 1 header, then the entry array (128-byte entries).
    const entrySectors = Math.ceil((entries * 128) / sectorSize);
    return { firstUsable: 2 + entrySectors, trailerSectors: 1 + entrySectors, entries };
  }
  if (layout.scheme === 'mbr') return { firstUsable: 1, trailerSectors: 0, entries: 4 };
  // A bare EBR chain: the first EBR is sector 0, each partition follows its own EBR.
  if (layout.scheme === 'ebr') return { firstUsable: 0, trailerSectors: 0, entries: DEFAULT_MAX_LOGICALS };
  // BSD: the boot area (8 KiB, label inside) precedes the first partition.
  return { firstUsable: Math.ceil(BSD_BOOT_AREA / sectorSize), trailerSectors: 0, entries: 20 };
}
