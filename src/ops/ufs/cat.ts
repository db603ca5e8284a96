/** `diskmint ufs cat IMG[:N] PATH`: a regular file's bytes (holes as zeros) to a stream. */
import type { Writable } from 'node:stream';
import { DiskmintError } from '../../model/errors.js';
import { withUfs } from './open.js';

export async function catUfs(spec: string, path: string, out: Writable): Promise<void> {
  await withUfs(spec, async (ufs) => {
    if (!(await ufs.stat(path))) throw new DiskmintError('BAD_ARGUMENT', `${path}: no such file in ${spec}`);
    for await (const chunk of ufs.readFile(path)) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
  });
}
