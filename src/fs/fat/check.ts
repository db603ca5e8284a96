/**
 * The consistency check of a FAT volume, in the spirit of `fsck.fat -n`: FAT copies agree, every
 * chain is claimed once (loops, cross-links, lost clusters), folders hold '.' and '..' and valid
 * unique names, sizes match chains, FSInfo and the backup boot sector agree. Reads, never writes.
 */
import { FormatError } from '../../../formats/common/errors.js';
import { ATTR_DIRECTORY, decodeDirEntries, type DecodedDirEntry } from '../../../formats/fs/fat-dir.js';
import { decodeFsInfo } from '../../../formats/fs/fat-fsinfo.js';
import { caseFoldName } from '../../../formats/fs/fat-names.js';
import { MAX_DEPTH, MAX_DIR_BYTES, isDotEntry, storedShortName, type FatProblem, type MountedFat } from './volume.js';

/** The problems of the volume `v` (at most 1000 listed). */
export async function checkFat(v: MountedFat): Promise<FatProblem[]> {
  const { head, boot, g, ss, cb, fatLen, fatOffset, fat, eoc, bad, maxCluster, rootIsChain, readExact, readDirBytes, toEntry } = v;
  const problems: FatProblem[] = [];
  const add = (code: string, severity: FatProblem['severity'], message: string) => {
    if (problems.length < 1000) problems.push({ code, severity, message });
  };
  // Every FAT copy must agree with the first.
  const first = await readExact(fatOffset(0), fatLen);
  for (let k = 1; k < g.fatCount; k++) {
    const copy = await readExact(fatOffset(k), fatLen);
    if (!Buffer.from(copy).equals(Buffer.from(first))) add('FAT_MISMATCH', 'error', `FAT ${k + 1} differs from FAT 1`);
  }
  if ((fat[0] & 0xff) !== g.media) add('MEDIA_MISMATCH', 'warning', `FAT[0] holds media 0x${(fat[0] & 0xff).toString(16)}, the BPB 0x${g.media.toString(16)}`);
  // 0 unowned, 1 owned by an earlier chain, 2 owned by the chain being walked.
  const owner = new Uint8Array(g.clusters + 2);
  const claim = (start: number, what: string): number => {
    const mine: number[] = [];
    let c = start;
    let problem = false;
    while (true) {
      if (c < 2 || c > maxCluster) {
        add('CLUSTER_RANGE', 'error', `${what}: cluster ${c} is outside 2..${maxCluster}`);
        problem = true;
        break;
      }
      if (owner[c] === 2) {
        add('CHAIN_LOOP', 'error', `${what}: the cluster chain loops at cluster ${c}`);
        problem = true;
        break;
      }
      if (owner[c] === 1) {
        add('CROSS_LINK', 'error', `${what}: cluster ${c} also belongs to another file or folder`);
        problem = true;
        break;
      }
      owner[c] = 2;
      mine.push(c);
      const nx = fat[c];
      if (nx >= eoc) break;
      if (nx < 2 || nx === bad) {
        add('BAD_CHAIN', 'error', `${what}: the chain ends in a ${nx === bad ? 'bad' : 'free'} cluster after ${c}`);
        problem = true;
        break;
      }
      c = nx;
    }
    for (const m of mine) owner[m] = 1;
    return problem ? -1 : mine.length;
  };
  const seenDirs = new Set<number>();
  const walkDir = async (cluster: number, parent: number, path: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) return add('TOO_DEEP', 'error', `${path}: folders nested more than ${MAX_DEPTH} deep`);
    if (cluster !== 0 || rootIsChain) {
      const n = claim(cluster === 0 ? boot.rootCluster : cluster, path);
      if (n < 0) return;
      if (n * cb > MAX_DIR_BYTES) return add('DIR_TOO_LARGE', 'error', `${path}: folder of ${n * cb} bytes is larger than FAT allows`);
    }
    let entries: DecodedDirEntry[];
    try {
      entries = decodeDirEntries(await readDirBytes(cluster, path));
    } catch (err) {
      if (err instanceof FormatError) return add('UNREADABLE_DIR', 'error', `${path}: ${err.message}`);
      throw err;
    }
    if (cluster !== 0) {
      const [dot, dotdot] = entries;
      if (!dot || dot.shortName !== '.' || !(dot.attr & ATTR_DIRECTORY) || dot.cluster !== cluster)
        add('BAD_DOT', 'error', `${path}: first entry is not '.' pointing at cluster ${cluster}`);
      if (!dotdot || dotdot.shortName !== '..' || !(dotdot.attr & ATTR_DIRECTORY) || dotdot.cluster !== parent)
        add('BAD_DOTDOT', 'error', `${path}: second entry is not '..' pointing at cluster ${parent}`);
    }
    const names = new Set<string>();
    for (const raw of entries) {
      if (isDotEntry(raw)) continue;
      const e = toEntry(raw, path);
      if (e.storedName === undefined && names.has(caseFoldName(e.name))) add('DUPLICATE_NAME', 'error', `${e.path}: the name appears twice in its folder`);
      names.add(caseFoldName(e.name));
      if (raw.badShortName !== undefined)
        add('BAD_SHORT_NAME', 'error', `${e.path}: the short name ${JSON.stringify(storedShortName(raw.name11))} is not a valid 8.3 name: ${raw.badShortName}`);
      if (raw.badLfn) add('BAD_LFN', 'warning', `${e.path}: long name entries do not match their short entry`);
      if (e.firstCluster !== 0 && (e.firstCluster < 2 || e.firstCluster > maxCluster)) {
        add('CLUSTER_RANGE', 'error', `${e.path}: first cluster ${e.firstCluster} is outside 2..${maxCluster}`);
        continue;
      }
      if (e.isDirectory) {
        if (e.firstCluster === 0) add('DIR_NO_CLUSTER', 'error', `${e.path}: folder without a cluster`);
        else if (seenDirs.has(e.firstCluster)) add('DIR_LOOP', 'error', `${e.path}: folder cluster ${e.firstCluster} is already a folder`);
        else {
          seenDirs.add(e.firstCluster);
          await walkDir(e.firstCluster, cluster, e.path, depth + 1);
        }
        continue;
      }
      if (e.firstCluster === 0) {
        if (e.size > 0) add('SIZE_WITHOUT_CLUSTERS', 'error', `${e.path}: ${e.size} bytes but no clusters`);
        continue;
      }
      const n = claim(e.firstCluster, e.path);
      if (n < 0) continue;
      const want = Math.ceil(e.size / cb);
      if (n !== want) add('SIZE_MISMATCH', 'error', `${e.path}: ${e.size} bytes need ${want} clusters, the chain has ${n}`);
    }
  };
  await walkDir(0, 0, '/', 0);
  let lost = 0;
  let free = 0;
  for (let c = 2; c <= maxCluster; c++) {
    if (fat[c] === 0) free++;
    else if (fat[c] !== bad && owner[c] === 0) lost++;
  }
  if (lost > 0) add('LOST_CLUSTERS', 'error', `${lost} clusters are allocated but belong to no file or folder`);
  if (g.bits === 32 && boot.fsInfoSector > 0 && boot.fsInfoSector < g.reservedSectors) {
    const info = decodeFsInfo(await readExact(boot.fsInfoSector * ss, 512));
    if (!info) add('FSINFO_SIGNATURE', 'warning', `FSInfo sector ${boot.fsInfoSector} lacks its signatures`);
    else if (info.freeCount !== 0xffffffff && info.freeCount !== free)
      add('FSINFO_FREE', 'warning', `FSInfo says ${info.freeCount} free clusters, the FAT has ${free}`);
  }
  if (g.bits === 32 && boot.backupBootSector > 0 && boot.backupBootSector < g.reservedSectors) {
    const backup = await readExact(boot.backupBootSector * ss, 512);
    if (!Buffer.from(backup).equals(Buffer.from(head)))
      add('BACKUP_BOOT', 'warning', `the backup boot sector ${boot.backupBootSector} differs from the boot sector`);
  }
  return problems;
}
