/**
 * How `flash --discard` makes the image's holes read as zeros on a block device, cheapest first:
 * - 'write-zeroes': the device zeroes in place (sysfs queue/write_zeroes_max_bytes > 0: NVMe or
 *   SCSI WRITE ZEROES, WRITE SAME; with an unmap where the device promises zeros after it; a loop
 *   device punches holes): BLKZEROOUT, no data sent;
 * - 'discard': the device can only forget ranges (queue/discard_max_bytes > 0: TRIM, an SD or
 *   eMMC card's erase): BLKDISCARD, then the range is read back from the medium and every 4 KiB
 *   that does not read as zeros is written with zeros (an erased card may read 0xFF; the ends of
 *   a range that do not fill a whole erase unit keep their old bytes);
 * - 'write': neither (a regular file, no kernel calls): the zeros are written.
 * A kernel call that fails (EOPNOTSUPP: the device refuses after all) leaves the range to be
 * written with zeros. Either way the hole reads as zeros before flash syncs.
 */
import type { KernelIo } from '../../io/kernel/ffi.js';
import { isAllZero } from '../../io/zero-blocks.js';
import type { DeviceWriter } from './device-writer.js';
import type { FlashTarget } from './device.js';
import { ALIGN } from './direct.js';
import type { ReadBack } from './read-back.js';

export type HoleZeroing = 'write-zeroes' | 'discard' | 'write';

/** The cheapest way `target` has (see above). */
export function holeZeroing(target: FlashTarget, kernel: KernelIo | undefined): HoleZeroing {
  if (target.kind !== 'block' || !kernel) return 'write';
  if (target.zeroing?.writeZeroes && kernel.zeroOut) return 'write-zeroes';
  if (target.zeroing?.discard && kernel.discard) return 'discard';
  return 'write';
}

export interface HoleZeroer {
  /** Make [offset, offset + length) read as zeros: true when done, false to have the caller write the zeros. */
  zero(offset: number, length: number): Promise<boolean>;
  /** Bytes the device zeroed itself (no zeros sent from here). */
  readonly zeroedInKernelBytes: number;
  close(): Promise<void>;
}

/**
 * Zeroing `mode` on the device open as `device` (its descriptor for the kernel calls); `readBack`
 * opens a reader of the medium (the 'discard' mode's check), chunk-sized reads.
 */
export function holeZeroer(mode: HoleZeroing, kernel: KernelIo | undefined, device: DeviceWriter, readBack: () => Promise<ReadBack>): HoleZeroer {
  let inKernel = 0;
  let back: ReadBack | undefined;
  /** After a discard: read the range back, write zeros over the 4 KiB blocks (of the device) that do not read as zeros. */
  const rewriteNonZero = async (offset: number, length: number): Promise<number> => {
    back ??= await readBack();
    const end = offset + length;
    let rewritten = 0;
    let run = -1; // device offset where a run of non-zero blocks starts
    const flush = async (to: number) => {
      if (run < 0) return;
      for (let at = run; at < to; at += device.zeros.length) {
        const n = Math.min(device.zeros.length, to - at);
        await device.write(device.zeros.subarray(0, n), at);
      }
      rewritten += to - run;
      run = -1;
    };
    for (let at = offset; at < end; at += device.zeros.length) {
      const n = Math.min(device.zeros.length, end - at);
      const bytes = await back.read(at, n);
      for (let b = at; b < at + n;) {
        const next = Math.min(at + n, (Math.floor(b / ALIGN) + 1) * ALIGN);
        const dirty = !isAllZero(bytes.subarray(b - at, next - at));
        if (dirty && run < 0) run = b;
        if (!dirty) await flush(b);
        b = next;
      }
    }
    await flush(end);
    return rewritten;
  };
  return {
    get zeroedInKernelBytes() {
      return inKernel;
    },
    async zero(offset, length) {
      if (mode === 'write' || !kernel) return false;
      if (mode === 'write-zeroes') {
        if ((await kernel.zeroOut!(device.fd, offset, length)) !== 0) return false;
        inKernel += length;
        return true;
      }
      if ((await kernel.discard!(device.fd, offset, length)) !== 0) return false;
      inKernel += length - (await rewriteNonZero(offset, length));
      return true;
    },
    async close() {
      await back?.close();
    },
  };
}
