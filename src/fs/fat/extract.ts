/**
 * Extracting a whole FAT volume into a folder: every folder and file under its name (a safe name
 * for an invalid 8.3 name), mtimes kept; names twice in a folder, folder loops and files that
 * share clusters are errors, not silent overwrites.
 */
import { open, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectories } from '../../io/fs-util.js';
import { fail } from '../../../formats/common/errors.js';
import { caseFoldName } from '../../../formats/fs/fat-names.js';
import { MAX_DEPTH, type FatDirEntry, type MountedFat } from './volume.js';

/** Write the tree of `v` under `dest` (created if missing); returns the entries written under a safe name. */
export async function extractFat(v: MountedFat, dest: string): Promise<FatDirEntry[]> {
  const { listCluster, readEntry } = v;
  const renamed: FatDirEntry[] = [];
  const seen = new Set<number>();
  const owners = new Map<number, string>();
  const walk = async (cluster: number, path: string, into: string, depth: number) => {
    if (depth > MAX_DEPTH) throw fail('fat', 'TOO_LARGE', `${path}: folders nested more than ${MAX_DEPTH} deep`);
    await makeDirectories(into);
    const names = new Set<string>();
    for (const e of await listCluster(cluster, path)) {
      if (e.name === '.' || e.name === '..' || /[/\\\0]/.test(e.name) || e.name === '') {
        throw fail('fat', 'BAD_VALUE', `${path}: the name ${JSON.stringify(e.name)} cannot be extracted`);
      }
      if (names.has(caseFoldName(e.name))) throw fail('fat', 'BAD_VALUE', `${e.path}: the name appears twice in its folder`);
      names.add(caseFoldName(e.name));
      if (e.storedName !== undefined) renamed.push(e);
      const target = join(into, e.name);
      if (e.isDirectory) {
        if (e.firstCluster === 0 || seen.has(e.firstCluster)) throw fail('fat', 'LOOP', `${e.path}: folder loops back to cluster ${e.firstCluster}`);
        seen.add(e.firstCluster);
        await walk(e.firstCluster, e.path, target, depth + 1);
      } else {
        const out = await open(target, 'w');
        try {
          let at = 0;
          for await (const chunk of readEntry(e, owners)) {
            await out.write(chunk, 0, chunk.length, at);
            at += chunk.length;
          }
        } finally {
          await out.close();
        }
        await utimes(target, e.mtime, e.mtime).catch(() => {});
      }
    }
  };
  await walk(0, '/', dest, 0);
  return renamed;
}
