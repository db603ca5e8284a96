/**
 * Reading back what `flash` wrote from the medium, not from the page cache. Node has no ioctl
 * (no BLKFLSBUF) and no posix_fadvise, so the target is opened with O_DIRECT (open(2)): reads
 * bypass the cache and go to the device. O_DIRECT wants the buffer's address, the offset and
 * the length aligned to the device's logical block size; offsets and lengths are widened to
 * 4 KiB here, and the buffer's alignment (V8 places array buffers where malloc does) is found
 * by trying reads at 16-byte steps into one larger buffer until the kernel takes one (the
 * default DMA alignment is 512 bytes, block/blk-settings.c). Where O_DIRECT is refused (tmpfs,
 * some overlay file systems) reads go through the cache, and the result says so.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isSystemError } from '../../model/errors.js';

/** Offsets and lengths of direct reads are multiples of this (every logical block size in use divides it). */
const ALIGN = 4096;
/** Buffer addresses are tried at these steps: malloc's alignment (glibc: 16 bytes; a large block starts 16 bytes into its mmap'd page). */
const ADDRESS_STEP = 16;

export interface ReadBack {
  /** 'direct': O_DIRECT reads, from the medium; 'page-cache': ordinary reads (O_DIRECT refused). */
  readonly mode: 'direct' | 'page-cache';
  /**
   * `length` bytes at `offset` (length at most the chunk size given at open), read into buffer
   * `slot` (two, so that one chunk is read while the other is hashed): a view valid until the
   * next read into the same slot.
   */
  read(offset: number, length: number, slot?: 0 | 1): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function readAll(handle: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Open `path` (of `size` bytes) for read-back in chunks of up to `chunk` bytes. */
export async function openReadBack(path: string, size: number, chunk: number): Promise<ReadBack> {
  const slotSize = Math.ceil(chunk / ALIGN) * ALIGN + 2 * ALIGN;
  const whole = new Uint8Array(2 * slotSize + ALIGN);
  let handle: FileHandle | undefined;
  // A file whose length is not whole sectors cannot have its last bytes read directly.
  if (size % 512 === 0) {
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_DIRECT);
    } catch (err) {
      if (!(isSystemError(err) && err.code === 'EINVAL')) throw err;
    }
  }
  let shift: number | undefined;
  if (handle) {
    for (let s = 0; s < ALIGN && shift === undefined; s += ADDRESS_STEP) {
      try {
        await handle.read(whole, s, Math.min(ALIGN, size), 0);
        shift = s;
      } catch (err) {
        if (!(isSystemError(err) && err.code === 'EINVAL')) throw err;
      }
    }
    if (shift === undefined) {
      await handle.close();
      handle = undefined;
    }
  }
  if (!handle || shift === undefined) {
    const plain = await open(path, 'r');
    return {
      mode: 'page-cache',
      async read(offset, length, slot = 0) {
        const view = whole.subarray(slot * slotSize, slot * slotSize + length);
        const got = await readAll(plain, view, offset);
        view.fill(0, got);
        return view;
      },
      close: () => plain.close(),
    };
  }
  const direct = handle;
  const buffers = [whole.subarray(shift, shift + slotSize), whole.subarray(shift + slotSize)];
  return {
    mode: 'direct',
    async read(offset, length, slot = 0) {
      const buffer = buffers[slot];
      const start = offset - (offset % ALIGN);
      // The tail of a device whose size is not a 4 KiB multiple is read in 512-byte sectors.
      const end = Math.min(Math.ceil((offset + length) / ALIGN) * ALIGN, size);
      const span = buffer.subarray(0, Math.max(end, offset + length) - start);
      const got = await readAll(direct, span.subarray(0, end - start), start);
      span.fill(0, got);
      return span.subarray(offset - start, offset - start + length);
    },
    close: () => direct.close(),
  };
}
