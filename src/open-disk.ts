/** Open any image diskmint reads as a DiskReader. Today: raw files; containers plug in here. */
import { stat } from 'node:fs/promises';
import { DiskmintError } from './errors.js';
import { openRawFile, type DiskReader } from './disk-reader.js';

export interface OpenedDisk {
  reader: DiskReader;
  /** Container format detected from content. */
  format: 'raw';
}

export async function openDisk(path: string): Promise<OpenedDisk> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DiskmintError('NOT_A_DISK', `${path}: no such file`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new DiskmintError('NOT_A_DISK', `${path} is not a file or block device`);
  try {
    const reader = await openRawFile(path);
    if (reader.size === 0) {
      await reader.close();
      throw new DiskmintError('NOT_A_DISK', `${path} is empty`);
    }
    return { reader, format: 'raw' };
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw new DiskmintError('NOT_A_DISK', `${path} cannot be read: ${(err as Error).message}`);
  }
}
