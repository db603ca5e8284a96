/** Sector helpers every scheme's encoder shares. */

/** A 512-byte MBR-style sector on a 4096-byte-sector disk fills the first 512 bytes of its sector. */
export function padToSector(bytes: Uint8Array, sectorSize: number): Uint8Array {
  if (bytes.length >= sectorSize) return bytes;
  const out = new Uint8Array(sectorSize);
  out.set(bytes);
  return out;
}

/** `a, b and c` (for messages that list the registered schemes). */
export function listWords(words: readonly string[], last = 'and'): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} ${last} ${words[words.length - 1]}`;
}
