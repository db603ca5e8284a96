/** `diskmint convert`: any image diskmint reads, to any format it writes, without a raw intermediate. */
import { VirtualDisk } from '../model/extents.js';
import { refuseBmapToPipe, writeBmapBeside } from './bmap.js';
import { openDisk, type OpenDiskOptions } from '../io/open-disk.js';
import type { ContainerReader } from '../containers/types.js';
import { refuseUnwritableOutput, writeImage, type WriteImageOptions, type WriteImageResult } from '../io/write-image.js';
import { checkOutputTarget } from '../io/output-target.js';

export interface ConvertOptions extends WriteImageOptions, OpenDiskOptions {
  /** Also write the output's block map beside it (`OUT.bmap`, bmaptool's format), made from the file written. */
  bmap?: boolean;
}

export interface ConvertResult extends WriteImageResult {
  input: string;
  inputFormat: string;
  /** The block map written beside the output (with `bmap`). */
  bmap?: string;
  /**
   * Bytes of the source read as data: its allocated ranges, or the whole of a raw input when the
   * output is a file (its writer finds zero blocks itself).
   */
  dataBytes: number;
}

/**
 * The virtual disk of an open image: its allocated ranges, read on demand. A raw file's ranges
 * come from reading it whole for zero blocks (Node has no SEEK_DATA); `wholeRawFile` skips that
 * pass and places the file as one run, for writers that find zero blocks as they copy.
 */
export async function diskFromReader(reader: ContainerReader & { sourcePath?: string }, opts: { wholeRawFile?: boolean } = {}): Promise<VirtualDisk> {
  const disk = new VirtualDisk(reader.size);
  if (opts.wholeRawFile && reader.format === 'raw' && reader.sourcePath !== undefined) {
    return reader.size ? disk.place(0, reader.size, { kind: 'file', path: reader.sourcePath, offset: 0 }) : disk;
  }
  for await (const r of reader.allocatedRanges()) {
    // Raw files are read as file ranges: straight into the writer's buffers, no copies.
    const source =
      reader.sourcePath !== undefined
        ? { kind: 'file' as const, path: reader.sourcePath, offset: r.offset }
        : { kind: 'reader' as const, reader, offset: r.offset };
    disk.place(r.offset, Math.min(r.length, reader.size - r.offset), source);
  }
  return disk;
}

export async function convertImage(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  refuseUnwritableOutput(output, opts);
  refuseBmapToPipe(output, opts.bmap);
  if (output !== '-') await checkOutputTarget(output, [input]); // before reading the input
  const { reader, format } = await openDisk(input, opts);
  let result: ConvertResult;
  try {
    const disk = await diskFromReader(reader, { wholeRawFile: writerFindsZeros(output) });
    const written = await writeImage(disk, output, { ...opts, inputs: [...(opts.inputs ?? []), input] });
    result = { ...written, input, inputFormat: reader.subformat ? `${format} (${reader.subformat})` : format, dataBytes: disk.dataBytes() };
  } finally {
    await reader.close();
  }
  return opts.bmap ? { ...result, bmap: await writeBmapBeside(output) } : result;
}

/**
 * Every file writer (raw, qcow2, VMDK, VHD, VHDX) reads each block once and leaves all-zero
 * blocks as holes or unallocated, so scanning a raw input for zeros first would read it twice.
 * Pipes get tables-first layouts, which need to know the data before writing it.
 */
function writerFindsZeros(output: string): boolean {
  return output !== '-';
}
