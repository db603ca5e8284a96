/**
 * Direct I/O for `flash` (open(2) O_DIRECT): writes go to the device without a copy into the
 * page cache and reads come from the medium. O_DIRECT wants the buffer's address, the offset
 * and the length aligned to the device's logical block size. Offsets and lengths are kept to
 * 4 KiB multiples here (the rest goes through a second, buffered descriptor) and the buffers
 * are page-aligned memory (src/io/aligned-memory.ts, as the file sink's direct writes use).
 * Where O_DIRECT is refused (tmpfs, some overlay file systems) every access is buffered, and
 * the caller says so.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isSystemError } from '../../model/errors.js';
import { PAGE_ALIGN, pageAlignedBuffer } from '../../io/aligned-memory.js';

/** Offsets and lengths of direct I/O are multiples of this (every logical block size in use divides it). */
export const ALIGN = PAGE_ALIGN;

const isErrno = (err: unknown, code: string) => isSystemError(err) && err.code === code;

/** Open `path` with O_DIRECT added to `flags`; undefined when the file system refuses it (EINVAL). */
export async function openDirect(path: string, flags: number): Promise<FileHandle | undefined> {
  try {
    return await open(path, flags | constants.O_DIRECT);
  } catch (err) {
    if (isErrno(err, 'EINVAL')) return undefined;
    throw err;
  }
}

/**
 * `count` page-aligned buffers of `size` bytes (a multiple of ALIGN) for direct I/O on `handle`
 * (open with O_DIRECT, for reading, `fileSize` bytes long); undefined when the device refuses a
 * direct read into them (a logical block larger than a page): the caller goes buffered. The
 * check reads the file's first block, nothing else.
 */
export async function alignedBuffers(handle: FileHandle, fileSize: number, count: number, size: number): Promise<Uint8Array[] | undefined> {
  if (fileSize < ALIGN) return undefined; // a read of nothing would accept any address
  const whole = pageAlignedBuffer(count * size);
  try {
    await handle.read(whole, 0, ALIGN, 0);
  } catch (err) {
    if (isErrno(err, 'EINVAL')) return undefined;
    throw err;
  }
  whole.fill(0, 0, ALIGN);
  return Array.from({ length: count }, (_, i) => whole.subarray(i * size, (i + 1) * size));
}

/** Whether [offset, offset + length) may go through direct I/O. */
export const directAligned = (offset: number, length: number): boolean => offset % ALIGN === 0 && length % ALIGN === 0;
