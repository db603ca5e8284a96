/**
 * FAT32 FSInfo sector codec: Microsoft "FAT32 File System Specification" (fatgen103),
 * section 5 "FAT32 FSInfo Sector Structure". The counts are hints; readers check them.
 */
import { view } from '../common/bytes.js';

/** FSInfo signatures (fatgen103 section 5): FSI_LeadSig, FSI_StrucSig, FSI_TrailSig. */
const FSINFO_LEAD = 0x41615252;
const FSINFO_STRUCT = 0x61417272;
const FSINFO_TRAIL = 0xaa550000;

export interface FsInfo {
  freeCount: number;
  nextFree: number;
}

/** FSInfo sector (fatgen103 section 5): lead sig at 0, struct sig at 484, counts at 488/492, trail sig at 508. */
export function encodeFsInfo(info: FsInfo, sectorSize: number): Uint8Array {
  const out = new Uint8Array(sectorSize);
  const v = new DataView(out.buffer);
  v.setUint32(0, FSINFO_LEAD, true);
  v.setUint32(484, FSINFO_STRUCT, true);
  v.setUint32(488, info.freeCount >>> 0, true);
  v.setUint32(492, info.nextFree >>> 0, true);
  v.setUint32(508, FSINFO_TRAIL, true);
  return out;
}

/** Decode an FSInfo sector; undefined when its signatures are missing. */
export function decodeFsInfo(bytes: Uint8Array): FsInfo | undefined {
  if (bytes.length < 512) return undefined;
  const v = view(bytes);
  if (v.getUint32(0, true) !== FSINFO_LEAD || v.getUint32(484, true) !== FSINFO_STRUCT || v.getUint32(508, true) !== FSINFO_TRAIL) return undefined;
  return { freeCount: v.getUint32(488, true), nextFree: v.getUint32(492, true) };
}
