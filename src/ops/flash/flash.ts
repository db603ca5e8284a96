/**
 * `diskmint flash IMAGE DEVICE`: write an image to a card or disk (or a regular file), only the
 * ranges that hold data (plan.ts), then read them back from the medium and compare.
 *
 * What each choice guarantees (as bmaptool's docs say of bmaptool copy):
 * - default: every byte of the image's data, its first and last MiB (the tables), are on the
 *   device and read back equal; other holes keep the device's old bytes, which no file system
 *   of the image reads (they are free space to it);
 * - `discard`: also every hole of the image reads as zeros, so the device's first image-size
 *   bytes equal the image: a block device zeroes them itself where it can (BLKZEROOUT: WRITE
 *   ZEROES, or an unmap the device promises zeros after), else forgets them (BLKDISCARD: TRIM, a
 *   card's erase) and what then does not read as zeros is written, else they are written
 *   (zero-holes.ts says which and why);
 * - `verify: 'full'`: those first image-size bytes are compared with the image, holes as zeros
 *   (meaningful after `discard`; without it old bytes in holes are reported).
 * Before any write it refuses a device that is in use, too small, or of the wrong kind
 * (device.ts), and asks for confirmation unless `yes`. The device is opened with O_EXCL (the
 * kernel's exclusive open of a block device) while it is written.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { BlockMap } from '../../../formats/bmap/bmap.js';
import { DiskmintError, isSystemError } from '../../model/errors.js';
import { openDisk, type OpenDiskOptions } from '../../io/open-disk.js';
import type { ContainerReader } from '../../containers/types.js';
import { inspectDisk, wholeDiskFilesystem, type ImageInspection } from '../inspect.js';
import { fileHandleReader } from '../../model/disk-reader.js';
import { readBmapFile } from '../bmap.js';
import { kernelIo } from '../../io/kernel/ffi.js';
import { openDecodedStream, type DecodedStream } from '../../io/compressed/decoded-stream.js';
import type { CompressionKind } from '../../../formats/common/compression.js';
import { describeTarget, inspectTarget, refusalFor, type FlashTarget } from './device.js';
import { flashPlan, streamedFlashPlan, totalBytes, type FlashRange } from './plan.js';
import { openReadBack } from './read-back.js';
import { FLASH_CHUNK, meter, writePlan, WRITES_IN_FLIGHT, type FlashProgress } from './write.js';
import { verifyFull, verifyWritten } from './verify.js';
import { openDeviceWriter, type DeviceWriter } from './device-writer.js';
import { holeZeroer, holeZeroing, type HoleZeroing } from './zero-holes.js';

export { FlashInterrupted, type FlashProgress, type FlashPhase } from './write.js';
export type { FlashTarget } from './device.js';

/** What a confirmation is asked about. */
export interface FlashConfirmation {
  target: FlashTarget;
  /** "/dev/sdb (sdb, Ultra USB 3.0, 29.8 GiB)". */
  description: string;
  /** The device's current contents as `diskmint info` reads them (undefined when unreadable). */
  current?: ImageInspection;
  image: string;
  imageSize: number;
}

export interface FlashOptions extends Omit<OpenDiskOptions, 'decodeWhole'> {
  /** 'written' (default): read back every written range; 'full': the first image-size bytes; 'none'. */
  verify?: 'written' | 'full' | 'none';
  /** A bmap file (path, or already parsed): its ranges are written and their checksums checked. */
  bmap?: string | BlockMap;
  /** Make every hole of the image read as zeros on the device (see above). */
  discard?: boolean;
  /** Write without asking. */
  yes?: boolean;
  /** Asked before writing unless `yes`; false refuses. Without it (and without `yes`) flash refuses. */
  confirm?(c: FlashConfirmation): Promise<boolean> | boolean;
  onProgress?(p: FlashProgress): void;
  /** Stops between chunks with FlashInterrupted (how far it got). */
  signal?: AbortSignal;
  /** Tests: force one way of zeroing holes (default: the cheapest the device has, zero-holes.ts; 'discard' only with `discard`). */
  holeZeroing?: HoleZeroing;
  /** Tests: called after the sync, before verification reads anything. */
  beforeVerify?(): Promise<void>;
}

export interface FlashResult {
  image: string;
  device: string;
  format: string;
  /**
   * A compressed image, and how it was read: 'streamed' as it decodes, straight to the device
   * (the stream records its size: .xz, zstd); 'spooled' decoded first into a temp file (gzip,
   * bzip2, zip, a stream without its size, or a container inside).
   */
  compression?: { kind: CompressionKind; read: 'streamed' | 'spooled' };
  imageSize: number;
  /** Ranges written, and their bytes: the image's data, and zeros. */
  ranges: number;
  dataBytes: number;
  zeroBytes: number;
  /** Of zeroBytes, those the block device zeroed itself (BLKZEROOUT, or BLKDISCARD where it then read zeros): no bytes sent. */
  zeroedInKernelBytes: number;
  /** How holes were made zeros (zero-holes.ts): in the device ('write-zeroes', 'discard'), or written ('write'). */
  holes: HoleZeroing;
  discard: boolean;
  bmap?: string;
  seconds: number;
  /** Written bytes per second, sync included. */
  writeBytesPerSecond: number;
  /** 'direct': O_DIRECT writes to a block device (several in flight, no page-cache copy); 'buffered': a regular file, or O_DIRECT refused. */
  write: 'direct' | 'buffered';
  verify: {
    mode: 'written' | 'full' | 'none';
    ok: boolean;
    /** 'direct': read from the medium with O_DIRECT; 'page-cache': O_DIRECT was refused. */
    readBack?: 'direct' | 'page-cache';
    /** First offset where the device differs from the image. */
    firstBadOffset?: number;
  };
}

/** Reads in flight while verifying (one being hashed, the rest queued at the device). */
const READS_IN_FLIGHT = 4;

function refuse(message: string): never {
  throw new DiskmintError('BAD_ARGUMENT', message);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a), stat(b)]);
  return x.dev === y.dev && x.ino === y.ino;
}

/** Open the target for writing: exclusively for a block device (EBUSY while mounted or held). */
async function openTarget(target: FlashTarget): Promise<DeviceWriter> {
  try {
    return await openDeviceWriter(target.path, target.size, { block: target.kind === 'block', chunk: FLASH_CHUNK, count: WRITES_IN_FLIGHT + 1 });
  } catch (err) {
    if (isSystemError(err) && err.code === 'EBUSY') refuse(`${describeTarget(target)} is in use (the kernel refuses an exclusive open); nothing was written`);
    throw err;
  }
}

/**
 * What the target holds now, as `info` reads a raw disk (a block device's stat size is 0, so
 * it is read as a disk of the size sysfs gives).
 */
async function currentContents(target: FlashTarget): Promise<ImageInspection | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(target.path, 'r');
    const disk = fileHandleReader(handle, target.size, async () => {});
    const { table, findings } = await inspectDisk(disk);
    const filesystem = table ? undefined : await wholeDiskFilesystem(disk);
    return { path: target.path, format: 'raw', details: {}, sizeBytes: target.size, table, ...(filesystem ? { filesystem } : {}), findings };
  } catch {
    return undefined; // unreadable: nothing to show
  } finally {
    await handle?.close();
  }
}

/** Write `image` (a path, or an opened reader) to `device`; see the file comment. */
export async function flashImage(image: string | ContainerReader, device: string, options: FlashOptions = {}): Promise<FlashResult> {
  const verifyMode = options.verify ?? 'written';
  if (!['written', 'full', 'none'].includes(verifyMode)) refuse(`verify '${String(verifyMode)}' is not one of written, full, none`);
  const imagePath = typeof image === 'string' ? image : 'image';
  // A compressed raw image that records its size is written as it decodes; any other is opened whole.
  const streamed = typeof image === 'string' ? await openDecodedStream(image, FLASH_CHUNK) : undefined;
  const opened: { reader: ContainerReader | DecodedStream; format: string; compression?: CompressionKind } = streamed
    ? { reader: streamed, format: 'raw', compression: streamed.kind }
    : typeof image === 'string'
      ? await openDisk(image, { ...options, decodeWhole: true }) // damage in a compressed image is found before the first write
      : { reader: image, format: image.format };
  const reader = opened.reader;
  try {
    const bmapPath = typeof options.bmap === 'string' ? options.bmap : undefined;
    const bmap = typeof options.bmap === 'string' ? await readBmapFile(options.bmap) : options.bmap;
    if (bmap && bmap.imageSize !== reader.size) {
      refuse(`the bmap describes an image of ${bmap.imageSize} bytes, ${imagePath} holds ${reader.size}: not its map; nothing was written`);
    }
    const target = await inspectTarget(device);
    if (typeof image === 'string' && (await sameFile(image, device))) refuse(`${device} is the image itself; nothing was written`);
    const { table } = await inspectDisk(streamed ? streamed.head : reader);
    const refusal = refusalFor(target, reader.size, table !== null);
    if (refusal) refuse(refusal);
    if (!options.yes) {
      if (!options.confirm) refuse(`${describeTarget(target)}: flash asks before it writes; confirm, or say yes; nothing was written`);
      const ok = await options.confirm({
        target,
        description: describeTarget(target),
        current: await currentContents(target),
        image: imagePath,
        imageSize: reader.size,
      });
      if (!ok) refuse(`not confirmed: nothing was written to ${device}`);
    }
    const m = meter(options.onProgress);
    // Streamed without a bmap: the data ranges are found as the image decodes, progress follows the decoding.
    const plan: FlashRange[] | AsyncIterable<FlashRange> =
      streamed && !bmap
        ? streamedFlashPlan(streamed, { discard: options.discard, passed: (n) => m.advance(n) })
        : await flashPlan(reader as ContainerReader, { bmap, discard: options.discard });
    const started = performance.now();
    const handle = await openTarget(target);
    let written: { ranges: FlashRange[]; digests: string[] };
    const kernel = target.kind === 'block' ? kernelIo() : undefined;
    // BLKDISCARD only when asked to discard; without it, holes in the table areas are zeroed in place or written.
    const best = kernel ? (options.holeZeroing ?? holeZeroing(target, kernel)) : 'write';
    const zeroing = best === 'discard' && !options.discard ? 'write' : best;
    const holes = holeZeroer(zeroing, kernel, handle, () => openReadBack(device, target.size, FLASH_CHUNK, 1));
    try {
      // A streamed plan's total is unknown until the end: progress and an interruption count the image's bytes.
      const total = Array.isArray(plan) ? totalBytes(plan) : reader.size;
      m.phase('write', total);
      written = await writePlan(reader, handle, plan, {
        devicePath: device,
        imagePath,
        total,
        signal: options.signal,
        meter: m,
        meterWrites: Array.isArray(plan),
        zeroOut: (offset, length) => holes.zero(offset, length), // false in the 'write' way: the zeros are written
      });
      await streamed?.close(); // the decoder's threads and buffers are not needed by the read-back (a mismatch decodes again)
      m.phase('sync', 0);
      await handle.datasync();
      // Written through the page cache (O_DIRECT refused): drop the device's cached pages, so the read-back reads the medium.
      if (handle.mode === 'buffered' && kernel?.flushBuffers) await kernel.flushBuffers(handle.fd);
    } finally {
      await holes.close();
      await handle.close();
    }
    const ranges = written.ranges;
    const seconds = (performance.now() - started) / 1000;
    const result: FlashResult = {
      image: imagePath,
      device,
      format: opened.format,
      ...(opened.compression ? { compression: { kind: opened.compression, read: streamed ? 'streamed' : 'spooled' } } : {}),
      imageSize: reader.size,
      ranges: ranges.length,
      dataBytes: totalBytes(ranges, 'data'),
      zeroBytes: totalBytes(ranges, 'zero'),
      zeroedInKernelBytes: holes.zeroedInKernelBytes,
      holes: zeroing,
      discard: options.discard === true,
      ...(bmapPath ? { bmap: bmapPath } : {}),
      seconds,
      writeBytesPerSecond: totalBytes(ranges) / Math.max(1e-3, seconds),
      write: handle.mode,
      verify: { mode: verifyMode, ok: true },
    };
    if (verifyMode === 'none') return result;
    await options.beforeVerify?.();
    const back = await openReadBack(device, target.size, FLASH_CHUNK, READS_IN_FLIGHT);
    try {
      m.phase('verify', verifyMode === 'full' ? reader.size : totalBytes(ranges));
      const bad =
        verifyMode === 'full'
          ? await verifyFull(reader, back, { signal: options.signal, meter: m })
          : await verifyWritten(reader, back, ranges, written.digests, { signal: options.signal, meter: m });
      result.verify = { mode: verifyMode, ok: bad === undefined, readBack: back.mode, ...(bad === undefined ? {} : { firstBadOffset: bad }) };
    } finally {
      await back.close();
    }
    result.seconds = (performance.now() - started) / 1000;
    return result;
  } finally {
    if (typeof image === 'string') await reader.close();
  }
}
