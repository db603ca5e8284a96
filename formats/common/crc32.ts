/**
 * CRC-32 (IEEE 802.3, the polynomial GPT uses: UEFI 2.10 section 5.3.2): reflected polynomial
 * 0xEDB88320, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF, as zlib's crc32(). Pure JS,
 * slicing-by-8 (eight 256-entry tables, 8 bytes a step), so it runs in a browser too.
 */
const TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of `bytes`; pass a previous result as `initial` to continue over more data. */
export function crc32(bytes: Uint8Array, initial = 0): number {
  const t = TABLES;
  let c = ~initial;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
    i += 8;
  }
  while (i < n) c = t[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
