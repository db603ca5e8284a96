/** Small file-system helpers shared by commands that write into folders. */
import { mkdir } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

/**
 * mkdir -p, one component at a time. Node 20's `mkdir(path, { recursive: true })` never settles
 * for some targets (e.g. under /proc), which would hang extract; this fails with the OS error.
 */
export async function makeDirectories(path: string): Promise<void> {
  const parts = resolve(path).split(sep);
  for (let i = 2; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join(sep);
    try {
      await mkdir(prefix);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
