/**
 * Signed images: Ed25519 keys (RFC 8032, through node:crypto), image manifests and detached
 * signatures.
 *
 * What is signed is always the exact bytes of a manifest (sign-manifest.ts) in canonical JSON
 * (canonical-json.ts), so a device without Node checks a signature with OpenSSL 3:
 *
 *   openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in manifest.json -sigfile manifest.sig
 *
 * This file signs an image; keys are sign-keys.ts, the IMG.sig file sign-file.ts, verification
 * sign-verify.ts.
 */
import { makeDirectories } from '../io/fs-util.js';
import { join } from 'node:path';
import { checkOutputTarget } from '../io/output-target.js';
import { writeFileAtomically } from '../io/atomic-output.js';
import { canonicalBytes } from './canonical-json.js';
import { loadPrivateKey, signBytes } from './sign-keys.js';
import { encodeSignatureFile, type DetachedSignature } from './sign-file.js';
import { imageManifest, type ImageManifest } from './sign-manifest.js';

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
