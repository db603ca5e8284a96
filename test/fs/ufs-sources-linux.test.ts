/**
 * Issue 21's proof on the sources users hold, read by Linux's ufs driver (test/helpers/linux-ufs.ts):
 * the project's own sources described by a METALOG over the checkout (makefs -F semantics, as
 * FreeBSD's `installworld -DNO_ROOT` leaves them), and the pax tarball bsdtar makes from that
 * same METALOG (as a release's base.txz carries owners and modes). Owners, groups and modes
 * come from the METALOG, never from the files on this machine; the expected tree is written
 * here from the entry list, not by diskmint's own mtree or tar code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUfs } from '../../src/ops/ufs/create.js';
import { withUfs } from '../../src/ops/ufs/open.js';
import type { FileTree, TreeNode } from '../../src/fs/tree/types.js';
import { compareTreeWithListing, listUfsWithLinux, requireLinuxUfs } from '../helpers/linux-ufs.js';
import { sha256Of, treeNode } from '../helpers/file-tree.js';
import { requirePeer } from '../helpers/peer.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The project's own sources: every file under these folders of the checkout. */
const FOLDERS = ['bench', 'bootcode', 'fixtures', 'formats', 'src', 'test'];
const T = { sec: 1_700_000_000, nsec: 0 };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diskmint-ufs-sources-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Owners, groups and modes that differ from entry to entry (and from this machine's files). */
const OWNERS = [0, 1001, 65534];
const GROUPS = [0, 5, 920, 31];
const FILE_MODES = [0o644, 0o444, 0o600, 0o755, 0o4555, 0o2711];
const DIR_MODES = [0o755, 0o750, 0o1777];

/** The METALOG's entries and the tree they describe (content from the checkout). */
function projectSources(): { metalog: string; tree: FileTree; immutable: string[] } {
  const lines = ['#mtree 2.0', '. type=dir uid=0 gid=0 mode=0755'];
  const nodes: TreeNode[] = [treeNode('', 'dir', {}, T)];
  const immutable: string[] = [];
  let i = 0;
  const visit = (rel: string): void => {
    const st = lstatSync(join(ROOT, rel));
    const uid = OWNERS[i % OWNERS.length];
    const gid = GROUPS[i % GROUPS.length];
    i++;
    if (st.isDirectory()) {
      const mode = DIR_MODES[i % DIR_MODES.length];
      lines.push(`./${rel} type=dir uid=${uid} gid=${gid} mode=${mode.toString(8).padStart(4, '0')}`);
      nodes.push(treeNode(rel, 'dir', { mode, uid, gid }, T));
      for (const name of readdirSync(join(ROOT, rel)).sort()) visit(`${rel}/${name}`);
    } else if (st.isFile()) {
      const mode = FILE_MODES[i % FILE_MODES.length];
      // Every fifth file immutable (schg, SF_IMMUTABLE): Linux cannot show it, the build must still take it.
      const flags = i % 5 === 0 ? ' flags=schg' : '';
      if (flags) immutable.push(rel);
      lines.push(`./${rel} type=file uid=${uid} gid=${gid} mode=${mode.toString(8).padStart(4, '0')} size=${st.size}${flags}`);
      nodes.push(treeNode(rel, 'file', { mode, uid, gid, size: st.size, content: { path: join(ROOT, rel), offset: 0, length: st.size } }, T));
    }
  };
  for (const folder of FOLDERS) visit(folder);
  // A symlink only the METALOG holds (as a METALOG records the links installworld makes).
  lines.push('./src/README-LINK type=link uid=0 gid=0 mode=0755 link=../README.md');
  nodes.push(treeNode('src/README-LINK', 'symlink', { mode: 0o755, target: '../README.md', size: '../README.md'.length }, T));
  return { metalog: lines.join('\n') + '\n', tree: { nodes }, immutable };
}

/** SF_IMMUTABLE (FreeBSD sys/stat.h): Linux's driver does not show it, so diskmint's reader checks it. */
const SF_IMMUTABLE = 0x20000;

const statUfs = (image: string, path: string) => withUfs(image, (ufs) => ufs.stat(path));

async function expectLinuxReads(image: string, tree: FileTree, immutable: string[]): Promise<void> {
  for (const path of immutable.slice(0, 20)) expect((await statUfs(image, `/${path}`))?.stat.flags, path).toBe(SF_IMMUTABLE);
  const { records } = await listUfsWithLinux(image, { ufstype: 'ufs2' });
  expect(records.length).toBe(tree.nodes.length);
  expect(compareTreeWithListing(tree, records, sha256Of(tree) as (n: TreeNode) => string)).toEqual([]);
}

describe("the project's own sources to UFS2, read by Linux", () => {
  it('from a METALOG over the checkout (makefs -F): owners, groups and modes as the METALOG says', async (ctx) => {
    if (!requireLinuxUfs()) return ctx.skip();
    const { metalog, tree, immutable } = projectSources();
    expect(tree.nodes.length).toBeGreaterThan(500);
    const spec = join(dir, 'METALOG');
    writeFileSync(spec, metalog);
    const image = join(dir, 'metalog.ufs');
    await createUfs(image, { from: [`mtree:${spec}@${ROOT}`], label: 'SOURCES' });
    await expectLinuxReads(image, tree, immutable);
  }, 300_000);

  it('from the pax tarball bsdtar makes of that METALOG (.tar.gz): the same tree', async (ctx) => {
    if (!requireLinuxUfs() || !requirePeer('bsdtar', 'libarchive-tools')) return ctx.skip();
    const { metalog, tree, immutable } = projectSources();
    const spec = join(dir, 'METALOG.tar');
    writeFileSync(spec, metalog);
    const tarball = join(dir, 'sources.tar.gz');
    execFileSync('bsdtar', ['-c', '-z', '-f', tarball, '--format', 'pax', '-C', ROOT, `@${spec}`]);
    const image = join(dir, 'tarball.ufs');
    await createUfs(image, { from: [tarball] });
    await expectLinuxReads(image, tree, immutable);
  }, 300_000);
});
