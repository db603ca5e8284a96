/**
 * Write -> read: random file trees built into UFS2 by diskmint's builder (src/fs/ufs/build.ts)
 * and read back by the reader give back every node (kind, mode, owner, flags, times, size,
 * bytes, link target, device numbers, hard links), and the check finds nothing.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildUfsVolume } from '../../src/fs/ufs/build.js';
import { openUfs } from '../../src/fs/ufs/read.js';
import type { FileTree, TreeNode, TreeNodeKind } from '../../src/fs/tree/types.js';
import { virtualDiskReader } from '../../src/io/run-reader.js';
import { tempDir } from '../helpers/golden.js';
import { patternBytes } from '../helpers/ufs-makefs.js';

interface Shape {
  name: string;
  kind: TreeNodeKind;
  size: number;
  children?: Shape[];
}

const name = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,20}$/).filter((n) => n !== '.' && n !== '..');
const leafKind = fc.constantFrom<TreeNodeKind>('file', 'file', 'file', 'symlink', 'char', 'block', 'fifo', 'socket');
/** Sizes around the fragment, block, direct-block and single-indirect boundaries at 4096/512. */
const size = fc.oneof(fc.constantFrom(0, 1, 511, 512, 4096, 12 * 4096, 12 * 4096 + 1), fc.nat(300_000));
const leaf: fc.Arbitrary<Shape> = fc.record({ name, kind: leafKind, size });
const shape = fc.letrec<{ dir: Shape }>((tie) => ({
  dir: fc.record({
    name,
    kind: fc.constant<TreeNodeKind>('dir'),
    size: fc.constant(0),
    children: fc.uniqueArray(fc.oneof({ weight: 4, arbitrary: leaf }, { weight: 1, arbitrary: tie('dir') }), { maxLength: 6, selector: (s) => s.name }),
  }),
})).dir;
const time = fc.record({ sec: fc.integer({ min: 0, max: 2 ** 31 }), nsec: fc.integer({ min: 0, max: 999_999_999 }) });
const attrs: fc.Arbitrary<Attrs> = fc.record({
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.nat(70000),
  gid: fc.nat(70000),
  flags: fc.constantFrom(0, 0x1, 0x2, 0x20000, 0x20000 | 0x1),
  atime: time,
  mtime: time,
  ctime: time,
  birthtime: time,
  major: fc.nat(255),
  minor: fc.nat(255),
});

type Attrs = Pick<TreeNode, 'mode' | 'uid' | 'gid' | 'flags' | 'atime' | 'mtime' | 'ctime' | 'birthtime'> & { major: number; minor: number };

describe('UFS2 write -> read', () => {
  it('random trees come back node for node and check clean', async () => {
    const dir = tempDir('diskmint-ufs-roundtrip-');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(shape, fc.infiniteStream(attrs), fc.nat(4), async (rootShape, attrStream, linkEvery) => {
        const spool = join(dir, `spool-${run++}`);
        const fd = openSync(spool, 'w');
        let spooled = 0;
        const nodes: TreeNode[] = [];
        const files: TreeNode[] = [];
        const it = attrStream[Symbol.iterator]();
        const nodeOf = (path: string, s: Shape): TreeNode => {
          const t = it.next().value as Attrs;
          const n: TreeNode = {
            path,
            kind: s.kind,
            mode: t.mode,
            uid: t.uid,
            gid: t.gid,
            flags: t.flags,
            atime: t.atime,
            mtime: t.mtime,
            ctime: t.ctime,
            birthtime: t.birthtime,
            size: 0,
          };
          if (s.kind === 'file') {
            if (linkEvery > 0 && files.length > 0 && files.length % linkEvery === 0) {
              const of = files[files.length - 1];
              // One inode: the link has its file's attributes.
              const { mode, uid, gid, flags, atime, mtime, ctime, birthtime, size } = of;
              Object.assign(n, { hardlinkOf: of.path, mode, uid, gid, flags, atime, mtime, ctime, birthtime, size });
            } else {
              const bytes = patternBytes(path, s.size);
              writeSync(fd, bytes, 0, bytes.length, spooled);
              Object.assign(n, { size: s.size, content: { path: spool, offset: spooled, length: s.size } });
              spooled += s.size;
            }
            files.push(n);
          }
          if (s.kind === 'symlink') Object.assign(n, { target: 't/'.repeat(s.size % 90) + 'x', size: (s.size % 90) * 2 + 1 });
          if (s.kind === 'char' || s.kind === 'block') n.device = { major: t.major, minor: t.minor };
          return n;
        };
        const walk = (s: Shape, path: string) => {
          nodes.push(nodeOf(path, s));
          const kids = [...(s.children ?? [])].sort((x, y) => Buffer.compare(Buffer.from(x.name), Buffer.from(y.name)));
          for (const k of kids) walk(k, path === '' ? k.name : `${path}/${k.name}`);
        };
        walk(rootShape, '');
        closeSync(fd);
        const tree: FileTree = { nodes };
        const built = buildUfsVolume(tree, { blockSize: 4096, fragSize: 512, seed: 'roundtrip' });
        const disk = virtualDiskReader(built.disk);
        try {
          const ufs = await openUfs(disk);
          const inoOf = new Map<string, number>();
          for (const n of nodes.slice(1)) {
            const e = await ufs.stat(`/${n.path}`);
            expect(e, n.path).toBeDefined();
            const s = e!.stat;
            inoOf.set(n.path, e!.ino);
            expect({ kind: s.kind, perm: s.mode & 0o7777, uid: s.uid, gid: s.gid, flags: s.flags, size: s.size }).toEqual({
              kind: n.kind,
              perm: n.mode,
              uid: n.uid,
              gid: n.gid,
              flags: n.flags,
              size: n.kind === 'dir' ? s.size : n.size,
            });
            expect([s.atime, s.mtime, s.ctime, s.birthtime]).toEqual([n.atime, n.mtime, n.ctime, n.birthtime]);
            if (n.hardlinkOf !== undefined) expect(e!.ino).toBe(inoOf.get(n.hardlinkOf));
            if (n.kind === 'symlink') expect(e!.target).toBe(n.target);
            if (n.device) expect([s.rdev?.major, s.rdev?.minor]).toEqual([n.device.major, n.device.minor]);
            if (n.kind === 'file') {
              const h = createHash('sha256');
              for await (const chunk of ufs.readFile(`/${n.path}`)) h.update(chunk);
              let owner = n;
              while (owner.hardlinkOf !== undefined) owner = nodes.find((x) => x.path === owner.hardlinkOf)!;
              expect(h.digest('hex')).toBe(createHash('sha256').update(patternBytes(owner.path, owner.size)).digest('hex'));
            }
          }
          expect((await ufs.list('/')).length).toBe(rootShape.children!.length);
          expect(await ufs.check()).toEqual([]);
        } finally {
          await disk.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
