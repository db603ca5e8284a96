/**
 * The VHD writer: fixed and dynamic disks (structures in formats/containers/vhd.ts; section
 * names refer to Microsoft's "Virtual Hard Disk Image Format Specification", the VHD spec).
 *
 * Sizes written (option names as qemu-img's vpc driver):
 * - default: the size is rounded up to what the CHS geometry expresses, as qemu-img does
 *   without force_size, and the footer's current_size is that CHS product, so every reader
 *   (CHS-based: Virtual PC, qemu; size-based: Hyper-V, 7-Zip) sees the same disk.
 * - force_size=on: the exact size (rounded up to a 512-byte sector) with geometry 65535x16x255,
 *   as qemu-img writes it; QEMU's vpc driver reads current_size whenever the geometry is that
 *   maximum, whatever the creator application, so qemu sees the exact size too.
 * - subformat=fixed,force_size=on (Azure's recipe) additionally rounds the size up to a whole
 *   MiB, because Azure refuses fixed VHDs whose size isn't one; the footer records that size.
 */
import { createHash } from 'node:crypto';
import type { VirtualDisk } from '../../model/extents.js';
import { DiskmintError } from '../../model/errors.js';
import { sourceDateEpoch } from '../../model/source-date.js';
import { fail } from '../../../formats/common/errors.js';
import {
  VHD_DEFAULT_BLOCK_SIZE,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_FOOTER_SIZE,
  VHD_MAX_SIZE,
  VHD_SECTOR,
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  vhdBitmapBytes,
  vhdSizeFor,
  vhdTimestamp,
} from '../../../formats/containers/vhd.js';
import { writeInPlace, writeTablesAndBlocks } from '../block-layout.js';
import type { ByteSink } from '../../io/sink.js';
import type { WriteContext } from '../types.js';

const MIB = 1024 * 1024;

export interface VhdWriteOptions {
  subformat: 'dynamic' | 'fixed';
  forceSize: boolean;
}

export function parseVhdOptions(options: Readonly<Record<string, string>>): VhdWriteOptions {
  const out: VhdWriteOptions = { subformat: 'dynamic', forceSize: false };
  for (const [key, value] of Object.entries(options)) {
    if (key === 'subformat') {
      if (value !== 'dynamic' && value !== 'fixed') {
        throw new DiskmintError('BAD_ARGUMENT', `vhd option subformat=${value}: expected dynamic or fixed`);
      }
      out.subformat = value;
    } else if (key === 'force_size') {
      if (['on', 'true', 'yes'].includes(value)) out.forceSize = true;
      else if (['off', 'false', 'no'].includes(value)) out.forceSize = false;
      else throw new DiskmintError('BAD_ARGUMENT', `vhd option force_size=${value}: expected on or off`);
    } else {
      throw new DiskmintError('BAD_ARGUMENT', `vhd does not take option "${key}" (known: subformat, force_size)`);
    }
  }
  return out;
}

/** The virtual size and geometry the writer records for `bytes` (see the module comment). */
export function vhdLayoutSize(bytes: number, o: VhdWriteOptions) {
  const r = vhdSizeFor(bytes, o.forceSize);
  if (o.forceSize && o.subformat === 'fixed') r.size = Math.ceil(r.size / MIB) * MIB;
  return r;
}

/**
 * Deterministic unique id: SHA-256 over the layout (size, subformat, data runs) and the bytes
 * of in-memory runs (partition tables and labels, which carry the disk's own identifiers),
 * formatted as an RFC 9562 version-8 UUID. Costs no data reads, so one pass still works.
 */
export function layoutId(tag: string, disk: VirtualDisk, size: number): Uint8Array {
  const h = createHash('sha256');
  h.update(`${tag}\0${size}\0${disk.size}\0`);
  let hashed = 0;
  for (const run of disk.runs()) {
    h.update(`${run.offset}+${run.length}:${run.kind};`);
    if (run.kind === 'bytes' && hashed < 64 * MIB) {
      h.update(run.data);
      hashed += run.data.length;
    }
  }
  const id = new Uint8Array(h.digest().subarray(0, 16));
  id[6] = (id[6] & 0x0f) | 0x80;
  id[8] = (id[8] & 0x3f) | 0x80;
  return id;
}

export async function writeVhd(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext): Promise<void> {
  const o = parseVhdOptions(ctx.options);
  const { size, geometry } = vhdLayoutSize(disk.size, o);
  if (size > VHD_MAX_SIZE) {
    throw fail('vhd', 'INVALID_ARGUMENT', `a VHD holds at most 2040 GiB; this disk needs ${size} bytes`);
  }
  const dynamic = o.subformat === 'dynamic';
  if (!dynamic && size === 0) {
    // The footer would be the whole file and also sit at 0, where readers look for a dynamic copy (qemu fails).
    throw fail('vhd', 'INVALID_ARGUMENT', 'a fixed VHD of 0 bytes cannot be written; use subformat=dynamic');
  }
  const footer = encodeVhdFooter({
    features: 2, // "Reserved. This bit must always be set to 1."
    version: 0x00010000,
    dataOffset: dynamic ? VHD_FOOTER_SIZE : null,
    timestamp: vhdTimestamp(sourceDateEpoch() ?? 0),
    creatorApp: 'dmnt',
    creatorVersion: 0x00000001,
    creatorHostOs: 'Wi2k',
    originalSize: size,
    currentSize: size,
    geometry,
    diskType: dynamic ? VHD_DISK_TYPE.dynamic : VHD_DISK_TYPE.fixed,
    uniqueId: layoutId(`vhd-${o.subformat}`, disk, size),
    savedState: 0,
  });
  const progress = (done: number) => ctx.onProgress?.(Math.min(done, disk.size), disk.size);
  if (!dynamic) {
    // VHD spec "Fixed Hard Disk Image": the data, then the footer. Holes stay holes in a file.
    await writeInPlace(disk, sink, 0, progress);
    await sink.skip(size - sink.position);
    await sink.write(footer);
    progress(disk.size);
    return;
  }
  // Dynamic (VHD spec "Dynamic Hard Disk Image"): footer copy, dynamic header, BAT, then each
  // non-zero block as sector bitmap + data, then the footer (the same bytes to a file and a pipe).
  const bs = VHD_DEFAULT_BLOCK_SIZE;
  const entries = Math.ceil(size / bs);
  const tableOffset = VHD_FOOTER_SIZE + VHD_DYNAMIC_HEADER_SIZE;
  const batBytes = Math.ceil((entries * 4) / VHD_SECTOR) * VHD_SECTOR;
  const bitmapBytes = vhdBitmapBytes(bs);
  const dataStart = tableOffset + batBytes;
  const bitmap = new Uint8Array(bitmapBytes).fill(0xff); // every sector present
  await sink.write(footer);
  await sink.write(encodeVhdDynamicHeader({ tableOffset, maxTableEntries: entries, blockSize: bs }));
  await writeTablesAndBlocks(disk, sink, {
    blockSize: bs,
    dataStart,
    prefix: bitmap,
    onProgress: progress,
    async writeTables(stored, put) {
      const bat = new Uint8Array(batBytes).fill(0xff); // 0xFFFFFFFF: block not present
      const batView = new DataView(bat.buffer);
      stored.forEach((block, k) => batView.setUint32(block * 4, (dataStart + k * (bitmapBytes + bs)) / VHD_SECTOR));
      await put(bat, tableOffset);
    },
  });
  await sink.write(footer.slice());
  progress(disk.size);
}
