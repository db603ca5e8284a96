/**
 * Direct I/O for `flash` (open(2) O_DIRECT): writes go to the device without a copy into the
 * page cache and reads come from the medium. O_DIRECT wants the buffer's address, the offset
 * and the length aligned to the device's logical block size. Offsets and lengths are kept to
 * 4 KiB multiples here (the rest goes through a second, buffered descriptor); the buffers'
 * alignment is found by trying one read at 16-byte steps into a larger array until the kernel
 * takes one (V8 places array buffers where malloc does: glibc aligns to 16 bytes; the block
 * layer's default DMA alignment is 512 bytes, block/blk-settings.c). Where O_DIRECT is refused
 * (tmpfs, some overlay file systems) every access is buffered, and the caller says so.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isSystemError } from '../../model/errors.js';

/** Offsets and lengths of direct I/O are multiples of this (every logical block size in use divides it). */
export const ALIGN = 4096;
/** Buffer addresses are tried at these steps: malloc's alignment (glibc: 16 bytes). */
const ADDRESS_STEP = 16;

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
 * `count` buffers of `size` bytes (a multiple of ALIGN) whose addresses a direct read of
 * `handle` (open with O_DIRECT, for reading, `fileSize` bytes long) accepts; undefined when no
 * address does (the caller goes buffered). Probing reads the file's first block, nothing else.
 */
export async function alignedBuffers(handle: FileHandle, fileSize: number, count: number, size: number): Promise<Uint8Array[] | undefined> {
  if (fileSize < ALIGN) return undefined; // a read of nothing would accept any address
  const whole = new Uint8Array(count * size + ALIGN);
  for (let shift = 0; shift < ALIGN; shift += ADDRESS_STEP) {
    try {
      await handle.read(whole, shift, ALIGN, 0);
    } catch (err) {
      if (isErrno(err, 'EINVAL')) continue;
      throw err;
    }
    whole.fill(0, shift, shift + ALIGN);
    return Array.from({ length: count }, (_, i) => whole.subarray(shift + i * size, shift + (i + 1) * size));
  }
  return undefined;
}

/** Whether [offset, offset + length) may go through direct I/O. */
export const directAligned = (offset: number, length: number): boolean => offset % ALIGN === 0 && length % ALIGN === 0;
