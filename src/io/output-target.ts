/**
 * Checks on an output path before anything is written. Outputs go to a temp file that is renamed
 * over the target when complete, so a target that is not a regular file (a device such as
 * /dev/sdb or /dev/null, a FIFO, a folder) would be replaced by the rename: as root, a device
 * node became a plain file. And an output that is one of the command's own inputs (a layout, a
 * partition's contents file, the image being signed, a signing key) would destroy it.
 */
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';

/** `inputs` is iterated only when the target exists: pass a generator to defer collecting them. */
export async function checkOutputTarget(target: string, inputs: Iterable<string> = []): Promise<void> {
  const out = await stat(target).catch(() => undefined);
  if (!out) return; // a new file: nothing to replace, no input can be it
  if (!out.isFile()) {
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `${target} exists and is not a regular file (a device, FIFO or folder); diskmint writes a new file and renames it into place, which would replace it. Write to a file, or to - and pipe that to dd`,
    );
  }
  for (const input of new Set(inputs)) {
    const st = await stat(input).catch(() => undefined);
    if (st && st.dev === out.dev && st.ino === out.ino) {
      throw new DiskmintError('BAD_ARGUMENT', `${target} is the same file as ${input}, an input of this command; write to another file`);
    }
  }
}

/** The files a virtual disk's data is read from (its file runs). */
export function inputFilesOf(disk: { runs(): Iterable<{ kind: string; path?: string }> }): string[] {
  const files = new Set<string>();
  for (const run of disk.runs()) if (run.kind === 'file' && run.path !== undefined) files.add(run.path);
  return [...files];
}
