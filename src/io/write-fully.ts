/** Positional writes that finish: a write may take fewer bytes than it was given. */
import type { FileHandle } from 'node:fs/promises';

/** pwrite `data` at `position` until every byte is written. */
export async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
