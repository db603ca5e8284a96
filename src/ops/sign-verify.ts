/**
 * Verifying a signed image: the signature over the manifest, then the image and every partition
 * against the manifest. A malformed manifest or a differing partition is a finding, not a crash.
 */
import { finding, type Finding } from '../model/findings.js';
import { loadPublicKey, verifyBytes } from './sign-keys.js';
import { readSignatureFile } from './sign-file.js';
import { imageManifest, type ImageManifest, type ManifestPartition } from './sign-manifest.js';

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
