/**
 * `contents: { "ufs": { "from": ["tree/", "mtree:METALOG"], "label": "rootfs", "size": "512M" } }`:
 * a UFS2 file system made from tree sources, layered in order (src/fs/tree). Its metadata is
 * built during planning (file contents stay references), so a tree that does not fit is a
 * layout error before any write. The file system fills the partition unless `size` is given.
 * Tarball sources (tar, tar.gz, tar.xz, tar.zst, tar.bz2) are decompressed into spool files
 * that file contents point into; the planned contents own them and `release()` removes them,
 * which releasePlan (plan.ts) does for every plan, once its image is written or compared.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { buildUfsVolume, type UfsBuildOptions, type UfsVolume } from '../fs/ufs/build.js';
import { loadTreeSources, parseTreeSource, type FileTree } from '../fs/tree/index.js';
import { DiskmintError } from '../model/errors.js';
import { formatBytes, parseByteSize } from '../model/size.js';
import { sourceDateEpoch } from '../model/source-date.js';
import type { LayoutProblems } from './resolve.js';

export interface UfsContentsSpec {
  from?: string | string[];
  label?: string;
  size?: number | string;
  blockSize?: number;
  fragSize?: number;
  softupdates?: boolean;
}

export interface PlannedUfs {
  kind: 'ufs';
  tree: FileTree;
  options: UfsBuildOptions;
  /** The sources as the layout names them (for build summaries). */
  from: string[];
  /** Built once the partition's size is known. */
  volume?: UfsVolume;
  /** Removes the spool files of tarball sources (their contents are unreadable after it). */
  release(): Promise<void>;
}

const absolute = (baseDir: string, p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

/**
 * Trees already loaded in one plan, by their sources and time: a layout naming the same sources
 * twice (the nanobsd preset's --copy-os: one release tarball in both OS slots) decompresses them
 * once. Each partition's contents hold a reference; the spool files go with the last release.
 */
export type UfsTreeCache = Map<string, Promise<{ tree: FileTree; close(): Promise<void>; users: number }>>;

/** The tree of `sources`, loaded once per cache; `release` drops this holder's reference. */
async function sharedTree(sources: string[], time: number | undefined, cache: UfsTreeCache | undefined): Promise<{ tree: FileTree; release(): Promise<void> }> {
  if (!cache) {
    const { tree, close } = await loadTreeSources(sources, { sourceDateEpoch: time });
    return { tree, release: close };
  }
  const key = JSON.stringify([sources, time ?? null]);
  let entry = cache.get(key);
  if (!entry) {
    entry = loadTreeSources(sources, { sourceDateEpoch: time }).then(({ tree, close }) => ({ tree, close, users: 0 }));
    cache.set(key, entry);
    entry.catch(() => cache.delete(key)); // a failed load is reported to each holder; the next plan tries again
  }
  const loaded = await entry;
  loaded.users++;
  let released = false;
  return {
    tree: loaded.tree,
    async release() {
      if (released) return;
      released = true;
      if (--loaded.users === 0) {
        cache.delete(key);
        await loaded.close();
      }
    },
  };
}

export async function resolveUfsContents(
  spec: UfsContentsSpec,
  path: string,
  baseDir: string,
  problems: LayoutProblems,
  trees?: UfsTreeCache,
): Promise<{ contents: PlannedUfs; contentBytes: number } | undefined> {
  const at = `${path}.contents.ufs`;
  const options: UfsBuildOptions = {
    label: spec.label,
    blockSize: spec.blockSize,
    fragSize: spec.fragSize,
    softupdates: spec.softupdates,
    time: sourceDateEpoch(),
  };
  if (spec.size !== undefined) {
    options.size = parseByteSize(spec.size);
    if (options.size === undefined) {
      problems.add(`${at}.size`, `${JSON.stringify(spec.size)} is not a size`);
      return undefined;
    }
  }
  let release = async () => {};
  try {
    const sources: string[] = [];
    for (const text of [spec.from ?? []].flat()) {
      const s = parseTreeSource(text);
      if (s.kind === 'mtree') {
        sources.push(`mtree:${absolute(baseDir, s.spec)}@${absolute(baseDir, s.folder)}`);
        continue;
      }
      const full = absolute(baseDir, s.path);
      if (!(await stat(full).catch(() => undefined))) {
        problems.add(`${at}.from`, `${JSON.stringify(text)} not found (looked for ${full}): name a folder, a tarball or mtree:SPEC[@FOLDER]`);
        return undefined;
      }
      sources.push(full);
    }
    let tree = emptyTree(options.time ?? 0);
    if (sources.length) ({ tree, release } = await sharedTree(sources, options.time, trees));
    const fitted = options.size ?? buildUfsVolume(tree, options).sizeBytes;
    return { contents: { kind: 'ufs', tree, options, from: [spec.from ?? []].flat(), release }, contentBytes: fitted };
  } catch (err) {
    await release();
    if (!(err instanceof DiskmintError)) throw err;
    problems.add(at, err.message);
    return undefined;
  }
}

function emptyTree(sec: number): FileTree {
  const t = { sec, nsec: 0 };
  return { nodes: [{ path: '', kind: 'dir', mode: 0o755, uid: 0, gid: 0, flags: 0, atime: t, mtime: t, ctime: t, birthtime: t, size: 0 }] };
}

/** Build the file system for a partition of `sizeBytes` (or its own `size`). */
export function buildPlannedUfs(ufs: PlannedUfs, sizeBytes: number, seed: string, path: string, problems: LayoutProblems): void {
  const size = ufs.options.size ?? sizeBytes;
  if (size > sizeBytes) {
    problems.add(`${path}.contents.ufs.size`, `${formatBytes(size)} is larger than the partition (${formatBytes(sizeBytes)})`);
    return;
  }
  try {
    ufs.volume = buildUfsVolume(ufs.tree, { ...ufs.options, size, seed: `${seed}\0${path}` });
  } catch (err) {
    if (!(err instanceof DiskmintError)) throw err;
    problems.add(`${path}.contents.ufs`, `${err.message} (partition of ${formatBytes(sizeBytes)})`);
  }
}
