/**
 * Raw images: the disk's bytes as they are (mkimg's raw.c). Raw is the fallback format: any file
 * no other handler claims is read as raw, so it is detected last. Written sparse to a file (all
 * zero blocks left as holes), or every byte, in order, to a pipe.
 */
import { DiskmintError } from '../../model/errors.js';
import type { ContainerHandler } from '../types.js';
import { rawContainer } from './reader.js';
import { writeRaw } from './writer.js';

export const rawHandler: ContainerHandler = {
  format: 'raw',
  extensions: ['.raw', '.img'],
  optionKeys: [],
  compresses: false,
  detect: async () => true,
  open: async (file, ctx) => rawContainer(file, ctx.path),
  async write(disk, sink, ctx) {
    const keys = Object.keys(ctx.options);
    if (keys.length) throw new DiskmintError('BAD_ARGUMENT', `raw output takes no -o options (got ${keys.join(', ')})`);
    await writeRaw(disk, sink);
  },
};
