/**
 * Signed images: Ed25519 keys (RFC 8032, through node:crypto), image manifests and detached
 * signatures.
 *
 * What is signed is always the exact bytes of a manifest in canonical JSON (below), so a
 * device without Node checks a signature with OpenSSL 3:
 *
 *   openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in manifest.json -sigfile manifest.sig
 *
 * Canonical JSON (the subset of RFC 8785 JCS that manifests use): UTF-8; no whitespace;
 * object keys sorted by UTF-16 code units (JavaScript's default sort, as JCS does); strings
 * as JSON.stringify writes them; numbers are safe integers only (no floats, no exponents);
 * booleans, null, arrays in their given order; no undefined members.
 *
 * A detached signature file (IMG.sig) is JSON with one member per line:
 *   {"format":"diskmint-signature","formatVersion":1,"algorithm":"ed25519",
 *    "manifest":"<base64 of the exact manifest bytes>","signature":"<base64 of 64 bytes>"}
 * so `sed -n 's|.*"manifest": *"\([^"]*\)".*|\1|p' IMG.sig | base64 -d > manifest.json`
 * (and the same with "signature" into manifest.sig) recovers both files with busybox alone.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { makeDirectories } from '../io/fs-util.js';
import { join } from 'node:path';
import { DiskmintError } from '../model/errors.js';
import { finding, type Finding } from '../model/findings.js';
import { openDisk } from '../io/open-disk.js';
import { inspectDisk } from './inspect.js';
import type { PartitionTable } from '../schemes/types.js';
import type { DiskReader } from '../model/disk-reader.js';
import { checkOutputTarget } from '../io/output-target.js';
import { AtomicOutput, relabelWriteError, writeFileAtomically } from '../io/atomic-output.js';
import { writeFully } from '../io/write-fully.js';

/** Ed25519 signatures are 64 bytes (RFC 8032 section 5.1.6). */
export const ED25519_SIGNATURE_BYTES = 64;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The canonical JSON text of a value (see the file comment); throws on anything outside the subset. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new DiskmintError('BAD_ARGUMENT', `canonical JSON holds safe integers only, not ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new DiskmintError('BAD_ARGUMENT', `canonical JSON cannot hold a ${typeof value}`);
}

export const canonicalBytes = (value: unknown): Uint8Array => new TextEncoder().encode(canonicalJson(value));

// ---------------------------------------------------------------------------------------------
// Keys

export interface KeyPairPem {
  /** PKCS#8 private key, PEM. */
  privatePem: string;
  /** SubjectPublicKeyInfo public key, PEM. */
  publicPem: string;
}

export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * `key generate --out KEY`: writes KEY.pem (private, mode 0600) and KEY.pub. A trailing .pem on
 * KEY is dropped. Both go through atomic outputs (temp, fsync, rename), so a full disk or a kill
 * leaves neither a 0-byte key nor a key without its public half. The private key is created
 * 0600 (its temp file too) and never replaces an existing KEY.pem: it is committed first, linked
 * into place (EEXIST, "exists; not overwriting it", leaves everything as it was); if KEY.pub then
 * cannot be written, the new KEY.pem, known to no one, is removed again so that a retry works.
 */
export async function writeKeyPair(out: string): Promise<{ privatePath: string; publicPath: string }> {
  const stem = out.replace(/\.pem$/, '');
  const privatePath = `${stem}.pem`;
  const publicPath = `${stem}.pub`;
  const pair = generateKeyPair();
  const outputs: AtomicOutput[] = [];
  let target = privatePath;
  try {
    const priv = await AtomicOutput.create(privatePath, { mode: 0o600, replace: false });
    outputs.push(priv);
    await writeFully(priv.handle, Buffer.from(pair.privatePem, 'utf8'), 0);
    target = publicPath;
    const pub = await AtomicOutput.create(publicPath);
    outputs.push(pub);
    await writeFully(pub.handle, Buffer.from(pair.publicPem, 'utf8'), 0);
    target = privatePath;
    await priv.commit();
    target = publicPath;
    try {
      await pub.commit();
    } catch (err) {
      await unlink(privatePath).catch(() => {});
      throw err;
    }
  } catch (err) {
    for (const o of outputs) await o.abort();
    throw relabelWriteError(err, target);
  }
  return { privatePath, publicPath };
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    throw new DiskmintError('INPUT', `${what} ${path} cannot be read`);
  }
}

function requireEd25519(key: KeyObject, path: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new DiskmintError('INPUT', `${path} is a ${key.asymmetricKeyType} key; diskmint signs with Ed25519 only`);
  return key;
}

/** A PKCS#8 PEM Ed25519 private key. */
export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'private key');
  try {
    return requireEd25519(createPrivateKey(pem), path);
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw new DiskmintError('INPUT', `${path} is not a PEM private key (make one with \`diskmint key generate\`)`);
  }
}

/** An SPKI PEM Ed25519 public key (a private key file is refused: pass KEY.pub). */
export async function loadPublicKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'public key');
  if (pem.includes('PRIVATE KEY')) throw new DiskmintError('INPUT', `${path} holds a private key; pass the public key (KEY.pub)`);
  try {
    return requireEd25519(createPublicKey(pem), path);
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw new DiskmintError('INPUT', `${path} is not a PEM public key`);
  }
}

/** Ed25519 (pure, RFC 8032 section 5.1.6) over the exact bytes. */
export function signBytes(bytes: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign(null, bytes, key));
}

export function verifyBytes(bytes: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    return verify(null, bytes, key, signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Image manifests

export interface ManifestPartition {
  /** Which table: `gpt`, `mbr`, `bsd`, or a nested label such as `mbr.partition[1].bsd`. */
  table: string;
  index: number;
  type: string;
  rawType: string;
  label: string;
  /** Byte offset in the virtual disk. */
  offset: number;
  size: number;
  sha256: string;
}

export interface ImageManifest {
  format: 'diskmint-image-manifest';
  formatVersion: 1;
  /** The virtual disk: container format does not matter (a qcow2 copy verifies as the raw). */
  image: { size: number; sha256: string };
  scheme: PartitionTable['scheme'] | null;
  partitions: ManifestPartition[];
}

function manifestPartitions(table: PartitionTable | null, where: string, out: ManifestPartition[]): void {
  if (!table) return;
  for (const p of table.partitions) {
    out.push({
      table: where,
      index: p.index,
      type: p.typeName,
      rawType: p.rawType,
      label: p.label ?? '',
      offset: table.offset + p.firstLba * table.sectorSize,
      size: p.sizeBytes,
      sha256: '',
    });
    if (p.nested) manifestPartitions(p.nested, `${where}.partition[${p.index}].bsd`, out);
  }
}

const HASH_CHUNK = 4 << 20;

/** One pass over the disk feeding the whole-image hash and every partition's hash. */
async function hashImageAndPartitions(disk: DiskReader, parts: ManifestPartition[]): Promise<string> {
  const image = createHash('sha256');
  const hashes = parts.map(() => createHash('sha256'));
  for (let at = 0; at < disk.size;) {
    const chunk = await disk.read(at, Math.min(HASH_CHUNK, disk.size - at));
    if (!chunk.length) break;
    image.update(chunk);
    const end = at + chunk.length;
    parts.forEach((p, i) => {
      const from = Math.max(at, p.offset);
      const to = Math.min(end, p.offset + p.size);
      if (from < to) hashes[i].update(chunk.subarray(from - at, to - at));
    });
    at = end;
  }
  parts.forEach((p, i) => (p.sha256 = hashes[i].digest('hex')));
  return image.digest('hex');
}

/** The manifest of an image (any container diskmint reads): size, sha256, and every partition, nested ones too. */
export async function imageManifest(imagePath: string): Promise<ImageManifest> {
  const { reader } = await openDisk(imagePath);
  try {
    const { table } = await inspectDisk(reader);
    const partitions: ManifestPartition[] = [];
    manifestPartitions(table, table?.scheme ?? '', partitions);
    const sha256 = await hashImageAndPartitions(reader, partitions);
    return { format: 'diskmint-image-manifest', formatVersion: 1, image: { size: reader.size, sha256 }, scheme: table?.scheme ?? null, partitions };
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Detached signatures

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

export interface SignResult {
  manifest: ImageManifest;
  signaturePath: string;
  detached?: { manifestPath: string; signaturePath: string };
}

/** Write manifest.json and manifest.sig (raw 64 bytes) into a folder: what openssl reads. */
export async function writeDetached(dir: string, sig: DetachedSignature): Promise<{ manifestPath: string; signaturePath: string }> {
  await makeDirectories(dir);
  const manifestPath = join(dir, 'manifest.json');
  const signaturePath = join(dir, 'manifest.sig');
  await writeFileAtomically(manifestPath, sig.manifestBytes);
  await writeFileAtomically(signaturePath, sig.signature);
  return { manifestPath, signaturePath };
}

/** `diskmint sign IMG --key KEY.pem [-o IMG.sig] [--detach-dir DIR]`. */
export async function signImage(imagePath: string, keyPath: string, opts: { output?: string; detachDir?: string } = {}): Promise<SignResult> {
  const signaturePath = opts.output ?? `${imagePath}.sig`;
  await checkOutputTarget(signaturePath, [imagePath, keyPath]);
  const key = await loadPrivateKey(keyPath);
  const manifest = await imageManifest(imagePath);
  const manifestBytes = canonicalBytes(manifest);
  const sig = { manifestBytes, signature: signBytes(manifestBytes, key) };
  // The detached files first: a --detach-dir that cannot be made leaves no .sig behind.
  const detached = opts.detachDir ? await writeDetached(opts.detachDir, sig) : undefined;
  await writeFileAtomically(signaturePath, Buffer.from(encodeSignatureFile(sig), 'utf8'));
  return { manifest, signaturePath, detached };
}

const isSha256 = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** Every field verify reads, of the type it reads: a key that signs a malformed manifest is no reason to crash. */
function isManifestPartition(p: unknown): p is ManifestPartition {
  if (p === null || typeof p !== 'object') return false;
  const q = p as Record<string, unknown>;
  return (
    ['table', 'type', 'rawType', 'label'].every((k) => typeof q[k] === 'string') &&
    isCount(q.index) &&
    isCount(q.offset) &&
    isCount(q.size) &&
    isSha256(q.sha256)
  );
}

function parseImageManifest(bytes: Uint8Array): ImageManifest | undefined {
  try {
    const m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as ImageManifest;
    if (m?.format !== 'diskmint-image-manifest' || m.formatVersion !== 1 || !isCount(m.image?.size) || !isSha256(m.image?.sha256)) return undefined;
    if (!Array.isArray(m.partitions) || !m.partitions.every(isManifestPartition)) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

const partName = (p: ManifestPartition) => `partition ${p.index}${p.label ? ` (${p.label})` : ''}`;
const whereOf = (p: ManifestPartition) => `${p.table}.partition[${p.index}]`;

/**
 * `diskmint verify IMG --signature IMG.sig --pubkey KEY.pub`: the signature over the manifest,
 * then the image and every partition against it. One finding per partition that differs.
 * Unreadable files throw DiskmintError('INPUT'); verification outcomes are findings.
 */
export async function verifyImageSignature(imagePath: string, sigPath: string, pubkeyPath: string): Promise<{ ok: boolean; findings: Finding[] }> {
  const key = await loadPublicKey(pubkeyPath);
  const sig = await readSignatureFile(sigPath);
  if (!verifyBytes(sig.manifestBytes, sig.signature, key)) {
    return {
      ok: false,
      findings: [
        finding(
          'error',
          'signature.invalid',
          `${sigPath} is not a valid signature by ${pubkeyPath}: the manifest was changed, or another key signed it`,
          'signature',
        ),
      ],
    };
  }
  const signed = parseImageManifest(sig.manifestBytes);
  if (!signed)
    return {
      ok: false,
      findings: [
        finding(
          'error',
          'signature.manifest',
          `${sigPath} carries a validly signed manifest diskmint cannot read (not a diskmint image manifest v1)`,
          'signature',
        ),
      ],
    };
  const now = await imageManifest(imagePath);
  const findings: Finding[] = [];
  if (now.image.size !== signed.image.size) {
    findings.push(finding('error', 'signature.image-size', `the image is ${now.image.size} bytes; the signed image was ${signed.image.size}`, 'signature'));
  }
  const key2 = (p: ManifestPartition) => `${p.table}#${p.index}`;
  const current = new Map(now.partitions.map((p) => [key2(p), p]));
  for (const s of signed.partitions) {
    const c = current.get(key2(s));
    current.delete(key2(s));
    if (!c) {
      findings.push(finding('error', 'signature.partition-missing', `${partName(s)} (${s.type}) of the signed image is gone`, whereOf(s)));
      continue;
    }
    const moved = c.offset !== s.offset || c.size !== s.size || c.rawType !== s.rawType || c.label !== s.label;
    if (moved) {
      findings.push(
        finding(
          'error',
          'signature.partition-changed',
          `${partName(s)} changed: signed ${s.type} "${s.label}" at ${s.offset}+${s.size}, now ${c.type} "${c.label}" at ${c.offset}+${c.size}`,
          whereOf(s),
        ),
      );
    } else if (c.sha256 !== s.sha256) {
      findings.push(
        finding(
          'error',
          'signature.partition-sha256',
          `${partName(s)} (${s.type}) differs from the signed image: sha256 ${c.sha256.slice(0, 12)}, signed ${s.sha256.slice(0, 12)}`,
          whereOf(s),
        ),
      );
    }
  }
  for (const c of current.values())
    findings.push(finding('error', 'signature.partition-extra', `${partName(c)} (${c.type}) is not in the signed image`, whereOf(c)));
  if (now.image.sha256 !== signed.image.sha256) {
    const which = findings.length ? '' : ' outside every partition (tables, gaps)';
    findings.push(
      finding(
        'error',
        'signature.image-sha256',
        `the image differs from the signed image${which}: sha256 ${now.image.sha256.slice(0, 12)}, signed ${signed.image.sha256.slice(0, 12)}`,
        'signature',
      ),
    );
  }
  const ok = findings.length === 0;
  if (ok)
    findings.push(
      finding(
        'info',
        'signature.ok',
        `signature by ${pubkeyPath} verifies; the image and its ${signed.partitions.length} partitions match the signed manifest`,
        'signature',
      ),
    );
  return { ok, findings };
}
