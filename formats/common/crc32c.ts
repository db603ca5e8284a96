/**
 * CRC-32C (Castagnoli), the checksum VHDX uses for its headers, region tables and log entries
 * (MS-VHDX section 2.2.2.1: "CRC-32C ... using the Castagnoli polynomial"). Reflected
 * polynomial 0x82F63B78, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF (RFC 3720 appendix B.4).
 * Node has no built-in and the project has no dependency for it, so this is a plain
 * byte-at-a-time table (VHDX checksums at most 64 KiB at a time).
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `bytes`; pass a previous result as `initial` to continue over more data. */
export function crc32c(bytes: Uint8Array, initial = 0): number {
  let c = ~initial >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
