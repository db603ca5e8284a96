/**
 * The consistency check of a UFS1/UFS2 file system, in the spirit of `fsck_ffs -n` (FreeBSD
 * sbin/fsck_ffs): the superblock against its copy in every group (setup.c's comparison of the
 * geometry fields), pass1 (check-inodes.ts: inodes, their blocks, duplicates, ranges), pass2
 * and pass3 (check-dirs.ts: directory structure and reachability), pass4 (link counts) and
 * pass5 (every group's maps and summaries rebuilt from what the inodes hold and compared with
 * the group, the summary area at fs_csaddr and fs_cstotal), and the metadata check-hashes
 * FreeBSD 12+ keeps (check-hashes.ts). Reads, never writes.
 */
import { FormatError } from '../../../formats/common/errors.js';
import { decodeCsumArray, decodeSuperblock, type Csum, type Superblock } from '../../../formats/fs/ufs2/superblock.js';
import { summarizeFreeMap, type CylinderGroup } from '../../../formats/fs/ufs2/cylinder-group.js';
import { checkDirectories } from './check-dirs.js';
import { checkMetadataHashes } from './check-hashes.js';
import { initializedInodes, metadataMap, scanGroupInodes, testBit, type FragmentMaps, type InodeFacts } from './check-inodes.js';
import { problemList, type Report } from './check-report.js';
import { cgBase, cgSblock, ROOT_INO } from './read-geometry.js';
import type { UfsProblem } from './read-types.js';
import type { UfsVolume } from './read-volume.js';

/** The geometry fields fsck_ffs compared between the superblock and its alternate (setup.c readsb). */
const COPY_FIELDS = [
  'sblkno', 'cblkno', 'iblkno', 'dblkno', 'oldCgoffset', 'oldCgmask', 'ncg', 'bsize', 'fsize', 'frag', 'bmask', 'fmask',
  'bshift', 'fshift', 'fragshift', 'fsbtodb', 'sbsize', 'nindir', 'inopb', 'cssize', 'ipg', 'fpg', 'magic',
] as const satisfies readonly (keyof Superblock)[]; // prettier-ignore

/** sizeof(struct fs) (fs.h): the bytes of a superblock copy compared. */
const STRUCT_FS_SIZE = 1376;

export async function checkUfs(v: UfsVolume): Promise<UfsProblem[]> {
  const { problems, report } = problemList();
  const { g } = v;
  // fs.h fs_clean: 0 when the file system was mounted and not unmounted (FreeBSD's boot runs fsck_ffs on it).
  if (v.sb.clean === 0)
    report('ufs.not-clean', 'warning', 'the file system was not unmounted cleanly (fs_clean 0): FreeBSD checks it with fsck_ffs before mounting it');
  await checkSuperblockCopies(v, report);
  await checkMetadataHashes(v, report);
  let csums: Csum[] | undefined;
  try {
    csums = decodeCsumArray(await v.readExact(g.csaddr * g.fragSize, g.ncg * 16), g.ncg);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    report('ufs.cg-summary', 'error', `the summary area at fragment ${g.csaddr} cannot be read: ${e.message}`);
  }
  const maps: FragmentMaps = { meta: metadataMap(g, Math.ceil(g.cssize / g.fragSize)), used: new Uint8Array(Math.ceil(g.sizeFrags / 8)) };
  const inodes = new Map<number, InodeFacts>();
  const dirs: number[] = [];
  const readCg = async (c: number, say: boolean): Promise<CylinderGroup | undefined> => {
    try {
      return await v.readCg(c);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      if (say) report('ufs.cg-header', 'error', `cylinder group ${c}: ${e.message}`);
      return undefined;
    }
  };
  for (let c = 0; c < g.ncg; c++) await scanGroupInodes(v, c, await readCg(c, true), maps, inodes, dirs, report);
  if (!inodes.has(ROOT_INO) || inodes.get(ROOT_INO)!.kind !== 'dir')
    report('ufs.dir-entry', 'error', `the root inode ${ROOT_INO} is not an allocated directory`);
  const refs = await checkDirectories(v, dirs, inodes, report);
  // pass4.c: each inode's link count against the entries naming it.
  for (const [ino, facts] of inodes) {
    const n = refs.get(ino) ?? 0;
    if (n === 0) report('ufs.link-count', 'error', `inode ${ino} (a ${facts.kind}) is allocated but no directory names it`);
    else if (n !== facts.nlink) report('ufs.link-count', 'error', `inode ${ino} (a ${facts.kind}) has link count ${facts.nlink}; ${n} entries name it`);
  }
  const dirsPerGroup = new Array<number>(g.ncg).fill(0);
  for (const d of dirs) dirsPerGroup[Math.floor(d / g.ipg)]++;
  const total: Csum = { ndir: 0, nbfree: 0, nifree: 0, nffree: 0 };
  for (let c = 0; c < g.ncg; c++) {
    const cg = await readCg(c, false);
    if (!cg) continue;
    checkGroupMaps(v, c, cg, maps, dirsPerGroup[c], csums?.[c], total, report);
  }
  const sbTotal = g.version === 2 ? v.sb.cstotal : v.sb.oldCstotal;
  for (const k of ['ndir', 'nbfree', 'nifree', 'nffree'] as const) {
    if (sbTotal[k] !== total[k]) report('ufs.cg-summary', 'error', `the superblock's ${csumName(k)} total is ${sbTotal[k]}; the groups add up to ${total[k]}`);
  }
  return problems;
}

const csumName = (k: keyof Csum) => ({ ndir: 'directory', nbfree: 'free block', nifree: 'free inode', nffree: 'free fragment' })[k];

/** Every superblock copy (one per group, at cgsblock) must agree with the superblock in its geometry. */
async function checkSuperblockCopies(v: UfsVolume, report: Report): Promise<void> {
  const { g, sb } = v;
  for (let c = 0; c < g.ncg; c++) {
    const at = cgSblock(g, c) * g.fragSize;
    if (at === g.superblockOffset) continue;
    let copy: Superblock;
    try {
      copy = decodeSuperblock(await v.readExact(at, STRUCT_FS_SIZE));
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      report('ufs.superblock-copy-mismatch', 'error', `the superblock copy in group ${c} (byte ${at}) cannot be read: ${e.message}`);
      continue;
    }
    const differ = COPY_FIELDS.filter((k) => copy[k] !== sb[k]);
    if (differ.length > 0) {
      const list = differ.map((k) => `${k} ${copy[k]} (superblock ${sb[k]})`).join(', ');
      report('ufs.superblock-copy-mismatch', 'error', `the superblock copy in group ${c} (byte ${at}) differs: ${list}`);
    }
  }
}

/** pass5.c for group `c`: its free-fragment and used-inode maps against what pass 1 found, and its counts. */
function checkGroupMaps(
  v: UfsVolume,
  c: number,
  cg: CylinderGroup,
  maps: FragmentMaps,
  ndir: number,
  csum: Csum | undefined,
  total: Csum,
  report: Report,
): void {
  const { g } = v;
  const base = cgBase(g, c);
  const ndblk = Math.min(g.fpg, g.sizeFrags - base);
  if (cg.ndblk !== ndblk) report('ufs.cg-header', 'error', `cylinder group ${c} says it holds ${cg.ndblk} fragments; it holds ${ndblk}`);
  let freeButUsed = 0;
  let lost = 0;
  let firstBad = -1;
  for (let i = 0; i < ndblk; i++) {
    const f = base + i;
    const free = testBit(cg.blksfree, i);
    const taken = testBit(maps.used, f) || testBit(maps.meta, f);
    if (free && taken) freeButUsed++;
    if (!free && !taken) lost++;
    if (free === taken && firstBad < 0) firstBad = f;
  }
  if (freeButUsed > 0) report('ufs.block-bitmap', 'error', `group ${c}: ${freeButUsed} fragments in use are marked free (the first is fragment ${firstBad})`);
  if (lost > 0)
    report('ufs.block-bitmap', 'warning', `group ${c}: ${lost} fragments are marked in use but nothing holds them (the first is fragment ${firstBad})`);
  let usedInodes = 0;
  for (let i = 0; i < g.ipg; i++) if (testBit(cg.inosused, i)) usedInodes++;
  const inited = initializedInodes(g, cg);
  for (let i = inited; i < g.ipg; i++) {
    if (testBit(cg.inosused, i)) {
      report('ufs.inode-bitmap', 'error', `group ${c}: inode ${c * g.ipg + i} is marked in use beyond cg_initediblk ${inited}`);
      break;
    }
  }
  const s = summarizeFreeMap(cg.blksfree, { ndblk, fpg: g.fpg, frag: g.frag, contigsumsize: 0 });
  const found: Csum = { ndir, nbfree: s.nbfree, nifree: g.ipg - usedInodes, nffree: s.nffree };
  for (const k of ['ndir', 'nbfree', 'nifree', 'nffree'] as const) {
    if (cg.cs[k] !== found[k]) report('ufs.cg-summary', 'error', `group ${c} counts ${cg.cs[k]} ${csumName(k)}s; its maps hold ${found[k]}`);
    if (csum && csum[k] !== cg.cs[k])
      report('ufs.cg-summary', 'error', `the summary area counts ${csum[k]} ${csumName(k)}s for group ${c}; the group says ${cg.cs[k]}`);
    total[k] += found[k];
  }
  for (let n = 1; n < g.frag; n++) {
    if (cg.frsum[n] !== s.frsum[n])
      report('ufs.cg-summary', 'warning', `group ${c} counts ${cg.frsum[n]} free runs of ${n} fragments (cg_frsum); its map holds ${s.frsum[n]}`);
  }
}
