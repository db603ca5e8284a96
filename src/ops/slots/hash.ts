/** SHA-256 of a range of a disk, read in 4 MiB pieces. */
import { createHash, type Hash } from 'node:crypto';
import type { DiskReader } from '../../model/disk-reader.js';

export const HASH_CHUNK = 4 << 20;

export async function hashRange(disk: DiskReader, offset: number, length: number): Promise<string> {
  const h = createHash('sha256');
  await updateWithRange(h, disk, offset, length);
  return h.digest('hex');
}

/** Feed `length` bytes of `disk` from `offset` into `h` (fewer when the disk ends first). */
export async function updateWithRange(h: Hash, disk: DiskReader, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length;) {
    const chunk = await disk.read(offset + done, Math.min(HASH_CHUNK, length - done));
    if (!chunk.length) break;
    h.update(chunk);
    done += chunk.length;
  }
}
