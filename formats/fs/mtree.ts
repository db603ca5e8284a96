/**
 * mtree specifications (FreeBSD mtree(5)) and the METALOG that `make installworld -DNO_ROOT`
 * writes (the same syntax, full paths, duplicates appended later): parse into one entry per
 * path, and print (the full-path form, as METALOG has it).
 *
 * Syntax handled: `#` comments, `\` at the end of a line continuing it, `/set` and `/unset`
 * (defaults for later lines), names with vis(3) escapes (`\040`, `\s`, `\\` ...), full paths
 * (a name holding '/': `./bin/ls`) and the hierarchical form of `mtree -c` (a directory
 * without '/' is entered, `..` leaves it). A path named twice: the later keywords win, as
 * makefs merges METALOG duplicates.
 */
import { fail } from '../common/errors.js';
import { normalizeArchivePath } from '../archive/archive-path.js';
import { flagNames, parseFlagNames } from '../archive/file-flags.js';

export type MtreeType = 'file' | 'dir' | 'link' | 'char' | 'block' | 'fifo' | 'socket';

export interface MtreeKeywords {
  type?: MtreeType;
  uname?: string;
  gname?: string;
  uid?: number;
  gid?: number;
  /** Permission bits with setuid/setgid/sticky. */
  mode?: number;
  /** FreeBSD st_flags. */
  flags?: number;
  size?: number;
  /** Symlink target. */
  link?: string;
  time?: { sec: number; nsec: number };
  /** Where the file's bytes are, relative to the spec's folder. */
  contents?: string;
  device?: { major: number; minor: number };
  nlink?: number;
  sha256?: string;
  /** nochange / optional / ignore. */
  nochange?: boolean;
  optional?: boolean;
  ignore?: boolean;
  tags?: string;
}

export interface MtreeEntry {
  /** Relative, as FileTree keeps it ('' for the root). */
  path: string;
  keywords: MtreeKeywords;
}

const TYPES: readonly string[] = ['file', 'dir', 'link', 'char', 'block', 'fifo', 'socket'];
/** Digests and others mtree may carry that a file system does not keep: accepted, not used. */
const IGNORED = new Set(['cksum', 'md5', 'md5digest', 'rmd160', 'rmd160digest', 'ripemd160digest', 'sha1', 'sha1digest', 'sha384', 'sha384digest', 'sha512', 'sha512digest', 'inode', 'resdevice']);
const MAX_LINE = 1 << 20;

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, s: 32, '\\': 92, '#': 35, ' ': 32, '0': 0 };

/** vis(3) escapes undone: `\ooo` octal bytes, C escapes, `\s` for space; bytes read as UTF-8. */
export function unvis(s: string, lineNo: number): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\') {
      bytes.push(...enc.encode(c));
      continue;
    }
    const oct = /^[0-7]{3}/.exec(s.slice(i + 1, i + 4));
    if (oct) {
      bytes.push(parseInt(oct[0], 8) & 0xff);
      i += 3;
    } else if (s[i + 1] in C_ESCAPES) {
      bytes.push(C_ESCAPES[s[i + 1]]);
      i += 1;
    } else throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: the escape ${JSON.stringify(s.slice(i, i + 4))} is not one vis(3) writes`);
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** vis(3)-style escaping for names and values: whitespace, '\', '#', '=' and non-ASCII as `\ooo`. */
export function vis(s: string): string {
  let out = '';
  for (const b of new TextEncoder().encode(s)) {
    out += b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x23 && b !== 0x3d ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function integer(value: string, key: string, lineNo: number, radix = 10): number {
  const re = radix === 8 ? /^[0-7]{1,8}$/ : /^\d{1,16}$/;
  if (!re.test(value) || parseInt(value, radix) > Number.MAX_SAFE_INTEGER)
    throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: ${key}=${JSON.stringify(value.slice(0, 40))} is not a number`);
  return parseInt(value, radix);
}

function numberAnyBase(value: string, key: string, lineNo: number): number {
  if (/^0x[0-9a-f]{1,8}$/i.test(value)) return parseInt(value.slice(2), 16);
  if (/^0[0-7]+$/.test(value)) return parseInt(value, 8);
  return integer(value, key, lineNo);
}

/** `device=` as mtree writes it: `format,major,minor` (format native, freebsd, 386bsd, ...). */
function device(value: string, lineNo: number): { major: number; minor: number } {
  const parts = value.split(',');
  if (parts.length !== 3) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: device=${JSON.stringify(value.slice(0, 40))} is not format,major,minor`);
  return { major: numberAnyBase(parts[1], 'device', lineNo), minor: numberAnyBase(parts[2], 'device', lineNo) };
}

function applyKeyword(k: MtreeKeywords, key: string, raw: string | undefined, lineNo: number): void {
  const need = () => {
    if (raw === undefined) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: the keyword ${key} needs a value`);
    return raw;
  };
  switch (key) {
    case 'type': {
      const t = need();
      if (!TYPES.includes(t)) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: type=${JSON.stringify(t.slice(0, 20))} is not a file type`);
      k.type = t as MtreeType;
      return;
    }
    case 'uname':
    case 'gname':
      k[key] = unvis(need(), lineNo);
      return;
    case 'uid':
    case 'gid':
    case 'size':
    case 'nlink':
      k[key] = integer(need(), key, lineNo);
      return;
    case 'mode': {
      const m = integer(need(), key, lineNo, 8);
      if (m > 0o7777) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: mode=${raw} holds more than permission bits`);
      k.mode = m;
      return;
    }
    case 'flags':
      k.flags = parseFlagNames(need());
      return;
    case 'link':
      k.link = unvis(need(), lineNo);
      return;
    case 'contents':
      k.contents = unvis(need(), lineNo);
      return;
    case 'time': {
      // FreeBSD mtree: seconds, '.', then nanoseconds as a whole number (not a fraction).
      const m = /^(-?\d{1,16})(?:\.(\d{1,9}))?$/.exec(need());
      if (!m) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: time=${JSON.stringify(raw?.slice(0, 40))} is not seconds.nanoseconds`);
      k.time = { sec: Number(m[1]), nsec: Number(m[2] ?? 0) };
      return;
    }
    case 'device':
      k.device = device(need(), lineNo);
      return;
    case 'sha256':
    case 'sha256digest':
      k.sha256 = need().toLowerCase();
      return;
    case 'tags':
      k.tags = need();
      return;
    case 'nochange':
    case 'optional':
    case 'ignore':
      k[key] = true;
      return;
    default:
      if (IGNORED.has(key)) return;
      throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: unknown keyword ${JSON.stringify(key.slice(0, 40))}`);
  }
}

function parseKeywords(words: string[], lineNo: number, into: MtreeKeywords = {}): MtreeKeywords {
  for (const w of words) {
    const eq = w.indexOf('=');
    applyKeyword(into, eq < 0 ? w : w.slice(0, eq), eq < 0 ? undefined : w.slice(eq + 1), lineNo);
  }
  return into;
}

/** Logical lines: continuations joined, comments and blank lines dropped, with line numbers. */
function logicalLines(text: string): Array<{ words: string[]; lineNo: number }> {
  const out: Array<{ words: string[]; lineNo: number }> = [];
  const physical = text.split('\n');
  for (let i = 0; i < physical.length; i++) {
    const lineNo = i + 1;
    let line = physical[i].replace(/\r$/, '');
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < physical.length) line = line.slice(0, -1) + ' ' + physical[++i].replace(/\r$/, '');
    if (line.length > MAX_LINE) throw fail('mtree', 'TOO_LARGE', `line ${lineNo} is longer than ${MAX_LINE} characters`);
    const words = line.trim().split(/[ \t]+/);
    if (words[0] === '' || words[0].startsWith('#')) continue;
    out.push({ words, lineNo });
  }
  return out;
}

/** The entries of a spec or METALOG, in first-appearance order, duplicates merged. */
export function parseMtree(text: string): MtreeEntry[] {
  let defaults: MtreeKeywords = {};
  const byPath = new Map<string, MtreeEntry>();
  const stack: string[] = []; // folders entered (the hierarchical form); the top is the current one
  for (const { words, lineNo } of logicalLines(text)) {
    const [name, ...rest] = words;
    if (name === '/set') {
      parseKeywords(rest, lineNo, defaults);
      continue;
    }
    if (name === '/unset') {
      if (rest.includes('all')) defaults = {};
      else for (const key of rest) delete (defaults as Record<string, unknown>)[key];
      continue;
    }
    // Other '/word' lines would be commands mtree does not have; '/.' (libarchive's root) is a path.
    if (/^\/[a-z]+$/.test(name)) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: unknown command ${JSON.stringify(name.slice(0, 40))}`);
    if (name === '..') {
      if (rest.length) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: '..' takes no keywords`);
      if (stack.length === 0) throw fail('mtree', 'BAD_VALUE', `line ${lineNo}: '..' above the root`);
      stack.pop();
      continue;
    }
    const decoded = unvis(name, lineNo);
    const full = decoded.includes('/');
    const path = full ? normalizeArchivePath(decoded, 'mtree') : normalizeArchivePath(`${stack[stack.length - 1] ?? ''}/${decoded}`, 'mtree');
    const own = parseKeywords(rest, lineNo);
    const prior = byPath.get(path);
    if (prior) Object.assign(prior.keywords, own);
    else byPath.set(path, { path, keywords: { ...defaults, ...own } });
    const type = byPath.get(path)!.keywords.type;
    if (!full && type === 'dir') stack.push(path);
  }
  return [...byPath.values()];
}

/** A spec in the full-path form (as METALOG): `#mtree 2.0`, then `./path key=value ...` per entry. */
export function printMtree(entries: MtreeEntry[]): string {
  const lines = ['#mtree 2.0'];
  for (const { path, keywords: k } of entries) {
    const words = [path === '' ? '.' : `./${vis(path)}`];
    if (k.type) words.push(`type=${k.type}`);
    if (k.uname !== undefined) words.push(`uname=${vis(k.uname)}`);
    if (k.gname !== undefined) words.push(`gname=${vis(k.gname)}`);
    if (k.uid !== undefined) words.push(`uid=${k.uid}`);
    if (k.gid !== undefined) words.push(`gid=${k.gid}`);
    if (k.mode !== undefined) words.push(`mode=0${k.mode.toString(8)}`);
    if (k.flags !== undefined) words.push(`flags=${flagNames(k.flags)}`);
    if (k.size !== undefined) words.push(`size=${k.size}`);
    if (k.link !== undefined) words.push(`link=${vis(k.link)}`);
    if (k.time) words.push(`time=${k.time.sec}.${String(k.time.nsec).padStart(9, '0')}`);
    if (k.contents !== undefined) words.push(`contents=${vis(k.contents)}`);
    if (k.device) words.push(`device=native,${k.device.major},${k.device.minor}`);
    if (k.nlink !== undefined) words.push(`nlink=${k.nlink}`);
    if (k.sha256 !== undefined) words.push(`sha256digest=${k.sha256}`);
    if (k.tags !== undefined) words.push(`tags=${vis(k.tags)}`);
    for (const b of ['nochange', 'optional', 'ignore'] as const) if (k[b]) words.push(b);
    lines.push(words.join(' '));
  }
  return `${lines.join('\n')}\n`;
}
