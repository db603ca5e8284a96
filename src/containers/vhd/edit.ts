/**
 * In-place edits of a VHD (containers/types.ts `ContainerEditing`), through the format's own
 * allocation rules (Microsoft "Virtual Hard Disk Image Format Specification", the VHD spec;
 * QEMU 7.2 block/vpc.c for what qemu does).
 *
 * Fixed disks ("Fixed Hard Disk Image"): the data area is the disk, written in place; the
 * footer never changes.
 *
 * Dynamic disks ("Dynamic Hard Disk Image"), and differencing disks when the reader reads the
 * parent: a write into an allocated block goes into it at once. A write into a block with no
 * BAT entry allocates a whole new block where the footer is now, as vpc.c alloc_block does:
 * sector bitmap all ones (as qemu), then the block's old virtual bytes (zeros, or the parent's)
 * with the new data over them, in one write; the footer follows at the new end of the file.
 * A sector whose bitmap bit is clear reads as zeros (or the parent): data written into such a
 * sector is whole sectors (old bytes around the new), and its bit is set only after the data
 * is durable.
 *
 * Crash order (a cut may land any subset of the writes between two barriers):
 *
 *   group 1: data into allocated blocks, new blocks (bitmap + data) past the old footer's
 *            place, the footer at the new end of the file (issued by write, then flush)
 *   BARRIER
 *   group 2: the BAT sectors whose entries changed (one write per 512-byte BAT sector) and the
 *            bitmap sectors whose bits changed (one write per bitmap sector)
 *   BARRIER
 *
 * After a cut in group 1 nothing new is referenced: the BAT and bitmaps are the old ones, so
 * every sector reads its old bytes. The old footer's place may hold block data and the new
 * footer may be missing: readers then use the footer copy at offset 0 (VHD spec "Hard Disk
 * Footer Format": dynamic disks keep one there; qemu reads that copy first, our reader falls
 * back to it). After a cut in group 2, each BAT entry or bitmap sector that landed points at
 * durable data. The footer and dynamic header never change (no field records allocations),
 * so there is no header group.
 */
import { readInto } from '../../model/disk-reader.js';
import { DiskmintError } from '../../model/errors.js';
import { fail } from '../../../formats/common/errors.js';
import {
  VHD_BAT_UNUSED,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_FOOTER_SIZE,
  VHD_SECTOR,
  decodeVhdBat,
  decodeVhdDynamicHeader,
  decodeVhdFooter,
  markVhdSectorsPresent,
  putVhdBatEntry,
  vhdBitmapBytes,
  vhdSectorPresent,
} from '../../../formats/containers/vhd.js';
import type { ContainerEditSession, ContainerEditing, ContainerReader, EditableFile, InPlaceRefusal } from '../types.js';

/** Largest sector number a BAT entry can hold; 0xFFFFFFFF means "unused" (VHD spec "Block Allocation Table"). */
const MAX_BAT_SECTOR = VHD_BAT_UNUSED - 1;

function refusal(refused: string, rewriteKeepsEverything = true): InPlaceRefusal {
  return { refused, rewriteKeepsEverything };
}

function checkRange(offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > size) {
    throw new DiskmintError('BAD_ARGUMENT', `a write of ${length} bytes at ${offset} does not fit in the VHD's ${size} bytes`);
  }
}

/** The footer the reader chose (its details say which copy), and its 512 bytes to rewrite at the end. */
async function readChosenFooter(file: EditableFile, reader: ContainerReader) {
  const where = String(reader.details().footer ?? '');
  // VHD spec "Hard Disk Footer Format": 512 bytes at the end; Virtual PC before 2004 wrote 511.
  const length = where === 'end' ? VHD_FOOTER_SIZE : where.startsWith('end (511') ? VHD_FOOTER_SIZE - 1 : 0;
  const bytes = new Uint8Array(VHD_FOOTER_SIZE);
  const at = length ? file.size - length : 0;
  await readInto(file, at, bytes.subarray(0, length || VHD_FOOTER_SIZE));
  return { footer: decodeVhdFooter(bytes, length ? 'at the end of the file' : 'copy at offset 0'), bytes, length };
}

async function openForEdit(file: EditableFile, reader: ContainerReader): Promise<ContainerEditSession | InPlaceRefusal> {
  if (reader.format !== 'vhd') return refusal(`the image was opened as ${reader.format}, not vhd`);
  const { footer, bytes: footerBytes, length: footerLength } = await readChosenFooter(file, reader);
  if (footer.savedState) {
    // VHD spec "Saved State": a suspended virtual machine's memory refers to this disk as it is.
    return refusal(
      'the VHD is in a saved state (a suspended virtual machine refers to it as it is): editing it, in place or by a rewrite, would corrupt that machine',
      false,
    );
  }
  const size = footer.currentSize;
  if (footer.diskType === VHD_DISK_TYPE.fixed) return fixedSession(file, size);
  if (footer.diskType === VHD_DISK_TYPE.differencing && reader.subformat !== 'differencing') {
    return refusal(
      'a differencing VHD is edited in place only through a reader of its parent disk, and none was opened; a rewrite would drop the parent link',
      false,
    );
  }
  if (footer.diskType !== VHD_DISK_TYPE.dynamic && footer.diskType !== VHD_DISK_TYPE.differencing) {
    return refusal(`VHD disk type ${footer.diskType} is not fixed, dynamic or differencing`);
  }
  const headerAt = footer.dataOffset ?? 0;
  const header = decodeVhdDynamicHeader(await file.read(headerAt, VHD_DYNAMIC_HEADER_SIZE));
  const bs = header.blockSize;
  const bitmapBytes = vhdBitmapBytes(bs);
  const entries = Math.ceil(size / bs);
  // New blocks go where the footer is; with no valid footer at the end (only the copy at 0: a
  // cut edit's leftovers, say) after the file's last sector, leaving what is there unreferenced.
  const footerAt = footerLength ? file.size - footerLength : Math.ceil(file.size / VHD_SECTOR) * VHD_SECTOR;
  if (footerAt % VHD_SECTOR !== 0) {
    return refusal(`the VHD's footer starts at byte ${footerAt}, not on a 512-byte sector, so no new block can be placed there`);
  }
  if (header.tableOffset % VHD_SECTOR !== 0) {
    return refusal(`the VHD's BAT starts at byte ${header.tableOffset}, not on a 512-byte sector, so its entries cannot be rewritten sector by sector`);
  }
  // The BAT "is always extended to a sector boundary" (VHD spec "Block Allocation Table").
  const batLength = Math.min(Math.ceil((entries * 4) / VHD_SECTOR) * VHD_SECTOR, file.size - header.tableOffset);
  const batBytes = new Uint8Array(batLength);
  await readInto(file, header.tableOffset, batBytes);
  const bat = decodeVhdBat(batBytes, entries);
  const clash = overlap(bat, bs, bitmapBytes, size, [
    { name: 'the footer copy', start: 0, end: VHD_FOOTER_SIZE },
    { name: 'the dynamic header', start: headerAt, end: headerAt + VHD_DYNAMIC_HEADER_SIZE },
    { name: 'the BAT', start: header.tableOffset, end: header.tableOffset + batLength },
    { name: 'the footer', start: footerAt, end: Number.MAX_SAFE_INTEGER },
  ]);
  if (clash) return refusal(`${clash}: writing into it in place would damage the other`);
  return dynamicSession({ file, reader, size, bs, bitmapBytes, bat, batBytes, tableOffset: header.tableOffset, footerAt, footerBytes });
}

interface Extent {
  name: string;
  start: number;
  end: number;
}

/** The first two extents (blocks, and the structures around them) that share bytes, named; else undefined. */
function overlap(bat: Uint32Array, bs: number, bitmapBytes: number, size: number, fixed: Extent[]): string | undefined {
  const extents = [...fixed];
  bat.forEach((sector, i) => {
    if (sector === VHD_BAT_UNUSED) return;
    // A last block may be stored only as far as the disk goes (the reader's rule).
    extents.push({ name: `block ${i}`, start: sector * VHD_SECTOR, end: sector * VHD_SECTOR + bitmapBytes + Math.min(bs, size - i * bs) });
  });
  extents.sort((a, b) => a.start - b.start || a.end - b.end);
  let last: Extent | undefined;
  for (const e of extents) {
    if (last && e.start < last.end) return `${last.name} and ${e.name} share bytes (${e.start} < ${last.end})`;
    if (!last || e.end > last.end) last = e;
  }
  return undefined;
}

/** Fixed disk: the data area is the disk; writes go straight there and flush is one barrier. */
function fixedSession(file: EditableFile, size: number): ContainerEditSession {
  let unsynced = false;
  return {
    async write(offset, data) {
      checkRange(offset, data.length, size);
      if (!data.length) return;
      await file.write(offset, data);
      unsynced = true;
    },
    async flush() {
      if (!unsynced) return;
      await file.barrier();
      unsynced = false;
    },
  };
}

interface DynamicState {
  file: EditableFile;
  reader: ContainerReader;
  size: number;
  bs: number;
  bitmapBytes: number;
  /** Entries as they will be after the next flush (new blocks included). */
  bat: Uint32Array;
  /** The BAT's sectors as they will be after the next flush. */
  batBytes: Uint8Array;
  tableOffset: number;
  /** Where the next new block goes: the old footer's place, then after each new block. */
  footerAt: number;
  footerBytes: Uint8Array;
}

function dynamicSession(s: DynamicState): ContainerEditSession {
  const { file, reader, size, bs, bitmapBytes, bat } = s;
  const unit = bitmapBytes + bs;
  let nextFree = s.footerAt;
  /** Blocks this session allocated: bitmap all ones, data all written. */
  const newBlocks = new Set<number>();
  /** BAT sectors (index in the table) and bitmap sectors ({block, sector}) that group 2 writes. */
  const dirtyBat = new Set<number>();
  const dirtyBitmaps = new Map<number, Set<number>>();
  /** Bitmaps of pre-existing blocks touched so far, as they will be after the next flush. */
  const bitmaps = new Map<number, Uint8Array>();
  let unsynced = false;
  let footerMoved = false;
  const differencing = reader.subformat === 'differencing';

  async function bitmapOf(block: number): Promise<Uint8Array> {
    let b = bitmaps.get(block);
    if (!b) {
      b = new Uint8Array(bitmapBytes);
      await readInto(file, bat[block] * VHD_SECTOR, b);
      bitmaps.set(block, b);
    }
    return b;
  }

  /** The current bytes of sector `sector` of allocated block `block` (the file's, or zeros/the parent's when its bit is clear). */
  async function currentSector(block: number, sector: number, into: Uint8Array): Promise<void> {
    const bitmap = newBlocks.has(block) ? undefined : await bitmapOf(block);
    if (!bitmap || vhdSectorPresent(bitmap, sector)) {
      await readInto(file, bat[block] * VHD_SECTOR + bitmapBytes + sector * VHD_SECTOR, into);
    } else {
      await readInto(reader, block * bs + sector * VHD_SECTOR, into);
    }
  }

  /**
   * A new block at the end for `block`: bitmap all ones, the old virtual bytes (zeros, or the
   * parent's) with `piece` at `within`, in one write. A dynamic block's bytes after the piece
   * are written only as far as the file already reaches (the old footer's place): past its end
   * the file reads zeros, and the footer written at flush makes the file cover the whole block
   * before the BAT names it. So a block filled by several unaligned writes is written once.
   */
  async function allocate(block: number, within: number, piece: Uint8Array): Promise<void> {
    const at = nextFree;
    const blockLength = Math.min(bs, size - block * bs);
    const pieceEnd = within + piece.length;
    const length = differencing ? blockLength : Math.max(pieceEnd, Math.min(blockLength, file.size - at - bitmapBytes));
    const bytes = new Uint8Array(bitmapBytes + length);
    bytes.fill(0xff, 0, bitmapBytes); // every sector present, as vpc.c alloc_block writes it
    const data = bytes.subarray(bitmapBytes);
    if (differencing) {
      if (within > 0) await readInto(reader, block * bs, data.subarray(0, within));
      if (pieceEnd < blockLength) await readInto(reader, block * bs + pieceEnd, data.subarray(pieceEnd));
    }
    data.set(piece, within);
    await file.write(at, bytes);
    unsynced = true;
    footerMoved = true;
    nextFree = at + unit;
    newBlocks.add(block);
    bat[block] = at / VHD_SECTOR;
    putVhdBatEntry(s.batBytes, block, bat[block]);
    dirtyBat.add(Math.floor((block * 4) / VHD_SECTOR));
  }

  /** `piece` into allocated block `block` at `within`: in place; clear sectors written whole, their bits set in memory. */
  async function writeAllocated(block: number, within: number, piece: Uint8Array): Promise<void> {
    const dataAt = bat[block] * VHD_SECTOR + bitmapBytes;
    const s0 = Math.floor(within / VHD_SECTOR);
    const s1 = Math.ceil((within + piece.length) / VHD_SECTOR);
    const bitmap = newBlocks.has(block) ? undefined : await bitmapOf(block);
    let allPresent = true;
    for (let sector = s0; bitmap && sector < s1 && allPresent; sector++) allPresent = vhdSectorPresent(bitmap, sector);
    if (allPresent) {
      await file.write(dataAt + within, piece);
      unsynced = true;
      return;
    }
    // Whole sectors: the partial first and last ones keep their current bytes around the piece.
    const start = s0 * VHD_SECTOR;
    const end = Math.min(s1 * VHD_SECTOR, Math.min(bs, size - block * bs));
    const whole = new Uint8Array(end - start);
    if (within > start) await currentSector(block, s0, whole.subarray(0, VHD_SECTOR));
    const pieceEnd = within + piece.length;
    if (pieceEnd < end) await currentSector(block, s1 - 1, whole.subarray((s1 - 1) * VHD_SECTOR - start));
    whole.set(piece, within - start);
    await file.write(dataAt + start, whole);
    unsynced = true;
    const changed = markVhdSectorsPresent(bitmap!, s0, s1);
    if (changed.length) {
      const set = dirtyBitmaps.get(block) ?? new Set<number>();
      for (const c of changed) set.add(c);
      dirtyBitmaps.set(block, set);
    }
  }

  return {
    async write(offset, data) {
      checkRange(offset, data.length, size);
      if (!data.length) return;
      const first = Math.floor(offset / bs);
      const last = Math.floor((offset + data.length - 1) / bs);
      let needed = 0;
      for (let b = first; b <= last; b++) if (bat[b] === VHD_BAT_UNUSED) needed++;
      if (needed && (nextFree + (needed - 1) * unit) / VHD_SECTOR > MAX_BAT_SECTOR) {
        throw fail('vhd', 'TOO_LARGE', `the VHD has no room for ${needed} more blocks: a BAT entry addresses at most sector ${MAX_BAT_SECTOR}`);
      }
      for (let b = first; b <= last; b++) {
        const from = Math.max(offset, b * bs);
        const to = Math.min(offset + data.length, (b + 1) * bs);
        const piece = data.subarray(from - offset, to - offset);
        if (bat[b] !== VHD_BAT_UNUSED) await writeAllocated(b, from - b * bs, piece);
        else if (differencing || piece.some((x) => x !== 0)) await allocate(b, from - b * bs, piece);
        // else: zeros into a dynamic disk's hole, which reads as zeros already.
      }
    },
    async flush() {
      // Group 1 ends: the footer after the last new block (its bytes unchanged: no field moves).
      if (footerMoved) {
        await file.write(nextFree, s.footerBytes);
        footerMoved = false;
      }
      if (unsynced) await file.barrier();
      unsynced = false;
      // Group 2: the entries and bits that make group 1 visible.
      if (!dirtyBat.size && !dirtyBitmaps.size) return;
      for (const k of [...dirtyBat].sort((a, b) => a - b)) {
        const at = k * VHD_SECTOR;
        await file.write(s.tableOffset + at, s.batBytes.slice(at, at + VHD_SECTOR));
      }
      for (const block of [...dirtyBitmaps.keys()].sort((a, b) => a - b)) {
        const bitmap = bitmaps.get(block)!;
        for (const k of [...dirtyBitmaps.get(block)!].sort((a, b) => a - b)) {
          await file.write(bat[block] * VHD_SECTOR + k * VHD_SECTOR, bitmap.slice(k * VHD_SECTOR, (k + 1) * VHD_SECTOR));
        }
      }
      dirtyBat.clear();
      dirtyBitmaps.clear();
      await file.barrier();
    },
  };
}

export const vhdEditing: ContainerEditing = { openForEdit };
