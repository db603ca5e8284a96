/**
 * Determinism: every identifier an image carries (disk and partition GUIDs, MBR disk
 * signatures, later FAT serials) derives from one seed and the thing's place in the layout.
 */
import { randomBytes } from 'node:crypto';
// SHA-256 in JavaScript: these hashes are a few bytes each, and node:crypto costs a command
// ~5-9 ms of start-up to load (it pulls in node:stream); the digests are the same bytes.
import { sha256 } from '@noble/hashes/sha2.js';

const utf8 = new TextEncoder();

function digest(seed: string, what: string): Buffer {
  const d = sha256(utf8.encode(`diskmint\0${seed}\0${what}`));
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** A version-4-shaped GUID (RFC 9562 section 5.4 bits) derived from the seed. */
export function deriveGuid(seed: string, what: string): string {
  const b = digest(seed, what);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A non-zero 32-bit value derived from the seed. */
export function deriveU32(seed: string, what: string): number {
  return digest(seed, what).readUInt32LE(0) || 1;
}

/** The default seed: a hash of the layout text, so different layouts differ and one layout repeats. */
export function seedFromLayoutText(text: string): string {
  return Buffer.from(sha256(utf8.encode(text)))
    .toString('hex')
    .slice(0, 32);
}

export function randomSeed(): string {
  return randomBytes(16).toString('hex');
}

/** Honour `--seed random`; otherwise the given seed text. */
export function resolveSeed(seed: string | number | undefined, fallback: string): string {
  if (seed === undefined) return fallback;
  const text = String(seed);
  return text === 'random' ? randomSeed() : text;
}
