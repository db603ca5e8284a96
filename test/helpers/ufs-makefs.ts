/**
 * Source trees for the UFS reader tests, Debian's makefs (NetBSD's) run over them, and the tree
 * read back through diskmint's reader, in one comparable shape.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, linkSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { UfsReader } from '../../src/fs/ufs/read-types.js';

export interface TreeRecord {
  kind: string;
  size: number;
  perm: number;
  uid: number;
  gid: number;
  mtime: number;
  sha256?: string;
  target?: string;
  rdev?: string;
  /** Paths sharing this one's inode (hard links), sorted, including itself. */
  links?: string[];
}

/** Deterministic bytes: a SHA-256 chain seeded with `seed`. */
export function patternBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < length; at += 32) {
    block.copy(out, at, 0, Math.min(32, length - at));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * Every kind makefs copies from a folder: files of 0 bytes, fragments, several blocks, `bigBytes`
 * (past the single indirect block at 4 KiB blocks), a sparse file, a 255-byte name, folders 20
 * deep, hard links, short and long symlinks, a FIFO, UTF-8 names, an empty folder.
 */
export function makeSourceTree(root: string, bigBytes = 5 << 20): void {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'small.txt'), 'hello, ufs\n');
  writeFileSync(join(root, 'frag.bin'), patternBytes('frag', 5000));
  writeFileSync(join(root, 'blocks.bin'), patternBytes('blocks', 100_000));
  writeFileSync(join(root, 'big.bin'), patternBytes('big', bigBytes));
  writeFileSync(join(root, 'sparse.bin'), patternBytes('sparse-head', 3000));
  truncateSync(join(root, 'sparse.bin'), 3 << 20);
  writeFileSync(join(root, 'n'.repeat(255)), 'long name');
  writeFileSync(join(root, 'żółw-名前.txt'), 'utf-8 name');
  let deep = root;
  for (let i = 0; i < 20; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'bottom.txt'), 'deep');
  mkdirSync(join(root, 'links'));
  linkSync(join(root, 'small.txt'), join(root, 'links', 'hard1.txt'));
  linkSync(join(root, 'small.txt'), join(root, 'links', 'hard2.txt'));
  symlinkSync('../small.txt', join(root, 'links', 'short'));
  symlinkSync('x/'.repeat(100) + 'target', join(root, 'links', 'long'));
  symlinkSync('/absolute/elsewhere', join(root, 'links', 'absolute'));
  mkdirSync(join(root, 'empty-dir'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
}

/** makefs -t ffs -B little over `src` into `out`; `options` as -o takes them (version=2,bsize=4096,...). */
export function makefs(out: string, src: string, options: string, extra: string[] = []): void {
  execFileSync('makefs', ['-t', 'ffs', '-B', 'little', '-o', options, ...extra, out, src], { stdio: 'pipe' });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The tree under `root` as lstat sees it (sockets left out: makefs does not copy them). */
export function treeOfFolder(root: string): Map<string, TreeRecord> {
  const out = new Map<string, TreeRecord>();
  const byIno = new Map<number, string[]>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const path = `${rel}/${name}`;
      const st = lstatSync(full);
      const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : undefined;
      if (!kind) continue;
      const r: TreeRecord = {
        kind,
        size: kind === 'dir' ? 0 : st.size,
        perm: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (kind === 'file') r.sha256 = sha(readFileSync(full));
      if (kind === 'symlink') r.target = readlinkSync(full);
      if (kind !== 'dir') byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), path]);
      out.set(path, r);
      if (kind === 'dir') walk(full, path);
    }
  };
  walk(root, '');
  for (const paths of byIno.values()) if (paths.length > 1) for (const p of paths) out.get(p)!.links = [...paths].sort();
  return out;
}

/** The same shape read back through diskmint's reader (directory sizes set to 0, as in treeOfFolder). */
export async function treeOfUfs(ufs: UfsReader): Promise<Map<string, TreeRecord>> {
  const out = new Map<string, TreeRecord>();
  const byIno = new Map<number, string[]>();
  for await (const e of ufs.walk()) {
    const s = e.stat;
    const r: TreeRecord = { kind: s.kind, size: s.kind === 'dir' ? 0 : s.size, perm: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: s.mtime.sec };
    if (s.kind === 'file') {
      const h = createHash('sha256');
      for await (const chunk of ufs.readFile(e.path)) h.update(chunk);
      r.sha256 = h.digest('hex');
    }
    if (e.target !== undefined) r.target = e.target;
    if (s.rdev) r.rdev = `${s.rdev.major},${s.rdev.minor}`;
    if (s.kind !== 'dir') byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), e.path]);
    out.set(e.path, r);
  }
  for (const paths of byIno.values()) if (paths.length > 1) for (const p of paths) out.get(p)!.links = [...paths].sort();
  return out;
}
