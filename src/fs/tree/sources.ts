/**
 * The file-tree sources a command line names, layered in order (`--from` repeated):
 *   --from DIR               a folder (treeFromFolder)
 *   --from FILE              a tarball: tar, tar.gz, tar.xz, tar.zst, tar.bz2 (treeFromTar)
 *   --from mtree:SPEC        an mtree spec or METALOG over the folder it sits in (makefs -F;
 *                            `make installworld -DNO_ROOT DESTDIR=D` writes D/METALOG)
 *   --from mtree:SPEC@DIR    the same over folder DIR
 * e.g. `--from base.txz --from kernel.txz --from overlay/`. SOURCE_DATE_EPOCH, when given,
 * clamps every timestamp of the result (times.ts).
 */
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../../model/errors.js';
import { treeFromFolder } from './folder.js';
import { layerTrees } from './layer.js';
import { applyMtree, specFolder } from './mtree-source.js';
import { treeFromTar, type LoadedTree } from './tar-source.js';
import { clampTimes } from './times.js';
import type { FileTree } from './types.js';

export type TreeSource = { kind: 'path'; path: string } | { kind: 'mtree'; spec: string; folder: string };

/** One `--from` value, checked for form (not yet for existence). */
export function parseTreeSource(text: string): TreeSource {
  if (text === '') throw new DiskmintError('BAD_ARGUMENT', '--from needs a folder, a tarball or mtree:SPEC[@FOLDER]');
  if (!text.startsWith('mtree:')) return { kind: 'path', path: text };
  const rest = text.slice('mtree:'.length);
  const at = rest.lastIndexOf('@');
  const spec = at < 0 ? rest : rest.slice(0, at);
  const folder = at < 0 ? specFolder(rest) : rest.slice(at + 1);
  if (spec === '' || folder === '') throw new DiskmintError('BAD_ARGUMENT', `--from ${text}: write mtree:SPEC or mtree:SPEC@FOLDER`);
  return { kind: 'mtree', spec, folder };
}

export interface TreeSourceOptions {
  /** SOURCE_DATE_EPOCH in seconds: later timestamps are clamped to it. */
  sourceDateEpoch?: number;
}

/** The layered tree of `specs` (in order); `close()` removes temp files tarballs needed. */
export async function loadTreeSources(specs: string[], opts: TreeSourceOptions = {}): Promise<LoadedTree> {
  if (specs.length === 0) throw new DiskmintError('BAD_ARGUMENT', 'no source given: name a folder, a tarball or mtree:SPEC with --from');
  const sources = specs.map(parseTreeSource);
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.splice(0)) await c();
  };
  try {
    const trees: FileTree[] = [];
    for (const source of sources) {
      if (source.kind === 'mtree') {
        trees.push(await applyMtree(source.folder, source.spec, { nameTrees: [...trees].reverse() }));
        continue;
      }
      const st = await stat(source.path).catch((err: Error) => {
        throw new DiskmintError('INPUT', `--from ${source.path}: ${err.message}`);
      });
      if (st.isDirectory()) trees.push(await treeFromFolder(source.path));
      else {
        const loaded = await treeFromTar(source.path);
        closers.push(loaded.close);
        trees.push(loaded.tree);
      }
    }
    const tree = trees.length === 1 ? trees[0] : layerTrees(trees);
    return { tree: opts.sourceDateEpoch === undefined ? tree : clampTimes(tree, opts.sourceDateEpoch), close };
  } catch (err) {
    await close();
    throw err;
  }
}
