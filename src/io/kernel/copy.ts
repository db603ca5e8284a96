/**
 * Copies between open files inside the kernel (copy_file_range(2)): the bytes never come up to
 * Node, and where the file system shares extents (btrfs, XFS with reflink) nothing is copied at
 * all. Only where bytes do not change: the raw writer's file data, `flash`'s image to device.
 */
import { DiskmintError } from '../../model/errors.js';
import { kernelIo } from './ffi.js';

/**
 * One call copies at most this much (Linux caps a call at ~2 GiB, MAX_RW_COUNT), so a long copy
 * never holds one of libuv's threads for long.
 */
const MAX_CALL = 64 << 20;

/**
 * Copy `length` bytes at `srcOffset` of `srcFd` to `dstOffset` of `dstFd` in the kernel. Returns
 * the bytes copied, which are fewer than `length` when the source ends first or the kernel stopped
 * partway (the caller reads and writes the rest), or undefined when the kernel copies nothing
 * between these two files (no koffi, DISKMINT_PURE_IO=1, not Linux, two file systems, a pipe, a
 * file system without the call): then read and write, which also report any real I/O error.
 */
export async function copyFileRange(srcFd: number, srcOffset: number, dstFd: number, dstOffset: number, length: number): Promise<number | undefined> {
  for (const [name, value] of Object.entries({ srcFd, srcOffset, dstFd, dstOffset, length })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new DiskmintError('BAD_ARGUMENT', `copyFileRange: ${name} must be a whole number, not ${value}`);
  }
  const copy = kernelIo()?.copyFileRange;
  if (!copy) return undefined;
  let done = 0;
  while (done < length) {
    const n = await copy(srcFd, srcOffset + done, dstFd, dstOffset + done, Math.min(MAX_CALL, length - done));
    if (n < 0) return done > 0 ? done : undefined; // EXDEV, EINVAL, EOPNOTSUPP, ENOSYS, EBADF ...: read and write
    if (n === 0) break; // the source ends here
    done += n;
  }
  return done;
}
