/**
 * `diskmint fat ...`: make a FAT volume from a folder, and list, read and extract files from a
 * FAT volume inside any image diskmint reads (`IMG:N` picks partition N).
 */
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { openFileSystemAt } from './image-spec.js';
import { refuseUnwritableOutput, writeImage, type WriteImageOptions } from '../io/write-image.js';
import { buildFatVolume, minimumFatSize, openFat, treeFromFolder, type FatBuildOptions, type FatDirEntry, type FatReader } from '../fs/fat/index.js';
import { parseByteSize } from '../model/size.js';

export interface FatCreateOptions extends WriteImageOptions {
  from: string;
  /** Bytes or a size string (`64M`); omitted = the smallest volume that holds the tree. */
  size?: number | string;
  type?: 'auto' | 12 | 16 | 32;
  label?: string;
  sectorSize?: 512 | 4096;
  seed?: string;
  keepTimes?: boolean;
}

/** Build a FAT volume image (any output format) from a folder. */
export async function createFatImage(
  output: string,
  opts: FatCreateOptions,
): Promise<{ type: number; sizeBytes: number; clusters: number; clusterSize: number }> {
  refuseUnwritableOutput(output, opts);
  const st = await stat(opts.from).catch(() => undefined);
  if (!st?.isDirectory()) throw new DiskmintError('INPUT', `--from ${opts.from} is not a folder`);
  const tree = await treeFromFolder(opts.from, { keepTimes: opts.keepTimes });
  const fatOpts: FatBuildOptions = { type: opts.type ?? 'auto', label: opts.label, sectorSize: opts.sectorSize, seed: opts.seed ?? 'diskmint-fat' };
  let size: number | undefined;
  if (opts.size !== undefined) {
    size = parseByteSize(opts.size);
    if (size === undefined) throw new DiskmintError('BAD_ARGUMENT', `--size ${opts.size} is not a size in bytes (e.g. 64M)`);
  }
  try {
    const volume = await buildFatVolume(tree, { ...fatOpts, size: size ?? minimumFatSize(tree, fatOpts) });
    await writeImage(volume.disk, output, opts);
    return { type: volume.type, sizeBytes: volume.sizeBytes, clusters: volume.clusters, clusterSize: volume.clusterSize };
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('BAD_ARGUMENT', `fat create: ${err.message}`);
    throw err;
  }
}

/** Open the FAT volume in `IMG[:N]`. The caller must `close()`. */
export async function openFatVolume(spec: string): Promise<{ fat: FatReader; close(): Promise<void> }> {
  const { fs, close } = await openFileSystemAt(spec, 'a FAT volume', openFat);
  return { fat: fs, close };
}

export async function listFat(spec: string, path = '/'): Promise<FatDirEntry[]> {
  const { fat, close } = await openFatVolume(spec);
  try {
    const entry = path === '/' ? undefined : await fat.stat(path);
    if (path !== '/' && !entry) throw new DiskmintError('BAD_ARGUMENT', `${path}: no such file or folder in ${spec}`);
    return entry && !entry.isDirectory ? [entry] : await fat.list(path);
  } finally {
    await close();
  }
}

export async function catFat(spec: string, path: string, out: Writable): Promise<void> {
  const { fat, close } = await openFatVolume(spec);
  try {
    const entry = await fat.stat(path);
    if (!entry || entry.isDirectory) throw new DiskmintError('BAD_ARGUMENT', `${path}: no such file in ${spec}`);
    for await (const chunk of fat.readFile(path)) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
  } finally {
    await close();
  }
}

/**
 * Copy the whole tree into `dest`. Returns the entries whose stored 8.3 name is invalid (see
 * FatDirEntry.storedName), written under the safe name in their `name`.
 */
export async function extractFat(spec: string, dest: string): Promise<FatDirEntry[]> {
  const { fat, close } = await openFatVolume(spec);
  try {
    return await fat.extract(dest);
  } finally {
    await close();
  }
}
