/**
 * The target of `flash`, open for writing. A block device is written with O_DIRECT (the data goes
 * to the device without a copy into the page cache, several writes in flight), through a second,
 * buffered descriptor for the pieces direct I/O cannot take (an image whose end is not a 4 KiB
 * multiple), or buffered throughout where O_DIRECT is refused. It is opened exclusively (O_EXCL:
 * EBUSY while it is mounted or held); the buffered companion of a direct descriptor is not, as
 * the kernel refuses a second exclusive open. A regular file is written through the page cache:
 * the buffers' alignment is probed with a read, and a file system answers a read of a hole
 * without looking at the buffer's address (ext4, XFS), so the probe proves nothing there.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writeFully } from '../../io/write-fully.js';
import { alignedBuffers, directAligned, openDirect } from './direct.js';

export interface DeviceWriter {
  /** 'direct': O_DIRECT writes; 'buffered': through the page cache (fdatasync before read-back). */
  readonly mode: 'direct' | 'buffered';
  /** The descriptor ioctls go to. */
  readonly fd: number;
  /** Buffers to fill and pass to `write` (aligned for direct I/O), `chunk` bytes each. */
  readonly buffers: Uint8Array[];
  /** `chunk` zero bytes, never written into: a zero range's source. */
  readonly zeros: Uint8Array;
  /** Write `bytes` (a view from the start of one of `buffers` or of `zeros`) at `offset`. */
  write(bytes: Uint8Array, offset: number): Promise<void>;
  /** fdatasync(2) every descriptor: the device holds what was written. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** Open `path` for writing `count` chunks at a time; `block` for a block device (exclusive, direct). */
export async function openDeviceWriter(path: string, size: number, opts: { block: boolean; chunk: number; count: number }): Promise<DeviceWriter> {
  const excl = opts.block ? constants.O_EXCL : 0;
  // Read as well as write: direct reads into the buffers are checked with a read of the first block.
  const direct = opts.block ? await openDirect(path, constants.O_RDWR | excl) : undefined;
  const aligned = direct && (await alignedBuffers(direct, size, opts.count + 1, opts.chunk));
  if (!direct || !aligned) {
    await direct?.close();
    const plain = await open(path, constants.O_WRONLY | excl);
    const zeros = new Uint8Array(opts.chunk);
    return {
      mode: 'buffered',
      fd: plain.fd,
      buffers: Array.from({ length: opts.count }, () => new Uint8Array(opts.chunk)),
      zeros,
      write: (bytes, offset) => writeFully(plain, bytes, offset),
      datasync: () => plain.datasync(),
      close: () => plain.close(),
    };
  }
  let plain: FileHandle | undefined;
  try {
    plain = await open(path, constants.O_WRONLY);
  } catch (err) {
    await direct.close();
    throw err;
  }
  const buffered = plain;
  return {
    mode: 'direct',
    fd: direct.fd,
    buffers: aligned.slice(0, opts.count),
    zeros: aligned[opts.count],
    write: (bytes, offset) => (directAligned(offset, bytes.length) ? writeFully(direct, bytes, offset) : writeFully(buffered, bytes, offset)),
    async datasync() {
      await Promise.all([direct.datasync(), buffered.datasync()]);
    },
    async close() {
      await Promise.allSettled([direct.close(), buffered.close()]);
    },
  };
}
