/**
 * Detached signature files. IMG.sig is JSON with one member per line:
 *   {"format":"diskmint-signature","formatVersion":1,"algorithm":"ed25519",
 *    "manifest":"<base64 of the exact manifest bytes>","signature":"<base64 of 64 bytes>"}
 * so `sed -n 's|.*"manifest": *"\([^"]*\)".*|\1|p' IMG.sig | base64 -d > manifest.json`
 * (and the same with "signature" into manifest.sig) recovers both files with busybox alone.
 */
import { readFile } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';

export interface DetachedSignature {
  /** The exact signed bytes. */
  manifestBytes: Uint8Array;
  signature: Uint8Array;
}

/** The .sig file text: one member per line so sed can cut out each base64 field. */
export function encodeSignatureFile(sig: DetachedSignature): string {
  const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
  return [
    '{',
    '  "format": "diskmint-signature",',
    '  "formatVersion": 1,',
    '  "algorithm": "ed25519",',
    `  "manifest": "${b64(sig.manifestBytes)}",`,
    `  "signature": "${b64(sig.signature)}"`,
    '}',
    '',
  ].join('\n');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_SIG_FILE = 16 << 20;

export function decodeSignatureFile(text: string, path = 'signature'): DetachedSignature {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new DiskmintError('INPUT', `${path} is not a diskmint signature file (not JSON)`);
  }
  if (!doc || typeof doc !== 'object' || doc.format !== 'diskmint-signature') throw new DiskmintError('INPUT', `${path} is not a diskmint signature file`);
  if (doc.formatVersion !== 1 || doc.algorithm !== 'ed25519')
    throw new DiskmintError('INPUT', `${path}: unsupported signature format ${String(doc.formatVersion)}/${String(doc.algorithm)}`);
  const field = (name: string) => {
    const v = doc[name];
    if (typeof v !== 'string' || !BASE64.test(v)) throw new DiskmintError('INPUT', `${path}: "${name}" is not base64`);
    return new Uint8Array(Buffer.from(v, 'base64'));
  };
  return { manifestBytes: field('manifest'), signature: field('signature') };
}

export async function readSignatureFile(path: string): Promise<DetachedSignature> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DiskmintError('INPUT', `signature ${path} cannot be read`);
  }
  if (text.length > MAX_SIG_FILE) throw new DiskmintError('INPUT', `${path} is too large for a signature file`);
  return decodeSignatureFile(text, path);
}
