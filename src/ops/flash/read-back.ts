/**
 * Reading back what `flash` wrote from the medium, not from the page cache: the target is
 * opened with O_DIRECT (direct.ts), reads widened to 4 KiB and into aligned buffers, so they go
 * to the device. Where O_DIRECT is refused (tmpfs, some overlay file systems) reads go through
 * the cache, and the result says so.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { ALIGN, alignedBuffers, openDirect } from './direct.js';

export interface ReadBack {
  /** 'direct': O_DIRECT reads, from the medium; 'page-cache': ordinary reads (O_DIRECT refused). */
  readonly mode: 'direct' | 'page-cache';
  /** How many slots `read` takes (reads in flight at once). */
  readonly slots: number;
  /**
   * `length` bytes at `offset` (length at most the chunk size given at open), read into buffer
   * `slot`: a view valid until the next read into the same slot.
   */
  read(offset: number, length: number, slot?: number): Promise<Uint8Array>;
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

/** Open `path` (of `size` bytes) for read-back in chunks of up to `chunk` bytes, `slots` reads at a time. */
export async function openReadBack(path: string, size: number, chunk: number, slots = 2): Promise<ReadBack> {
  const slotSize = Math.ceil(chunk / ALIGN) * ALIGN + 2 * ALIGN; // a chunk widened to 4 KiB at both ends
  // A file whose length is not whole sectors cannot have its last bytes read directly.
  const direct = size % 512 === 0 ? await openDirect(path, constants.O_RDONLY) : undefined;
  const buffers = direct && (await alignedBuffers(direct, size, slots, slotSize));
  if (!direct || !buffers) {
    await direct?.close();
    const plain = await open(path, 'r');
    const views = Array.from({ length: slots }, () => new Uint8Array(slotSize));
    return {
      mode: 'page-cache',
      slots,
      async read(offset, length, slot = 0) {
        const view = views[slot].subarray(0, length);
        view.fill(0, await readAll(plain, view, offset));
        return view;
      },
      close: () => plain.close(),
    };
  }
  return {
    mode: 'direct',
    slots,
    async read(offset, length, slot = 0) {
      const buffer = buffers[slot];
      const start = offset - (offset % ALIGN);
      // The tail of a device whose size is not a 4 KiB multiple is read in 512-byte sectors.
      const end = Math.min(Math.ceil((offset + length) / ALIGN) * ALIGN, size);
      const span = buffer.subarray(0, Math.max(end, offset + length) - start);
      span.fill(0, await readAll(direct, span.subarray(0, end - start), start));
      return span.subarray(offset - start, offset - start + length);
    },
    close: () => direct.close(),
  };
}
