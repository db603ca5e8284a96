/**
 * The VHDX writer (fixed and dynamic). Structures live in formats/containers/vhdx.ts; section
 * numbers are [MS-VHDX]'s.
 *
 * Layout written (the same as qemu-img's, block/vhdx.c): header section 1 MiB, log at 1 MiB
 * (log_size, empty, LogGuid zero), metadata region (1 MiB), BAT region (rounded up to 1 MiB),
 * then payload blocks, each block_size long and 1 MiB aligned: a fixed disk's every block at its
 * place, a dynamic one's non-zero blocks back to back (block-layout.ts: data first to a file,
 * after a pre-scan to a pipe, the same bytes).
 */
import type { VirtualDisk } from '../../model/extents.js';
import { DiskmintError } from '../../model/errors.js';
import { fail } from '../../../formats/common/errors.js';
import { parseByteSize } from '../../model/size.js';
import { ZERO_GUID, decodeGuid } from '../../../formats/common/guid.js';
import {
  BAT_REGION,
  METADATA_REGION,
  MIB,
  PAYLOAD,
  VHDX_HEADER_OFFSETS,
  VHDX_MAX_VIRTUAL_SIZE,
  VHDX_REGION_OFFSETS,
  encodeFileIdentifier,
  encodeRegionTable,
  encodeVhdxHeader,
} from '../../../formats/containers/vhdx.js';
import { batGeometry, encodeBatEntry, payloadEntryIndex } from '../../../formats/containers/vhdx-bat.js';
import { encodeMetadataRegion } from '../../../formats/containers/vhdx-metadata.js';
import { layoutId } from '../vhd/writer.js';
import { writeInPlace, writeTablesAndBlocks } from '../block-layout.js';
import type { ByteSink } from '../../io/sink.js';
import type { WriteContext } from '../types.js';

export interface VhdxWriteOptions {
  subformat: 'dynamic' | 'fixed';
  blockSize: number;
  logSize: number;
  /**
   * Always 512 when writing: qemu 7.2 refuses VHDX with 4096-byte logical sectors and 7-Zip
   * 26.02 refuses many of them (it tests bit 12 of the size, not the low bits), so no peer
   * here could check them. The reader accepts both (2.6.2.4).
   */
  logicalSectorSize: 512 | 4096;
}

function parseSize(key: string, value: string): number {
  const bytes = parseByteSize(value);
  if (bytes === undefined) throw new DiskmintError('BAD_ARGUMENT', `vhdx option ${key}=${value}: not a size (e.g. 32M)`);
  return bytes;
}

/** qemu's default block size (block/vhdx.c vhdx_co_create): 8 MiB up to 1 GiB, 16 MiB to 100 GiB, 32 MiB to 32 TiB, else 64 MiB. */
export function defaultVhdxBlockSize(size: number): number {
  const GIB = 1024 * MIB;
  if (size > 32 * 1024 * GIB) return 64 * MIB;
  if (size > 100 * GIB) return 32 * MIB;
  if (size > GIB) return 16 * MIB;
  return 8 * MIB;
}

export function parseVhdxOptions(options: Readonly<Record<string, string>>, diskSize: number): VhdxWriteOptions {
  const out: VhdxWriteOptions = { subformat: 'dynamic', blockSize: defaultVhdxBlockSize(diskSize), logSize: MIB, logicalSectorSize: 512 };
  for (const [key, value] of Object.entries(options)) {
    if (key === 'subformat') {
      if (value !== 'dynamic' && value !== 'fixed') throw new DiskmintError('BAD_ARGUMENT', `vhdx option subformat=${value}: expected dynamic or fixed`);
      out.subformat = value;
    } else if (key === 'block_size') {
      const v = parseSize(key, value);
      if (v === 0) continue; // qemu: 0 = choose by size
      if (v < MIB || v > 256 * MIB || (v & (v - 1)) !== 0) {
        throw new DiskmintError('BAD_ARGUMENT', `vhdx option block_size=${value}: must be a power of two from 1 MiB to 256 MiB (MS-VHDX 2.6.2.1)`);
      }
      out.blockSize = v;
    } else if (key === 'log_size') {
      const v = parseSize(key, value);
      if (v < MIB || v > 1024 * MIB || v % MIB !== 0) {
        throw new DiskmintError('BAD_ARGUMENT', `vhdx option log_size=${value}: must be a whole number of MiB from 1 MiB to 1 GiB (MS-VHDX 2.2.2)`);
      }
      out.logSize = v;
    } else {
      throw new DiskmintError('BAD_ARGUMENT', `vhdx does not take option "${key}" (known: subformat, block_size, log_size)`);
    }
  }
  return out;
}

export async function writeVhdx(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext): Promise<void> {
  const o = parseVhdxOptions(ctx.options, disk.size);
  const lss = o.logicalSectorSize;
  // 2.6.2.2: the virtual size is a multiple of the logical sector size.
  const size = Math.ceil(disk.size / lss) * lss;
  if (size === 0) throw fail('vhdx', 'INVALID_ARGUMENT', 'a VHDX of 0 bytes cannot be written (qemu refuses to open one)');
  if (size > VHDX_MAX_VIRTUAL_SIZE) throw fail('vhdx', 'INVALID_ARGUMENT', `a VHDX holds at most 64 TiB; this disk is ${size} bytes`);
  const bs = o.blockSize;
  const fixed = o.subformat === 'fixed';
  const { ratio, dataBlocks, totalEntries } = batGeometry(size, bs, lss);
  const logOffset = MIB;
  const metadataOffset = logOffset + o.logSize;
  const batOffset = metadataOffset + MIB;
  const batLength = Math.max(MIB, Math.ceil((totalEntries * 8) / MIB) * MIB);
  const payloadStart = batOffset + batLength;
  const id = layoutId(`vhdx-${o.subformat}-${bs}-${lss}`, disk, size);
  const fileWrite = decodeGuid(id, 0);
  id[0] ^= 1;
  const dataWrite = decodeGuid(id, 0);
  id[0] ^= 3;
  const diskId = decodeGuid(id, 0);

  const header = (seq: bigint): Uint8Array =>
    encodeVhdxHeader({
      sequenceNumber: seq,
      fileWriteGuid: fileWrite,
      dataWriteGuid: dataWrite,
      logGuid: ZERO_GUID, // 2.2.2: zero LogGuid = empty log, nothing to replay
      logVersion: 0,
      version: 1,
      logLength: o.logSize,
      logOffset,
    });
  const regions = encodeRegionTable([
    { guid: BAT_REGION, fileOffset: batOffset, length: batLength, required: true },
    { guid: METADATA_REGION, fileOffset: metadataOffset, length: MIB, required: true },
  ]);
  const metadata = encodeMetadataRegion({
    blockSize: bs,
    leaveBlocksAllocated: fixed,
    virtualSize: size,
    diskId,
    logicalSectorSize: lss,
    physicalSectorSize: lss,
  });

  // 2.5: payload entries FULLY_PRESENT (6) or NOT_PRESENT (0); sector bitmap entries stay 0.
  const batFor = (present: Iterable<[block: number, fileOffset: number]>): Uint8Array => {
    const bat = new Uint8Array(batLength);
    const bv = new DataView(bat.buffer);
    for (const [block, at] of present) encodeBatEntry(bv, payloadEntryIndex(block, ratio) * 8, PAYLOAD.fullyPresent, at);
    return bat;
  };
  await sink.write(encodeFileIdentifier('diskmint'));
  await sink.write(header(1n));
  await sink.skip(VHDX_HEADER_OFFSETS[1] - sink.position);
  await sink.write(header(2n));
  await sink.skip(VHDX_REGION_OFFSETS[0] - sink.position);
  await sink.write(regions);
  await sink.write(regions.slice());
  await sink.skip(metadataOffset - sink.position); // rest of the header section and the empty log
  await sink.write(metadata);
  const onProgress = (done: number) => ctx.onProgress?.(done, disk.size);
  if (fixed) {
    // The BAT first, then every block at its own place.
    await sink.write(batFor(Array.from({ length: dataBlocks }, (_, i) => [i, payloadStart + i * bs])));
    await writeInPlace(disk, sink, payloadStart, onProgress);
    await sink.skip(payloadStart + dataBlocks * bs - sink.position);
  } else {
    // Dynamic: the non-zero blocks back to back (the same bytes to a file and a pipe).
    await writeTablesAndBlocks(disk, sink, {
      blockSize: bs,
      dataStart: payloadStart,
      onProgress,
      writeTables: (stored, put) => put(batFor(stored.map((block, k) => [block, payloadStart + k * bs])), batOffset),
    });
  }
  ctx.onProgress?.(disk.size, disk.size);
}
