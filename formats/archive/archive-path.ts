/**
 * Member paths of archives and mtree specs, made relative the way FileTree keeps them: '/'
 * separated, no leading './' or '/', no trailing '/', '' for the root. A '..' component, an
 * empty or NUL-holding path is refused: an archive never names a place outside its tree.
 */
import { fail } from '../common/errors.js';

export function normalizeArchivePath(raw: string, format: string): string {
  if (raw.includes('\0')) throw fail(format, 'BAD_VALUE', `path ${JSON.stringify(raw.slice(0, 80))} holds a NUL byte`);
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw fail(format, 'BAD_VALUE', `path ${JSON.stringify(raw.slice(0, 200))} climbs out of the tree with '..'`);
    parts.push(part);
  }
  if (parts.length === 0 && !/^[./]+$/.test(raw)) throw fail(format, 'BAD_VALUE', 'an empty path');
  return parts.join('/');
}
