/**
 * Turn a plan into a virtual disk: the scheme's table bytes plus each partition's contents as
 * extents. Nothing is read or written here; file contents stay references until output.
 */
import { encodeGptTables } from '../../formats/schemes/gpt.js';
import { PARTITION_TABLE_OFFSET, encodeEbrChain, encodeMbrSector, encodeMbrTables } from '../../formats/schemes/mbr.js';
import { encodeBsdLabel } from '../../formats/schemes/bsd.js';
import { VirtualDisk } from '../model/extents.js';
import type { PlannedImage } from './plan.js';

/** UEFI 2.10 section 5.2.3: the protective MBR's single entry has OS type 0xEE. */
const PROTECTIVE_MBR_TYPE = 0xee;

export function assembleDisk(plan: PlannedImage): VirtualDisk {
  const ss = plan.sectorSize;
  const disk = new VirtualDisk(plan.totalSectors * ss);
  const geometry = plan.geometry;

  if (plan.scheme === 'gpt') {
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
      geometry,
      entries: [{ type: PROTECTIVE_MBR_TYPE, startLba: 1, sectors: Math.min(plan.totalSectors - 1, 0xffffffff) }],
    });
    setProtectiveChs(protective);
    disk.placeBytes(0, padToSector(protective, ss));
    disk.placeBytes(tables.primary.lba * ss, tables.primary.bytes);
    disk.placeBytes(tables.backup.lba * ss, tables.backup.bytes);
  } else if (plan.scheme === 'mbr') {
    const primaries = plan.partitions.filter((p) => !p.logical);
    const logicals = plan.partitions.filter((p) => p.logical);
    const sectors = encodeMbrTables({
      bootcode: plan.bootcode,
      diskSignature: plan.diskSignature,
      geometry,
      primaries: primaries.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, active: p.active })),
      extended: plan.extended,
      logicals: logicals.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, active: p.active, ebrLba: p.ebrLba! })),
    });
    for (const s of sectors) disk.placeBytes(s.lba * ss, padToSector(s.bytes, ss));
  } else if (plan.scheme === 'ebr') {
    const sectors = encodeEbrChain({
      start: 0,
      sectors: plan.totalSectors,
      geometry,
      logicals: plan.partitions.map((p) => ({ type: p.mbrType!, startLba: p.startLba, sectors: p.sectors, ebrLba: p.ebrLba! })),
    });
    for (const s of sectors) disk.placeBytes(s.lba * ss, padToSector(s.bytes, ss));
  } else {
    const bootArea = encodeBsdLabel({
      sectorSize: ss,
      totalSectors: plan.totalSectors,
      geometry,
      bootcode: plan.bootcode,
      partitions: plan.partitions.map((p) => ({ letter: p.bsdLetter!, offset: p.startLba, size: p.sectors, fstype: p.bsdFstype! })),
    });
    if (!plan.bootcode) copyLabelForLibparted(bootArea, ss);
    disk.placeBytes(0, bootArea);
  }

  for (const p of plan.partitions) {
    const at = p.startLba * ss;
    const c = p.contents;
    if (c.kind === 'file') disk.place(at, c.size, { kind: 'file', path: c.path, offset: 0 });
    else if (c.kind === 'fat' && c.volume) disk.place(at, c.volume.disk.size, { kind: 'disk', disk: c.volume.disk, offset: 0 });
    else if (c.kind === 'image') {
      const inner = assembleDisk(c.plan);
      disk.place(at, inner.size, { kind: 'disk', disk: inner, offset: 0 });
    }
  }
  return disk;
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

/**
 * UEFI 2.10 table 5.4: the protective entry's StartingCHS is 0x000200; its EndingCHS is written
 * as 0xFFFFFF (the "cannot represent" value), as FreeBSD mkimg's gpt.c and most tools do.
 */
function setProtectiveChs(sector: Uint8Array): void {
  const entry = PARTITION_TABLE_OFFSET; // first partition entry (FreeBSD mbr.h DOSPARTOFF)
  sector.set([0x00, 0x02, 0x00], entry + 1);
  sector.set([0xff, 0xff, 0xff], entry + 5);
}

/** A 512-byte MBR sector on a 4096-byte-sector disk fills the first 512 bytes of its sector. */
function padToSector(bytes: Uint8Array, sectorSize: number): Uint8Array {
  if (bytes.length >= sectorSize) return bytes;
  const out = new Uint8Array(sectorSize);
  out.set(bytes);
  return out;
}
