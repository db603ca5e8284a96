/**
 * The check's second and third passes, as fsck_ffs pass2.c and pass3.c: every directory's
 * 512-byte chunks decoded (d_reclen, d_namlen), '.' and '..' first and right, names valid
 * and unique, entries naming allocated inodes of the type d_type says; every directory named
 * by exactly one parent and reachable from the root. Returns how many entries name each
 * inode, for the link counts (pass4.c).
 */
import { FormatError } from '../../../formats/common/errors.js';
import { decodeDirectory } from '../../../formats/fs/ufs2/directory.js';
import { DT_BY_KIND, type UfsInode } from './inode-types.js';
import { DIRBLKSIZ, inodeCount, ROOT_INO } from './read-geometry.js';
import { MAX_DIR_BYTES, type UfsVolume } from './read-volume.js';
import type { InodeFacts } from './check-inodes.js';
import type { Report } from './check-report.js';

/** dir.h DT_UNKNOWN: an entry that does not say its type. */
const DT_UNKNOWN = 0;
const utf8 = new TextDecoder('utf-8');

export async function checkDirectories(v: UfsVolume, dirs: number[], inodes: Map<number, InodeFacts>, report: Report): Promise<Map<number, number>> {
  const refs = new Map<number, number>();
  const parent = new Map<number, number>();
  const dotdot = new Map<number, number>();
  const children = new Map<number, number[]>();
  const total = inodeCount(v.g);
  for (const self of dirs) {
    const where = `directory inode ${self}`;
    let dir: UfsInode;
    try {
      dir = await v.readInode(self);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      continue; // pass 1 read it; reported there if it could not
    }
    if (dir.size % DIRBLKSIZ !== 0 || dir.size === 0 || dir.size > MAX_DIR_BYTES) {
      report('ufs.dir-entry', 'error', `${where} is ${dir.size} bytes, not a whole number (1 or more) of ${DIRBLKSIZ}-byte chunks`);
      continue;
    }
    const bytes = new Uint8Array(dir.size);
    try {
      let at = 0;
      for await (const chunk of v.fileBytes(dir)) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      report('ufs.dir-entry', 'error', `${where} cannot be read: ${e.message}`);
      continue;
    }
    const names = new Set<string>();
    let index = 0;
    for (let chunk = 0; chunk < bytes.length; chunk += DIRBLKSIZ) {
      let entries;
      try {
        entries = decodeDirectory(bytes.subarray(chunk, chunk + DIRBLKSIZ));
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        report('ufs.dir-entry', 'error', `${where}, chunk at byte ${chunk}: ${e.message}`);
        continue;
      }
      for (const e of entries) {
        const name = utf8.decode(e.name);
        const k = index++;
        const label = `${where}: entry ${JSON.stringify(name)}`;
        if (k === 0 && (name !== '.' || e.ino !== self)) report('ufs.dir-entry', 'error', `${where}: the first entry is not '.' naming itself`);
        if (k === 1 && name !== '..') report('ufs.dir-entry', 'error', `${where}: the second entry is not '..'`);
        if (k > 1 && (name === '.' || name === '..')) report('ufs.dir-entry', 'error', `${label} appears again at entry ${k}`);
        if (e.name.includes(0) || e.name.includes(0x2f)) report('ufs.dir-entry', 'error', `${label} holds a NUL or '/'`);
        if (names.has(name)) report('ufs.dir-entry', 'error', `${label} appears twice`);
        names.add(name);
        if (e.ino >= total) {
          report('ufs.dir-entry', 'error', `${label} names inode ${e.ino}; the file system has ${total}`);
          continue;
        }
        const target = inodes.get(e.ino);
        if (!target) {
          report('ufs.dir-entry', 'error', `${label} names inode ${e.ino}, which is not allocated`);
          continue;
        }
        if (e.type !== DT_UNKNOWN && e.type !== DT_BY_KIND[target.kind]) {
          report('ufs.dir-entry', 'warning', `${label} says d_type ${e.type}; inode ${e.ino} is a ${target.kind}`);
        }
        refs.set(e.ino, (refs.get(e.ino) ?? 0) + 1);
        if (name === '..') dotdot.set(self, e.ino);
        else if (name !== '.' && target.kind === 'dir') {
          if (parent.has(e.ino)) report('ufs.dir-entry', 'error', `${label}: directory inode ${e.ino} is also named in directory inode ${parent.get(e.ino)}`);
          else {
            parent.set(e.ino, self);
            children.set(self, [...(children.get(self) ?? []), e.ino]);
          }
        }
      }
    }
  }
  parent.set(ROOT_INO, ROOT_INO);
  // pass3.c: every directory reachable from the root, and its '..' naming its parent.
  const reached = new Set<number>([ROOT_INO]);
  const queue = [ROOT_INO];
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      if (reached.has(child)) continue;
      reached.add(child);
      queue.push(child);
    }
  }
  for (const ino of dirs) {
    if (!reached.has(ino)) {
      report('ufs.dir-entry', 'error', `directory inode ${ino} cannot be reached from the root`);
      continue;
    }
    const up = dotdot.get(ino);
    if (up !== undefined && up !== parent.get(ino)) {
      report('ufs.dir-entry', 'error', `directory inode ${ino}: '..' names inode ${up}, its parent is inode ${parent.get(ino)}`);
    }
  }
  return refs;
}
