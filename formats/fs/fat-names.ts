/**
 * The names FAT can hold (fatgen103 sections 6 and 7): long-name rules and case folding, legal
 * 8.3 short names and Windows-style alias generation ("The Basis-Name Generation Algorithm" and
 * "The Numeric-Tail Generation Algorithm"), fsck.fat's short-name checks, OEM code page
 * decoding and volume labels. The 32-byte entries that store them are in fat-dir.ts.
 */
import { fail } from '../common/errors.js';

/** DIR_NTRes case bits used by Windows NT for all-lower-case base / extension (not in fatgen103). */
export const NT_LOWER_BASE = 0x08;
export const NT_LOWER_EXT = 0x10;
/** A long name is at most 255 UTF-16 units (fatgen103 section 7: at most 20 LFN entries). */
export const MAX_LONG_NAME = 255;

/** Characters fatgen103 allows in a short name besides A-Z and 0-9 (bytes > 127 are left out: we stay ASCII). */
const SHORT_SPECIALS = new Set("$%'-_@~`!(){}^#&".split(''));
/** Short-name characters and the dot, either case (ASCII names are checked by these at once). */
const SHORT_NAME_CHARS = /^[A-Za-z0-9$%'\-_@~`!(){}^#&.]*$/;
const ASCII = /^[\x00-\x7f]*$/;
/** Characters a long name may not contain (fatgen103 section 7), control characters included. */
const LONG_FORBIDDEN = /[\x00-\x1f\x7f"*/:<>?\\|]/;

/** Throws INVALID_ARGUMENT when FAT cannot hold `name` as a long file name. */
export function validateLongName(name: string): void {
  const refused = (why: string) => `FAT cannot hold the name ${JSON.stringify(name)}: ${why}`;
  if (name.length === 0) throw fail('fat', 'INVALID_ARGUMENT', refused('it is empty'));
  if (name === '.' || name === '..') throw fail('fat', 'INVALID_ARGUMENT', refused('"." and ".." are reserved'));
  if (name.length > MAX_LONG_NAME) throw fail('fat', 'INVALID_ARGUMENT', refused(`it is ${name.length} UTF-16 units long, at most ${MAX_LONG_NAME} allowed`));
  const bad = LONG_FORBIDDEN.exec(name)?.[0];
  if (bad !== undefined) {
    throw fail(
      'fat',
      'INVALID_ARGUMENT',
      refused(bad < ' ' || bad === '\x7f' ? 'it contains a control character' : `it contains the reserved character ${JSON.stringify(bad)}`),
    );
  }
  if (name.endsWith('.') || name.endsWith(' ')) throw fail('fat', 'INVALID_ARGUMENT', refused('it ends with a dot or a space'));
}

/** The key names are compared by: FAT looks names up without regard to case. */
export function caseFoldName(name: string): string {
  if (ASCII.test(name)) return name.toUpperCase(); // one-to-one for ASCII: the common case, fast
  // Simple (one-to-one) case mapping like the volume's up-case table: 'ß' stays 'ß'.
  let out = '';
  for (const ch of name) {
    const up = ch.toUpperCase();
    out += up.length === ch.length ? up : ch;
  }
  return out;
}

export interface ShortNamePlan {
  /** DIR_Name: 11 bytes as text, base padded to 8, extension to 3. */
  name11: string;
  /** NT case bits for DIR_NTRes. */
  ntCase: number;
  /** The long name to store in LFN entries, or undefined when the short name says it all. */
  longName?: string;
}

function isShortChar(ch: string): boolean {
  if (ch.length !== 1) return false; // e.g. 'ß'.toUpperCase() === 'SS'
  return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || SHORT_SPECIALS.has(ch);
}

function caseOf(part: string): 'lower' | 'upper' | 'mixed' | 'none' {
  const hasLower = part !== part.toUpperCase();
  const hasUpper = part !== part.toLowerCase();
  return hasLower && hasUpper ? 'mixed' : hasLower ? 'lower' : hasUpper ? 'upper' : 'none';
}

/**
 * When `name` is a legal 8.3 name as it stands (up to case), its short form and case bits;
 * else undefined. Lower-case base or extension use the NT case bits; mixed case needs an LFN.
 */
export function exactShortName(name: string): ShortNamePlan | undefined {
  const dot = name.indexOf('.');
  const base = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot + 1);
  if (base.length < 1 || base.length > 8 || ext.length > 3 || ext.includes('.') || (dot >= 0 && ext.length === 0)) return undefined;
  if (ASCII.test(name) ? !SHORT_NAME_CHARS.test(name) : [...name].some((ch) => ch !== '.' && !isShortChar(ch.toUpperCase()))) return undefined;
  const name11 = base.toUpperCase().padEnd(8, ' ') + ext.toUpperCase().padEnd(3, ' ');
  const bc = caseOf(base);
  const ec = caseOf(ext);
  if (bc === 'mixed' || ec === 'mixed') return { name11, ntCase: 0, longName: name };
  return { name11, ntCase: (bc === 'lower' ? NT_LOWER_BASE : 0) | (ec === 'lower' ? NT_LOWER_EXT : 0) };
}

/**
 * The basis name of fatgen103's algorithm: upper-cased, spaces and leading periods stripped,
 * characters a short name cannot hold turned into '_', base to 8 and extension to 3 characters
 * (the extension from after the last period). Returns base and extension unpadded.
 */
export function basisName(name: string): { base: string; ext: string } {
  const map = (s: string) => {
    let out = '';
    for (const ch of ASCII.test(s) ? s.toUpperCase() : s) {
      if (ch === ' ' || ch === '.') continue;
      const up = ch.toUpperCase();
      out += isShortChar(up) ? up : '_';
    }
    return out;
  };
  const stripped = name.replace(/^[. ]+/, '');
  const lastDot = stripped.lastIndexOf('.');
  const base = map(lastDot < 0 ? stripped : stripped.slice(0, lastDot)).slice(0, 8);
  const ext = lastDot < 0 ? '' : map(stripped.slice(lastDot + 1)).slice(0, 3);
  return { base: base || '_', ext };
}

/**
 * Assign short names to the names of one folder, Windows-style: names that are legal 8.3 keep
 * their own short name; the others get `BASIS~N.EXT` with the smallest N (1..999999) not taken
 * in the folder. `names` must already be unique without regard to case.
 */
export function assignShortNames(names: readonly string[]): ShortNamePlan[] {
  const taken = new Set<string>();
  const plans: (ShortNamePlan | undefined)[] = names.map((n) => exactShortName(n));
  for (const p of plans) if (p) taken.add(p.name11);
  // The last ~N given to each basis name: the next one's search starts after it (every smaller N
  // was taken then and still is), so a folder of 40000 similar names costs 40000 steps, not 8e8.
  const lastTail = new Map<string, number>();
  return names.map((name, i) => {
    const exact = plans[i];
    if (exact) return exact;
    const { base, ext } = basisName(name);
    const basis = `${base}.${ext}`;
    for (let n = (lastTail.get(basis) ?? 0) + 1; n <= 999999; n++) {
      const tail = `~${n}`;
      const name11 = (base.slice(0, 8 - tail.length) + tail).padEnd(8, ' ') + ext.padEnd(3, ' ');
      if (!taken.has(name11)) {
        taken.add(name11);
        lastTail.set(basis, n);
        return { name11, ntCase: 0, longName: name };
      }
    }
    throw fail('fat', 'INVALID_ARGUMENT', `no free short name for ${JSON.stringify(name)}`);
  });
}

export function shortNameBytes(name11: string): Uint8Array {
  const out = new Uint8Array(11);
  for (let i = 0; i < 11; i++) out[i] = name11.charCodeAt(i) & 0xff;
  return out;
}

/** Characters dosfstools' fsck.fat refuses anywhere in a short name (check.c, bad_name). */
const SHORT_NAME_BAD_CHARS = '*?<>|"\\/:';

/**
 * Why an 11-byte short name is invalid, by fsck.fat's rule (dosfstools check.c, bad_name):
 * a control character or DEL, one of `*?<>|"\/:`, a leading space (an empty name is all
 * spaces), or a space inside the base or the extension. Bytes >= 0x80 are valid (code page
 * characters). Undefined when the name is valid.
 */
export function shortNameProblem(name11: Uint8Array): string | undefined {
  for (let i = 0; i < 11; i++) {
    const b = name11[i];
    if (b < 0x20 || b === 0x7f) return `it holds the control character 0x${b.toString(16).padStart(2, '0')}`;
    if (SHORT_NAME_BAD_CHARS.includes(String.fromCharCode(b))) return `it holds the character ${JSON.stringify(String.fromCharCode(b))}`;
  }
  if (name11.subarray(0, 11).every((b) => b === 0x20)) return 'it is empty';
  if (name11[0] === 0x20) return 'it starts with a space';
  const inner = (from: number, to: number) => /^[^ ]* +[^ ]/.test(decodeOem(name11.subarray(from, to)));
  if (inner(0, 8) || inner(8, 11)) return 'it has a space inside';
  return undefined;
}

/**
 * The name an invalid short name is listed and extracted under: each character fsck.fat refuses
 * (and each space but the padding) becomes '_', an empty base becomes '_'; so ' AB.TXT' is
 * '_AB.TXT', an empty name '_' and 'A>B.TXT' 'A_B.TXT'. The caller makes it unique in its folder.
 */
export function safeShortName(name11: Uint8Array): string {
  const part = (from: number, to: number) =>
    [...decodeOem(name11.subarray(from, to)).replace(/ +$/, '')]
      .map((ch) => (ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f || SHORT_NAME_BAD_CHARS.includes(ch) ? '_' : ch))
      .join('');
  const base = part(0, 8) || '_';
  const ext = part(8, 11);
  return ext ? `${base}.${ext}` : base;
}

/**
 * Short names are in the OEM code page. We write only ASCII; names with bytes >= 0x80 (mtools
 * and mkfs.fat default to code page 850) are decoded as CP850.
 */
const CP850_HIGH = 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u00ad±‗¾¶§÷¸°¨·¹³²■\u00a0';

export function decodeOem(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP850_HIGH[b - 0x80];
  return s;
}

/** Validate a volume label and return its 11-byte padded upper-case form. */
export function normalizeLabel(label: string): string {
  const refused = (why: string) => `volume label ${JSON.stringify(label)}: ${why}`;
  if (label.length > 11) throw fail('fat', 'INVALID_ARGUMENT', refused('at most 11 characters'));
  if (label.startsWith(' ')) throw fail('fat', 'INVALID_ARGUMENT', refused('it may not start with a space'));
  const up = label.toUpperCase();
  for (const ch of up) {
    const c = ch.charCodeAt(0);
    // mkfs.fat refuses these in labels (validate_volume_label).
    if (c < 0x20 || c > 0x7e || '*?.,;:/\\|+=<>[]"'.includes(ch))
      throw fail('fat', 'INVALID_ARGUMENT', refused(`the character ${JSON.stringify(ch)} is not allowed`));
  }
  return up.padEnd(11, ' ');
}
