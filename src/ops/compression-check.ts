/**
 * `-c` where the output format cannot compress: refused before anything is read or written, as
 * qemu-img refuses it (`qemu-img convert -c -O vpc|vhdx|raw`: "Compression not supported for this
 * file format", exit 1, no output). qcow2 compresses clusters, VMDK streamOptimized grains (its
 * handler refuses -c for the other subformats).
 */
import type { ContainerFormat } from '../containers/types.js';
import { outputFormatFor } from '../containers/registry.js';
import type { WriteImageOptions } from '../io/write-image.js';
import { DiskmintError } from '../model/errors.js';

const COMPRESSIBLE: ReadonlySet<ContainerFormat> = new Set(['qcow2', 'vmdk']);

/** Throws a DiskmintError (BAD_ARGUMENT) when `opts.compress` asks for compression the output format cannot hold. */
export function refuseUncompressibleOutput(output: string, opts: Pick<WriteImageOptions, 'format' | 'compress'>): void {
  if (!opts.compress) return;
  const format = outputFormatFor(opts.format, output);
  if (!COMPRESSIBLE.has(format)) throw new DiskmintError('BAD_ARGUMENT', `${format} output cannot be compressed; choose -O qcow2 or vmdk`);
}
