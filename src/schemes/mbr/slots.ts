/**
 * Slots on classic NanoBSD MBR images (tools/tools/nanobsd/defaults.sh): code slices of type
 * 0xa5 holding a BSD label whose `a` partition carries the OS; the active flag picks the slice.
 * Sector numbers are in the disk's logical sectors (512 or 4096 bytes, as the probe detected);
 * the MBR itself is the first 512 bytes of sector 0 either way.
 */
import { DiskmintError } from '../../model/errors.js';
import { MBR_SECTOR_BYTES, PARTITION_TABLE_OFFSET, decodeMbrSector } from '../../../formats/schemes/mbr.js';
import { decodeBsdLabel } from '../../../formats/schemes/bsd.js';
import { FormatError } from '../../../formats/common/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { SlotSupport, TableWriter } from '../handler.js';

/** FreeBSD mbr.h DOSPTYP_386BSD. */
const FREEBSD_SLICE = 0xa5;
/** Each table entry is 16 bytes, status first (0x80 active). */
const ENTRY_BYTES = 16;
const NO_BOOTONCE = 'MBR boot code has no one-time boot: write the slot, then `slot activate` it';
/** Bytes read at a slice's label (struct disklabel with 20 slots is 468). */
const LABEL_READ_BYTES = 512;

export interface MbrSlot {
  /** Slice number 1-4. */
  index: number;
  startLba: number;
  /** The `a` partition: absolute start and size in `sectorSize`-byte sectors. */
  dataLba: number;
  dataSectors: number;
}

/** The code slices of a NanoBSD MBR disk with `sectorSize`-byte sectors, and the active one. */
export async function mbrSlots(disk: DiskReader, sectorSize = 512): Promise<{ slots: MbrSlot[]; active?: number }> {
  const mbr = decodeMbrSector(await disk.read(0, MBR_SECTOR_BYTES));
  const slots: MbrSlot[] = [];
  let active: number | undefined;
  for (const [i, e] of mbr.entries.entries()) {
    if (!e) continue;
    if (e.active) active = i + 1;
    if (e.type !== FREEBSD_SLICE) continue;
    try {
      // bsd.h LABELSECTOR 1: the label is in the slice's second sector.
      const label = decodeBsdLabel(await disk.read((e.startLba + 1) * sectorSize, LABEL_READ_BYTES));
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

/**
 * One-sector write of the MBR with only `index` marked active. A sector is written whole or
 * not at all, so there is no order inside the edit; the barrier before it makes whatever this
 * session wrote first (a slice's data) durable before the flag that boots it, and the commit's
 * fsync after it makes the flag durable before the command reports success.
 */
export async function setMbrActive(editor: TableWriter, index: number, sectorSize = 512): Promise<void> {
  const sector = new Uint8Array(await editor.disk.read(0, MBR_SECTOR_BYTES));
  const { slots } = await mbrSlots(editor.disk, sectorSize);
  if (!slots.some((s) => s.index === index))
    throw new DiskmintError('BAD_ARGUMENT', `slice ${index} is not a code slice (code slices: ${slots.map((s) => s.index).join(', ')})`);
  for (let i = 0; i < 4; i++) sector[PARTITION_TABLE_OFFSET + i * ENTRY_BYTES] = i + 1 === index ? 0x80 : 0x00;
  await editor.barrier();
  await editor.writeBytes(0, sector);
}

export const mbrSlotSupport: SlotSupport = {
  async read(disk, table) {
    const ss = table.sectorSize;
    const { slots, active } = await mbrSlots(disk, ss);
    const act = slots.find((s) => s.index === active);
    return {
      slots: slots.map((s) => ({
        index: s.index,
        label: `s${s.index}a`,
        type: 'freebsd (MBR slice, BSD label a)',
        attributes: s.index === active ? ['active'] : [],
        firstLba: s.dataLba,
        offset: s.dataLba * ss,
        sizeBytes: s.dataSectors * ss,
        isDefault: s.index === active,
      })),
      next: act ? { index: act.index, reason: `slice ${act.index} is marked active` } : { reason: 'no slice is marked active' },
      bootStages: [],
    };
  },
  async target(disk, table, ref, opts) {
    if (opts.bootonce) throw new DiskmintError('BAD_ARGUMENT', NO_BOOTONCE);
    const ss = table.sectorSize;
    const { slots, active } = await mbrSlots(disk, ss);
    const s = slots.find((x) => x.index === Number(ref));
    if (!s)
      throw new DiskmintError('BAD_ARGUMENT', `no code slice ${JSON.stringify(ref)} (slices holding a BSD label: ${slots.map((x) => x.index).join(', ')})`);
    if (s.index === active && !opts.force)
      throw new DiskmintError('BAD_ARGUMENT', `slice ${s.index} is active (it boots by default); write the other slice, or pass --force`);
    return { index: s.index, label: `s${s.index}a`, offset: s.dataLba * ss, sizeBytes: s.dataSectors * ss };
  },
  activate: (editor, table, ref) => setMbrActive(editor, Number(ref), table.sectorSize),
  noOneTimeBoot: { confirm: 'MBR images have no one-time boot state to confirm', bootonce: NO_BOOTONCE },
};
