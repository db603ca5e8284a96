/**
 * Ed25519 keys (RFC 8032, through node:crypto): generating and writing a key pair, loading PEM
 * keys, and signing and verifying exact bytes.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import { AtomicOutput, relabelWriteError } from '../io/atomic-output.js';
import { writeFully } from '../io/write-fully.js';

/** Ed25519 signatures are 64 bytes (RFC 8032 section 5.1.6). */
export const ED25519_SIGNATURE_BYTES = 64;

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
