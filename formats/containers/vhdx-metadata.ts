/**
 * VHDX metadata ([MS-VHDX] 2.6): the metadata table (2.6.1) and the metadata region a writer
 * stores with its system items (2.6.2). Integers are little-endian; parsers throw only
 * FormatError (format 'vhdx').
 */
import { hasLatin1, putLatin1, putU64, view } from '../common/bytes.js';
import { fail } from '../common/errors.js';
import { decodeGuid, encodeGuid } from '../common/guid.js';
import { META, MIB, VHDX_MAX_ENTRIES, VHDX_METADATA_TABLE_SIZE } from './vhdx.js';

export interface VhdxMetadataEntry {
  itemId: string;
  /** Offset from the start of the metadata region. */
  offset: number;
  length: number;
  isUser: boolean;
  isVirtualDisk: boolean;
  isRequired: boolean;
}

/** 2.6.1 metadata table header: "metadata", entry count at 10, 32-byte entries from 32. */
export function encodeMetadataTable(entries: readonly VhdxMetadataEntry[]): Uint8Array {
  const out = new Uint8Array(VHDX_METADATA_TABLE_SIZE);
  const dv = view(out);
  putLatin1(out, 0, 'metadata');
  dv.setUint16(10, entries.length, true);
  entries.forEach((e, i) => {
    const at = 32 + i * 32;
    encodeGuid(e.itemId, out, at);
    dv.setUint32(at + 16, e.offset, true);
    dv.setUint32(at + 20, e.length, true);
    dv.setUint32(at + 24, (e.isUser ? 1 : 0) | (e.isVirtualDisk ? 2 : 0) | (e.isRequired ? 4 : 0), true);
  });
  return out;
}

export function decodeMetadataTable(bytes: Uint8Array): VhdxMetadataEntry[] {
  if (bytes.length < VHDX_METADATA_TABLE_SIZE) throw fail('vhdx', 'TRUNCATED', 'VHDX metadata table runs past the end of the file');
  if (!hasLatin1(bytes, 0, 'metadata')) throw fail('vhdx', 'BAD_MAGIC', 'VHDX metadata table has no "metadata" signature');
  const dv = view(bytes);
  const count = dv.getUint16(10, true);
  if (count > VHDX_MAX_ENTRIES) throw fail('vhdx', 'TOO_LARGE', `VHDX metadata table claims ${count} entries (at most 2047)`);
  const out: VhdxMetadataEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 32 + i * 32;
    const flags = dv.getUint32(at + 24, true);
    out.push({
      itemId: decodeGuid(bytes, at),
      offset: dv.getUint32(at + 16, true),
      length: dv.getUint32(at + 20, true),
      isUser: (flags & 1) !== 0,
      isVirtualDisk: (flags & 2) !== 0,
      isRequired: (flags & 4) !== 0,
    });
  }
  return out;
}

/**
 * The 1 MiB metadata region a writer stores: the table, then (2.6.2) File Parameters, Virtual
 * Disk Size, Virtual Disk ID, Logical and Physical Sector Size, packed after the 64 KiB table.
 */
export function encodeMetadataRegion(m: {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  virtualSize: number;
  diskId: string;
  logicalSectorSize: number;
  physicalSectorSize: number;
}): Uint8Array {
  const T = VHDX_METADATA_TABLE_SIZE;
  const out = new Uint8Array(MIB);
  const item = (itemId: string, offset: number, length: number, isVirtualDisk: boolean): VhdxMetadataEntry => ({
    itemId,
    offset: T + offset,
    length,
    isUser: false,
    isVirtualDisk,
    isRequired: true,
  });
  out.set(
    encodeMetadataTable([
      item(META.fileParameters, 0, 8, false),
      item(META.virtualDiskSize, 8, 8, true),
      item(META.virtualDiskId, 16, 16, true),
      item(META.logicalSectorSize, 32, 4, true),
      item(META.physicalSectorSize, 36, 4, true),
    ]),
  );
  const dv = view(out);
  dv.setUint32(T, m.blockSize, true);
  dv.setUint32(T + 4, m.leaveBlocksAllocated ? 1 : 0, true); // bit 0 LeaveBlockAllocated, bit 1 HasParent
  putU64(dv, T + 8, m.virtualSize, true);
  encodeGuid(m.diskId, out, T + 16); // 2.6.2.3: page 83 data
  dv.setUint32(T + 32, m.logicalSectorSize, true);
  dv.setUint32(T + 36, m.physicalSectorSize, true);
  return out;
}
