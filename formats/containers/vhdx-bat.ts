/**
 * The VHDX block allocation table ([MS-VHDX] 2.5): chunk ratio, BAT geometry, where payload
 * block entries sit among the sector bitmap entries, and the 64-bit BAT entry (2.5.1).
 */
import { MIB } from './vhdx.js';

/** 2.5 chunk ratio: payload blocks described by one sector bitmap block. */
export function chunkRatio(logicalSectorSize: number, blockSize: number): number {
  return (2 ** 23 * logicalSectorSize) / blockSize;
}

/** 2.5: BAT geometry of a disk without a parent. */
export function batGeometry(virtualSize: number, blockSize: number, logicalSectorSize: number) {
  const ratio = chunkRatio(logicalSectorSize, blockSize);
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const totalEntries = dataBlocks === 0 ? 0 : dataBlocks + Math.floor((dataBlocks - 1) / ratio);
  return { ratio, dataBlocks, totalEntries };
}

/** 2.5: BAT index of payload block `i` (a sector bitmap entry follows every `ratio` payload entries). */
export function payloadEntryIndex(i: number, ratio: number): number {
  return i + Math.floor(i / ratio);
}

/** 2.5.1 BAT entry: state in bits 0-2, file offset in MiB in bits 20-63. */
export function encodeBatEntry(dv: DataView, at: number, state: number, fileOffset: number): void {
  const mb = fileOffset / MIB;
  dv.setUint32(at, (state & 7) | ((mb % 4096) << 20), true);
  dv.setUint32(at + 4, Math.floor(mb / 4096), true);
}

export function decodeBatEntry(dv: DataView, at: number): { state: number; fileOffset: number } {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  return { state: lo & 7, fileOffset: ((lo >>> 20) + hi * 4096) * MIB };
}
