/**
 * User and group names to numbers, as makefs -N does: from the tree's own etc/master.passwd
 * (or etc/passwd) and etc/group when it holds them, else from FreeBSD's stock files (the
 * fixed table below), else a clear error naming the user or group.
 */
import { open, readFile } from 'node:fs/promises';
import { DiskmintError } from '../../model/errors.js';
import type { FileTree } from './types.js';

/** FreeBSD's etc/master.passwd (freebsd-src, user name: uid). */
export const FREEBSD_USERS: Readonly<Record<string, number>> = {
  root: 0, toor: 0, daemon: 1, operator: 2, bin: 3, tty: 4, kmem: 5, games: 7, news: 8, man: 9, sshd: 22,
  smmsp: 25, mailnull: 26, bind: 53, unbound: 59, proxy: 62, _pflogd: 64, _dhcp: 65, uucp: 66, pop: 68,
  auditdistd: 78, www: 80, ntpd: 123, _ypldap: 160, hast: 845, tests: 977, nobody: 65534,
};

/** FreeBSD's etc/group (freebsd-src, group name: gid). */
export const FREEBSD_GROUPS: Readonly<Record<string, number>> = {
  wheel: 0, daemon: 1, kmem: 2, sys: 3, tty: 4, operator: 5, mail: 6, bin: 7, news: 8, man: 9, games: 13,
  ftp: 14, staff: 20, sshd: 22, smmsp: 25, mailnull: 26, guest: 31, bind: 53, unbound: 59, proxy: 62,
  authpf: 63, _pflogd: 64, _dhcp: 65, uucp: 66, dialer: 68, network: 69, audit: 77, www: 80, ntpd: 123,
  _ypldap: 160, hast: 845, tests: 977, nogroup: 65533, nobody: 65534,
};

export interface NameTables {
  users: Map<string, number>;
  groups: Map<string, number>;
  /** Where the tables came from, for error messages. */
  from: string;
}

/** `name:...:id:...` lines (passwd, master.passwd and group all keep the id third). */
export function parseIdFile(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.includes(':')) continue;
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]) && !out.has(f[0])) out.set(f[0], Number(f[2]));
  }
  return out;
}

async function treeFile(trees: FileTree[], path: string): Promise<string | undefined> {
  for (const tree of trees) {
    const node = tree.nodes.find((n) => n.path === path && n.kind === 'file');
    const source = node?.hardlinkOf ? tree.nodes.find((n) => n.path === node.hardlinkOf) : node;
    const ref = source?.content;
    if (!ref) continue;
    if (ref.length > 16 << 20) throw new DiskmintError('BAD_ARGUMENT', `${path} in the tree is ${ref.length} bytes: too large for a user table`);
    const handle = await open(ref.path, 'r');
    try {
      const buf = Buffer.alloc(ref.length);
      await handle.read(buf, 0, ref.length, ref.offset);
      return buf.toString('utf8');
    } finally {
      await handle.close();
    }
  }
  return undefined;
}

/**
 * The name tables of the first of `trees` that holds etc/master.passwd or etc/passwd (and
 * etc/group), else FreeBSD's stock tables.
 */
export async function nameTables(trees: FileTree[]): Promise<NameTables> {
  const passwd = (await treeFile(trees, 'etc/master.passwd')) ?? (await treeFile(trees, 'etc/passwd'));
  const group = await treeFile(trees, 'etc/group');
  return {
    users: passwd !== undefined ? parseIdFile(passwd) : new Map(Object.entries(FREEBSD_USERS)),
    groups: group !== undefined ? parseIdFile(group) : new Map(Object.entries(FREEBSD_GROUPS)),
    from: passwd !== undefined || group !== undefined ? "the tree's etc/master.passwd, etc/passwd and etc/group" : "FreeBSD's stock etc/master.passwd and etc/group",
  };
}

/** The id of a user or group name; a clear error when the tables do not know it. */
export function lookupId(tables: NameTables, kind: 'user' | 'group', name: string, where: string): number {
  const id = (kind === 'user' ? tables.users : tables.groups).get(name);
  if (id === undefined)
    throw new DiskmintError('BAD_ARGUMENT', `${where}: no ${kind} named ${JSON.stringify(name)} in ${tables.from}; give ${kind === 'user' ? 'uid' : 'gid'}= or add the ${kind}`);
  return id;
}

/** Read a small file whole (a spec, a passwd file). */
export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new DiskmintError('INPUT', `cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}
