/**
 * VHD (Virtual PC / Hyper-V "vpc") container: fixed and dynamic disks, detected and read here,
 * written by writer.ts (which says what sizes it records). Structures live in
 * formats/containers/vhd.ts; section names below refer to Microsoft's "Virtual Hard Disk Image
 * Format Specification" (VHD spec).
 */
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import { FormatError, fail } from '../../../formats/common/errors.js';
import {
  VHD_BAT_UNUSED,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_FOOTER_SIZE,
  VHD_SECTOR,
  chsSectors,
  decodeVhdDynamicHeader,
  decodeVhdFooter,
  diskTypeName,
  hasFooterCookie,
  vhdBitmapBytes,
  type VhdFooter,
} from '../../../formats/containers/vhd.js';
import { rangesOfBlocks, readThroughBlocks } from '../blocks.js';
import type { ContainerHandler, ContainerReader } from '../types.js';
import { writeVhd } from './writer.js';
import { vhdEditing } from './edit.js';

const MIB = 1024 * 1024;
/** Readers refuse BATs of more entries than this (64 MiB of table). */
const MAX_BAT_ENTRIES = 1 << 24;
/** Largest virtual size a dynamic image may claim: 2 TiB (the spec's limit is 2040 GiB). */
const MAX_READ_SIZE = 2 ** 41;

async function detectVhd(file: DiskReader): Promise<boolean> {
  try {
    if (file.size < VHD_FOOTER_SIZE - 1) return false;
    const head = await file.read(0, 8);
    if (hasFooterCookie(head)) return true;
    const tail = await file.read(Math.max(0, file.size - VHD_FOOTER_SIZE), VHD_FOOTER_SIZE);
    return hasFooterCookie(tail) || hasFooterCookie(tail, 1);
  } catch {
    return false;
  }
}

/** Find a valid footer: the last 512 bytes, the dynamic copy at 0, or an old 511-byte footer. */
async function findFooter(file: DiskReader): Promise<{ footer: VhdFooter; length: number; where: string }> {
  if (file.size < VHD_FOOTER_SIZE - 1) throw fail('vhd', 'TRUNCATED', `file of ${file.size} bytes is too short for a VHD footer`);
  const tail = await file.read(Math.max(0, file.size - VHD_FOOTER_SIZE), VHD_FOOTER_SIZE);
  /** Why the footer at the end was refused: then a copy at 0 is tried, and this error wins if that fails too. */
  let endError: FormatError | undefined;
  if (hasFooterCookie(tail)) {
    try {
      return { footer: decodeVhdFooter(tail, 'at the end of the file'), length: VHD_FOOTER_SIZE, where: 'end' };
    } catch (e) {
      if (!(e instanceof FormatError)) throw e; // codecs throw only FormatError: anything else is a bug
      endError = e;
    }
  } else if (hasFooterCookie(tail, 1)) {
    // Virtual PC before 2004 wrote a 511-byte footer.
    return { footer: decodeVhdFooter(tail.subarray(1), 'at the end of the file (511 bytes)'), length: VHD_FOOTER_SIZE - 1, where: 'end (511-byte)' };
  }
  const head = await file.read(0, VHD_FOOTER_SIZE);
  if (hasFooterCookie(head)) {
    let copy: VhdFooter;
    try {
      copy = decodeVhdFooter(head, 'copy at offset 0');
    } catch (e) {
      throw endError ?? e;
    }
    if (copy.diskType === VHD_DISK_TYPE.dynamic || copy.diskType === VHD_DISK_TYPE.differencing) {
      return { footer: copy, length: 0, where: 'copy at offset 0 (end footer missing or damaged)' };
    }
  }
  throw endError ?? fail('vhd', 'BAD_MAGIC', 'no VHD footer cookie "conectix" at the end of the file or at offset 0');
}

async function openVhd(file: DiskReader): Promise<ContainerReader> {
  const { footer, length: footerLength, where } = await findFooter(file);
  const size = footer.currentSize;
  const base = {
    format: 'vhd' as const,
    size,
    close: () => file.close(),
  };
  const commonDetails = {
    diskType: diskTypeName(footer.diskType),
    currentSize: footer.currentSize,
    originalSize: footer.originalSize,
    chsSize: chsSectors(footer.geometry) * VHD_SECTOR,
    geometry: `${footer.geometry.cylinders}/${footer.geometry.heads}/${footer.geometry.sectorsPerTrack}`,
    creatorApp: footer.creatorApp.replace(/\0+$/, ''),
    creatorVersion: `0x${footer.creatorVersion.toString(16).padStart(8, '0')}`,
    creatorHostOs: footer.creatorHostOs.replace(/\0+$/, ''),
    timestamp: footer.timestamp,
    uniqueId: Buffer.from(footer.uniqueId).toString('hex'),
    footer: where,
  };
  if (footer.diskType === VHD_DISK_TYPE.differencing) {
    throw fail('vhd', 'BAD_VALUE', 'differencing VHD (it needs a parent disk) is not supported');
  }
  if (footer.diskType === VHD_DISK_TYPE.fixed) {
    if (size > file.size - footerLength) {
      throw fail('vhd', 'TRUNCATED', `fixed VHD claims ${size} bytes but the file holds ${Math.max(0, file.size - footerLength)} bytes of data`);
    }
    return {
      ...base,
      subformat: 'fixed',
      async read(offset, len, into) {
        const start = Math.min(Math.max(0, offset), size);
        return file.read(start, Math.min(size - start, Math.max(0, len)), into);
      },
      async *allocatedRanges() {
        if (size > 0) yield { offset: 0, length: size };
      },
      details: () => ({ ...commonDetails }),
    };
  }
  if (footer.diskType !== VHD_DISK_TYPE.dynamic) {
    throw fail('vhd', 'BAD_VALUE', `VHD disk type ${footer.diskType} is not fixed (2), dynamic (3) or differencing (4)`);
  }
  if (size > MAX_READ_SIZE) throw fail('vhd', 'TOO_LARGE', `dynamic VHD claims ${size} bytes, more than 2 TiB`);
  const hOff = footer.dataOffset;
  if (hOff === null || hOff + VHD_DYNAMIC_HEADER_SIZE > file.size) {
    throw fail('vhd', 'BAD_VALUE', `dynamic VHD header offset ${hOff ?? 'none'} is outside the file`);
  }
  const header = decodeVhdDynamicHeader(await file.read(hOff, VHD_DYNAMIC_HEADER_SIZE));
  const bs = header.blockSize;
  if (bs < VHD_SECTOR || bs > 256 * MIB || (bs & (bs - 1)) !== 0) {
    throw fail('vhd', 'BAD_VALUE', `VHD block size ${bs} is not a power of two from 512 bytes to 256 MiB`);
  }
  const needed = Math.ceil(size / bs);
  if (header.maxTableEntries < needed) {
    throw fail('vhd', 'BAD_VALUE', `VHD BAT has ${header.maxTableEntries} entries of ${bs} bytes; ${size} bytes need ${needed}`);
  }
  if (needed > MAX_BAT_ENTRIES) throw fail('vhd', 'TOO_LARGE', `VHD BAT of ${needed} entries is too large`);
  if (header.tableOffset + needed * 4 > file.size) {
    throw fail('vhd', 'TRUNCATED', `VHD BAT at ${header.tableOffset} (${needed} entries) runs past the end of the file`);
  }
  const batBytes = await file.read(header.tableOffset, needed * 4);
  const bv = new DataView(batBytes.buffer, batBytes.byteOffset, batBytes.length);
  const bat = new Uint32Array(needed);
  const bitmapBytes = vhdBitmapBytes(bs);
  let allocated = 0;
  for (let i = 0; i < needed; i++) {
    const e = bv.getUint32(i * 4);
    bat[i] = e;
    if (e === VHD_BAT_UNUSED) continue;
    allocated++;
    const end = e * VHD_SECTOR + bitmapBytes + Math.min(bs, size - i * bs);
    if (end > file.size) {
      throw fail('vhd', 'TRUNCATED', `VHD block ${i} at sector ${e} runs past the end of the file (${end} > ${file.size})`);
    }
  }
  return {
    ...base,
    subformat: 'dynamic',
    read: (offset, len, into) =>
      readThroughBlocks(
        size,
        bs,
        offset,
        len,
        async (i, within, data) => {
          const e = bat[i];
          if (e === VHD_BAT_UNUSED) return;
          const n = data.length;
          const blockAt = e * VHD_SECTOR;
          if ((await readInto(file, blockAt + bitmapBytes + within, data)) !== n) throw fail('vhd', 'TRUNCATED', `VHD block ${i} is cut short`);
          // VHD spec "Sector Bitmap": bit 7 of byte 0 is the block's first sector; a clear bit
          // means the sector holds no data (zeros here, the parent's data for differencing).
          const s0 = Math.floor(within / VHD_SECTOR);
          const s1 = Math.floor((within + n - 1) / VHD_SECTOR);
          const bitmap = await file.read(blockAt + (s0 >> 3), (s1 >> 3) - (s0 >> 3) + 1);
          for (let s = s0; s <= s1; s++) {
            const byte = bitmap[(s >> 3) - (s0 >> 3)] ?? 0;
            if (byte & (0x80 >> (s & 7))) continue;
            const a = Math.max(within, s * VHD_SECTOR) - within;
            const b = Math.min(within + n, (s + 1) * VHD_SECTOR) - within;
            data.fill(0, a, b);
          }
        },
        into,
      ),
    allocatedRanges() {
      const used = function* () {
        for (let i = 0; i < needed; i++) if (bat[i] !== VHD_BAT_UNUSED) yield i;
      };
      return rangesOfBlocks(used(), bs, size);
    },
    details: () => ({ ...commonDetails, blockSize: bs, batEntries: header.maxTableEntries, allocatedBlocks: allocated }),
  };
}

export const vhdHandler: ContainerHandler = {
  format: 'vhd',
  compresses: false,
  extensions: ['.vhd', '.vpc'],
  optionKeys: ['subformat', 'force_size'],
  detect: detectVhd,
  open: (file) => openVhd(file),
  write: writeVhd,
  editing: vhdEditing,
};
