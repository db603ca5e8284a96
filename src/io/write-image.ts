/**
 * Write a virtual disk in any output format (raw, a sparse file or a pipe, or a container),
 * through the format's handler from the registry. Files go through one AtomicOutput (atomic-output.ts): written beside the target under a temp
 * name and renamed only when complete; extra files (monolithicFlat's -flat.vmdk) with it.
 */
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../model/errors.js';
import { VirtualDisk } from '../model/extents.js';
import { FileCache, readRunInto } from './run-reader.js';
import { fileSink, streamSink, type ByteSink } from './sink.js';
import { CONTAINER_HANDLERS, handlerFor, outputFormatFor, parseOptionString } from '../containers/registry.js';
import type { ContainerFormat, WriteContext } from '../containers/types.js';
import { checkOutputTarget, inputFilesOf } from './output-target.js';
import { writeAtomically, type AtomicFileOptions } from './atomic-output.js';
import type { ProgressReporter } from './progress.js';

export interface WriteImageOptions {
  /** Output format (qemu-img names: raw, qcow2, vmdk, vpc/vhd, vhdx); default from the file extension. */
  format?: string;
  /** qemu-img style options: an object or `key=value,key=value`. */
  options?: Record<string, string> | string;
  /** Compress where the format can (`-c`). */
  compress?: boolean;
  compression?: 'deflate' | 'zstd';
  level?: number;
  /** Compression threads (default: every core). Output bytes do not depend on it. */
  threads?: number;
  /** Where output '-' goes (required for '-': the engine never picks the process's standard output itself). */
  stdout?: Writable;
  /** Told how many bytes of data were read (the CLI's progress bar); default (or false): no progress. */
  progress?: ProgressReporter | false;
  /** Files the command read (a layout, a converted image) besides the disk's own file runs: no output may be one of them. */
  inputs?: readonly string[];
  /** The output file's mode, owner and replace rule (atomic-output.ts); default: a new file's. */
  outputFile?: AtomicFileOptions;
}

export interface WriteImageResult {
  format: ContainerFormat;
  output: string;
  virtualSize: number;
}

/**
 * An output that cannot be written, refused before anything is read or written. `-c` where the
 * format cannot hold compressed data, as qemu-img refuses it (`qemu-img convert -c -O
 * vpc|vhdx|raw`: "Compression not supported for this file format", exit 1, no output); then
 * what the format's writer refuses (its checkOutput: `-o` options, raw .xz without its
 * encoder). Commands call it first; writeImage too.
 */
export function refuseUnwritableOutput(output: string, opts: Pick<WriteImageOptions, 'format' | 'compress' | 'options'>): void {
  const format = outputFormatFor(opts.format, output);
  const handler = handlerFor(format);
  if (opts.compress && !handler.compresses) {
    const can = CONTAINER_HANDLERS.filter((h) => h.compresses).map((h) => h.format);
    throw new DiskmintError('BAD_ARGUMENT', `${format} output cannot be compressed; choose -O ${can.join(' or ')}`);
  }
  handler.checkOutput?.(output, optionsOf(opts.options));
}

const optionsOf = (options: WriteImageOptions['options']) =>
  typeof options === 'string' || options === undefined ? parseOptionString(options) : { ...options };

export async function writeImage(disk: VirtualDisk, output: string, opts: WriteImageOptions = {}): Promise<WriteImageResult> {
  refuseUnwritableOutput(output, opts);
  const format = outputFormatFor(opts.format, output);
  const options = optionsOf(opts.options);
  // Collected only if a target already exists (most outputs are new files).
  const inputs = function* (): Generator<string> {
    yield* opts.inputs ?? [];
    yield* inputFilesOf(disk);
  };
  if (output !== '-') await checkOutputTarget(output, inputs());
  if (output === '-' && !opts.stdout) throw new DiskmintError('BAD_ARGUMENT', "output '-' needs the stream to write to (opts.stdout)");
  const progress = opts.progress || undefined;
  // Only wrap reads when asked: the wrapper costs a copy per chunk.
  const { disk: tracked, close, total } = progress ? trackProgress(disk, progress) : { disk, close: async () => {}, total: 0 };
  progress?.start(total, `writing ${format}`);
  try {
    await writeWithHandler(tracked, output, format, options, opts, inputs);
  } finally {
    progress?.done();
    await close();
  }
  return { format, output, virtualSize: disk.size };
}

async function writeWithHandler(
  disk: VirtualDisk,
  output: string,
  format: ContainerFormat,
  options: Record<string, string>,
  opts: WriteImageOptions,
  inputs: () => Iterable<string>,
): Promise<void> {
  const handler = handlerFor(format);
  const ctx = (siblingOutput: WriteContext['createSiblingOutput']): WriteContext => ({
    options,
    compress: opts.compress ? { algorithm: opts.compression, level: opts.level } : undefined, // the handler's policy decides the rest
    threads: opts.threads,
    outputPath: output,
    createSiblingOutput: siblingOutput,
  });
  if (output === '-') {
    const sink = streamSink(opts.stdout!);
    await handler.write(
      disk,
      sink,
      ctx(async () => {
        throw new DiskmintError('BAD_ARGUMENT', `${format} output with a separate data file cannot go to a pipe`);
      }),
    );
    await sink.finish();
    return;
  }
  await writeAtomically(
    output,
    async (handle, out) => {
      const sink = fileSink(handle);
      await handler.write(
        disk,
        sink,
        ctx(async (name: string): Promise<ByteSink> => {
          const final = join(dirname(output), name);
          await checkOutputTarget(final, inputs()); // a VMDK's -flat/-s001 file may be the input itself
          return fileSink(await out.sibling(final));
        }),
      );
      await sink.finish();
    },
    opts.outputFile,
  );
}

/** The same disk, with every data read reported to `progress`. Nothing is read here. */
function trackProgress(disk: VirtualDisk, progress: ProgressReporter): { disk: VirtualDisk; close: () => Promise<void>; total: number } {
  // The total counts what is read: bytes held in memory (tables, FAT metadata) are never reported.
  let total = 0;
  for (const run of disk.runs()) if (run.kind !== 'bytes') total += run.length;
  const files = new FileCache();
  const close = () => files.closeAll();
  if (total === 0) return { disk, close, total };
  const tracked = new VirtualDisk(disk.size);
  for (const run of disk.runs()) {
    if (run.kind === 'bytes') {
      tracked.placeBytes(run.offset, run.data);
      continue;
    }
    tracked.place(run.offset, run.length, {
      kind: 'reader',
      offset: 0,
      reader: {
        size: run.length,
        async read(offset, length, into) {
          const n = Math.max(0, Math.min(length, run.length - offset));
          const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n);
          await readRunInto(run, offset, out, files);
          progress.advance(n);
          return out;
        },
        close,
      },
    });
  }
  return { disk: tracked, close, total };
}
