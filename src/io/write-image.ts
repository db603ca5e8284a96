/**
 * Write a virtual disk in any output format: raw (sparse file or pipe) or a container.
 * Files are written beside the target under a temp name and renamed only when complete;
 * extra files (monolithicFlat's -flat.vmdk) are renamed with it.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tempPathBeside, trackTempFile, untrackTempFile } from './temp-files.js';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../model/errors.js';
import { VirtualDisk } from '../model/extents.js';
import { writeAtomically, writeRawImage } from '../containers/raw/writer.js';
import { FileCache, readRunInto } from './run-reader.js';
import { createCompressor } from '../containers/compress.js';
import { fileSink, streamSink, type ByteSink } from './sink.js';
import { handlerFor, outputFormatFor, parseOptionString } from '../containers/registry.js';
import type { ContainerFormat, WriteContext } from '../containers/types.js';
import { createProgress, type Progress } from '../cli/progress.js';
import { stderrIsTerminal } from '../cli/output.js';
import { checkOutputTarget, inputFilesOf } from './output-target.js';

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
  /** Stream for '-' (default process.stdout). */
  stdout?: Writable;
  /** Show a progress bar on a terminal (default: when stderr is a TTY). */
  progress?: boolean;
  /** Files the command read (a layout, a converted image) besides the disk's own file runs: no output may be one of them. */
  inputs?: readonly string[];
}

export interface WriteImageResult {
  format: ContainerFormat;
  output: string;
  virtualSize: number;
}

export async function writeImage(disk: VirtualDisk, output: string, opts: WriteImageOptions = {}): Promise<WriteImageResult> {
  const format = outputFormatFor(opts.format, output);
  const options = typeof opts.options === 'string' || opts.options === undefined ? parseOptionString(opts.options) : { ...opts.options };
  // Collected only if a target already exists (most outputs are new files).
  const inputs = function* (): Generator<string> {
    yield* opts.inputs ?? [];
    yield* inputFilesOf(disk);
  };
  if (output !== '-') await checkOutputTarget(output, inputs());
  const showProgress = opts.progress ?? (output !== '-' && stderrIsTerminal());
  const progress = createProgress(`writing ${format}`, { enabled: showProgress });
  // Only wrap reads for a visible bar: the wrapper costs a copy per chunk.
  const { disk: tracked, close } = showProgress ? trackProgress(disk, progress) : { disk, close: async () => {} };
  try {
    if (format === 'raw') {
      if (Object.keys(options).length) throw new DiskmintError('BAD_ARGUMENT', `raw output takes no -o options (got ${Object.keys(options).join(', ')})`);
      if (opts.compress) throw new DiskmintError('BAD_ARGUMENT', 'raw output cannot be compressed; choose -O qcow2 or vmdk');
      await writeRawImage(tracked, output, { stdout: opts.stdout });
    } else {
      await writeContainer(tracked, output, format, options, opts, inputs);
    }
  } finally {
    progress.finish();
    await close();
  }
  return { format, output, virtualSize: disk.size };
}

async function writeContainer(disk: VirtualDisk, output: string, format: ContainerFormat, options: Record<string, string>, opts: WriteImageOptions, inputs: () => Iterable<string>): Promise<void> {
  const handler = handlerFor(format)!;
  const compressor = createCompressor({ threads: opts.threads });
  const siblings: Array<{ temp: string; final: string }> = [];
  const closers: Array<() => Promise<void>> = [];
  const ctx = (sinkTarget: string): WriteContext => ({
    options,
    compress: opts.compress ? { algorithm: opts.compression, level: opts.level } : undefined, // the handler's policy decides the rest
    compressor,
    outputPath: sinkTarget,
    async createSiblingOutput(name: string): Promise<ByteSink> {
      if (sinkTarget === '-') throw new DiskmintError('BAD_ARGUMENT', `${format} output with a separate data file cannot go to a pipe`);
      const final = join(dirname(output), name);
      await checkOutputTarget(final, inputs()); // a VMDK's -flat/-s001 file may be the input itself
      const temp = tempPathBeside(final);
      trackTempFile(temp);
      const handle = await open(temp, 'wx');
      siblings.push({ temp, final });
      closers.push(() => handle.close());
      return fileSink(handle);
    },
  });
  try {
    if (output === '-') {
      const sink = streamSink(opts.stdout ?? process.stdout);
      await handler.write(disk, sink, ctx('-'));
      await sink.finish();
      return;
    }
    await writeAtomically(output, async (handle) => {
      const sink = fileSink(handle);
      await handler.write(disk, sink, ctx(output));
      await sink.finish();
      for (const close of closers.splice(0)) await close();
      for (const s of siblings) {
        await rename(s.temp, s.final);
        untrackTempFile(s.temp);
      }
      siblings.length = 0;
    });
  } finally {
    for (const close of closers) await close().catch(() => {});
    for (const s of siblings) {
      await unlink(s.temp).catch(() => {});
      untrackTempFile(s.temp);
    }
    await compressor.close();
  }
}

/** The same disk, with every data read reported to `progress`. Nothing is read here. */
function trackProgress(disk: VirtualDisk, progress: Progress): { disk: VirtualDisk; close: () => Promise<void> } {
  const total = disk.dataBytes();
  const files = new FileCache();
  const close = () => files.closeAll();
  if (total === 0) return { disk, close };
  let done = 0;
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
          done += n;
          progress.update(done, total);
          return out;
        },
        close,
      },
    });
  }
  return { disk: tracked, close };
}

