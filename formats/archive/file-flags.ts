/**
 * FreeBSD file flags (st_flags) and their names, as chflags(1), mtree(8), METALOG files and
 * libarchive's SCHILY.fflags spell them (lib/libc/gen/strtofflags.c: fflagstostr prints the
 * first name of each flag; strtofflags takes every name, and "noNAME" clears that flag).
 */
import { fail } from '../common/errors.js';

/** sys/sys/stat.h, "Definitions of flags stored in file flags word". */
export const FILE_FLAGS = {
  UF_NODUMP: 0x00000001, // do not dump file
  UF_IMMUTABLE: 0x00000002, // file may not be changed
  UF_APPEND: 0x00000004, // writes to file may only append
  UF_OPAQUE: 0x00000008, // directory is opaque wrt. union
  UF_NOUNLINK: 0x00000010, // file may not be removed or renamed
  UF_SYSTEM: 0x00000080, // Windows system file bit
  UF_SPARSE: 0x00000100, // sparse file
  UF_OFFLINE: 0x00000200, // file is offline
  UF_REPARSE: 0x00000400, // Windows reparse point file bit
  UF_ARCHIVE: 0x00000800, // file needs to be archived
  UF_READONLY: 0x00001000, // Windows readonly file bit
  UF_HIDDEN: 0x00008000, // file is hidden
  SF_ARCHIVED: 0x00010000, // file is archived
  SF_IMMUTABLE: 0x00020000, // file may not be changed
  SF_APPEND: 0x00040000, // writes to file may only append
  SF_NOUNLINK: 0x00100000, // file may not be removed or renamed
  SF_SNAPSHOT: 0x00200000, // snapshot inode
} as const;

const F = FILE_FLAGS;

/**
 * strtofflags.c's mapping, first name of each flag first. `nodump` is the one whose plain
 * name sets the flag ("dump" clears it); for all others the plain name sets and "no" clears.
 */
const NAMES: Array<[number, string[]]> = [
  [F.SF_APPEND, ['sappnd', 'sappend']],
  [F.SF_ARCHIVED, ['arch', 'archived']],
  [F.SF_IMMUTABLE, ['schg', 'schange', 'simmutable']],
  [F.SF_NOUNLINK, ['sunlnk', 'sunlink']],
  [F.SF_SNAPSHOT, ['snapshot']],
  [F.UF_APPEND, ['uappnd', 'uappend']],
  [F.UF_ARCHIVE, ['uarch', 'uarchive']],
  [F.UF_HIDDEN, ['hidden', 'uhidden']],
  [F.UF_IMMUTABLE, ['uchg', 'uchange', 'uimmutable']],
  [F.UF_NODUMP, ['nodump']],
  [F.UF_NOUNLINK, ['uunlnk', 'uunlink']],
  [F.UF_OFFLINE, ['offline', 'uoffline']],
  [F.UF_OPAQUE, ['opaque']],
  [F.UF_READONLY, ['rdonly', 'urdonly', 'readonly', 'ureadonly']],
  [F.UF_REPARSE, ['reparse', 'ureparse']],
  [F.UF_SPARSE, ['sparse', 'usparse']],
  [F.UF_SYSTEM, ['system', 'usystem']],
];

const SETS = new Map<string, number>();
const CLEARS = new Map<string, number>();
for (const [flag, names] of NAMES)
  for (const name of names) {
    if (flag === F.UF_NODUMP) {
      SETS.set(name, flag);
      CLEARS.set('dump', flag);
    } else {
      SETS.set(name, flag);
      CLEARS.set(`no${name}`, flag);
    }
  }

/** Every flag this table names (others in a value are refused by `flagNames`). */
export const KNOWN_FILE_FLAGS = NAMES.reduce((all, [flag]) => all | flag, 0);

/**
 * The flags a comma-separated list sets ("schg,nodump"; "none" and "" are none; "noNAME"
 * names clear, so they add nothing). An unknown name is a FormatError naming it.
 */
export function parseFlagNames(text: string, format = 'mtree'): number {
  let flags = 0;
  for (const name of text.split(/[\t ,]+/)) {
    if (name === '' || name === 'none') continue;
    const set = SETS.get(name);
    if (set !== undefined) flags |= set;
    else if (!CLEARS.has(name)) throw fail(format, 'BAD_VALUE', `unknown file flag ${JSON.stringify(name.slice(0, 40))}`);
  }
  return flags >>> 0;
}

/** The flags as fflagstostr(3) prints them ("schg,uarch"); "none" for no flags. */
export function flagNames(flags: number): string {
  if ((flags & ~KNOWN_FILE_FLAGS) !== 0)
    throw fail('mtree', 'INVALID_ARGUMENT', `file flags 0x${(flags >>> 0).toString(16)} hold bits FreeBSD names no flag for`);
  const names = NAMES.filter(([flag]) => (flags & flag) !== 0).map(([, n]) => n[0]);
  return names.length ? names.join(',') : 'none';
}
