/**
 * Slots on classic NanoBSD MBR images (tools/tools/nanobsd/defaults.sh): code slices of type
 * 0xa5 holding a BSD label whose `a` partition carries the OS; the active flag picks the slice.
 */
import { DiskmintError } from '../../model/errors.js';
import { PARTITION_TABLE_OFFSET, decodeMbrSector } from '../../../formats/schemes/mbr.js';
import { decodeBsdLabel } from '../../../formats/schemes/bsd.js';
import { FormatError } from '../../../formats/common/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { ImageEditor } from '../../ops/slots/editor.js';

/** FreeBSD mbr.h DOSPTYP_386BSD. */
const FREEBSD_SLICE = 0xa5;
/** The MBR partition table starts at byte 446; each entry is 16 bytes, status first (0x80 active). */
const ENTRY_BYTES = 16;

export interface MbrSlot {
  /** Slice number 1-4. */
  index: number;
  startLba: number;
  /** The `a` partition: absolute start and size in 512-byte sectors. */
  dataLba: number;
  dataSectors: number;
}

export async function mbrSlots(disk: DiskReader): Promise<{ slots: MbrSlot[]; active?: number }> {
  const mbr = decodeMbrSector(await disk.read(0, 512));
  const slots: MbrSlot[] = [];
  let active: number | undefined;
  for (const [i, e] of mbr.entries.entries()) {
    if (!e) continue;
    if (e.active) active = i + 1;
    if (e.type !== FREEBSD_SLICE) continue;
    try {
      const label = decodeBsdLabel(await disk.read((e.startLba + 1) * 512, 512));
      const a = label.partitions.find((p) => p.letter === 'a');
      if (!a) continue;
      // Modern labels are relative to the slice; an 'a' offset beyond the slice means absolute (old style).
      const dataLba = a.offset >= e.startLba && a.offset + a.size > e.sectors ? a.offset : e.startLba + a.offset;
      slots.push({ index: i + 1, startLba: e.startLba, dataLba, dataSectors: a.size });
    } catch (err) {
      if (!(err instanceof FormatError)) throw err; // a slice without a label (cfg, data) is not a code slot
    }
  }
  return { slots, active };
}

/** One-sector write of the MBR with only `index` marked active. */
export async function setMbrActive(editor: ImageEditor, index: number): Promise<void> {
  const sector = new Uint8Array(await editor.disk.read(0, 512));
  const { slots } = await mbrSlots(editor.disk);
  if (!slots.some((s) => s.index === index)) throw new DiskmintError('BAD_ARGUMENT', `slice ${index} is not a code slice (code slices: ${slots.map((s) => s.index).join(', ')})`);
  for (let i = 0; i < 4; i++) sector[PARTITION_TABLE_OFFSET + i * ENTRY_BYTES] = i + 1 === index ? 0x80 : 0x00;
  await editor.writeBytes(0, sector);
}
