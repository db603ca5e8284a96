/**
 * Signed images: canonical JSON, Ed25519 keys (RFC 8032) through node:crypto, image manifests
 * over the virtual disk (so a qcow2 copy verifies against a signature made on the raw image),
 * findings that name the partition that changed, and openssl checking the same signature.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, convertImage, type Layout } from '../../src/index.js';
import { signImage } from '../../src/ops/sign.js';
import { verifyImageSignature } from '../../src/ops/sign-verify.js';
import { decodeSignatureFile, encodeSignatureFile } from '../../src/ops/sign-file.js';
import { imageManifest } from '../../src/ops/sign-manifest.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey, signBytes, verifyBytes, writeKeyPair } from '../../src/ops/sign-keys.js';
import { canonicalJson } from '../../src/ops/canonical-json.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 9)) & 255);

let dir = '';
let raw = '';
let qcow2 = '';
let key = '';
let pub = '';
let otherPub = '';

beforeAll(async () => {
  dir = tempDir('diskmint-sign-');
  writeFileSync(join(dir, 'os.bin'), pattern(1 << 20, 3));
  writeFileSync(join(dir, 'cfg.bin'), pattern(70_001, 5));
  const layout: Layout = {
    scheme: 'gpt',
    size: '16M',
    seed: 'sign',
    partitions: [
      { type: 'freebsd-boot', label: 'boot', size: '512K' },
      { type: 'freebsd-ufs', label: 'os1', size: '6M', attributes: ['bootme'], contents: { file: 'os.bin' } },
      { type: 'freebsd-ufs', label: 'cfg', size: 'rest', contents: { file: 'cfg.bin' } },
    ],
  };
  raw = join(dir, 'disk.img');
  await buildImage(layout, { output: raw, baseDir: dir });
  qcow2 = join(dir, 'disk.qcow2');
  await convertImage(raw, qcow2, {});
  ({ privatePath: key, publicPath: pub } = await writeKeyPair(join(dir, 'release')));
  otherPub = (await writeKeyPair(join(dir, 'other'))).publicPath;
});

function patchCopy(from: string, to: string, offset: number): void {
  writeFileSync(to, readFileSync(from));
  const fd = openSync(to, 'r+');
  writeSync(fd, Uint8Array.of(0x5a ^ readFileSync(from)[offset]), 0, 1, offset);
  closeSync(fd);
}

describe('canonical JSON', () => {
  const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.maxSafeInteger(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }),
    ),
  })).value;

  it('parses back to the same value, has no whitespace outside strings, sorts keys, and is one text per value', () => {
    fc.assert(
      fc.property(json, (v) => {
        const text = canonicalJson(v);
        expect(JSON.parse(text)).toEqual(v);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(text.replace(/"(?:[^"\\]|\\.)*"/g, '')).not.toMatch(/\s/);
      }),
    );
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], A: { z: 0, y: -2 } })).toBe('{"A":{"y":-2,"z":0},"a":[true,null,"x"],"b":1}');
  });

  it('refuses what has no single spelling: fractions, huge integers, NaN', () => {
    for (const bad of [1.5, 2 ** 60, Number.NaN]) expect(() => canonicalJson({ x: bad })).toThrow(DiskmintError);
  });
});

describe('keys and raw signatures', () => {
  it('key generate writes PKCS#8 and SPKI PEM, never overwrites, and signatures verify only with the matching key', async () => {
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(pub, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await expect(writeKeyPair(join(dir, 'release'))).rejects.toThrow(/not overwriting/);
    const msg = new TextEncoder().encode('{"a":1}');
    const sig = signBytes(msg, await loadPrivateKey(key));
    expect(sig.length).toBe(64);
    expect(verifyBytes(msg, sig, await loadPublicKey(pub))).toBe(true);
    expect(verifyBytes(msg, sig, await loadPublicKey(otherPub))).toBe(false);
    expect(verifyBytes(Uint8Array.of(...msg, 0x20), sig, await loadPublicKey(pub))).toBe(false);
    await expect(loadPublicKey(key)).rejects.toThrow(/private key; pass the public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(dir, 'rsa.pem'), rsa);
    await expect(loadPrivateKey(join(dir, 'rsa.pem'))).rejects.toThrow(/rsa key; diskmint signs with Ed25519 only/);
  });

  it('the .sig file round-trips and refuses what is not one', () => {
    const pair = generateKeyPair();
    expect(pair.publicPem).toMatch(/PUBLIC KEY/);
    const sig = { manifestBytes: new TextEncoder().encode('{"x":1}'), signature: new Uint8Array(64).fill(7) };
    expect(decodeSignatureFile(encodeSignatureFile(sig))).toEqual(sig);
    expect(() => decodeSignatureFile('{}')).toThrow(/not a diskmint signature file/);
    expect(() => decodeSignatureFile('nope')).toThrow(/not JSON/);
  });
});

describe('signed images', () => {
  it('the manifest lists the image and every partition with type, label, offset, size and sha256', async () => {
    const m = await imageManifest(raw);
    expect(m.image.size).toBe(16 << 20);
    expect(m.scheme).toBe('gpt');
    expect(m.partitions.map((p) => [p.index, p.type, p.label])).toEqual([
      [1, 'freebsd-boot', 'boot'],
      [2, 'freebsd-ufs', 'os1'],
      [3, 'freebsd-ufs', 'cfg'],
    ]);
    const os1 = m.partitions[1];
    const expected = execFileSync('sh', ['-c', `tail -c +${os1.offset + 1} '${raw}' | head -c ${os1.size} | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    expect(os1.sha256).toBe(expected);
    // The whole image too: 16 chunks through one reused buffer.
    expect(m.image.sha256).toBe(execFileSync('sha256sum', [raw], { encoding: 'utf8' }).split(' ')[0]);
    expect(await imageManifest(qcow2)).toEqual(m);
  });

  it('signs the raw image; the qcow2 copy verifies; a byte changed in partition 2 is named; a wrong key fails', async () => {
    const sigPath = join(dir, 'disk.img.sig');
    const r = await signImage(raw, key);
    expect(r.signaturePath).toBe(sigPath);
    const good = await verifyImageSignature(qcow2, sigPath, pub);
    expect(good.ok).toBe(true);
    expect(good.findings.map((f) => f.code)).toEqual(['signature.ok']);

    const os1 = r.manifest.partitions[1];
    const damaged = join(dir, 'damaged.img');
    patchCopy(raw, damaged, os1.offset + 12345);
    const bad = await verifyImageSignature(damaged, sigPath, pub);
    expect(bad.ok).toBe(false);
    const errors = bad.findings.filter((f) => f.severity === 'error');
    expect(errors.map((f) => [f.code, f.where])).toEqual([
      ['signature.partition-sha256', 'gpt.partition[2]'],
      ['signature.image-sha256', 'signature'],
    ]);
    expect(errors[0].message).toMatch(/^partition 2 \(os1\) \(freebsd-ufs\) differs from the signed image/);

    // A byte outside every partition (an unused entry of the primary GPT array) still fails, said so.
    const gap = join(dir, 'gap.img');
    patchCopy(raw, gap, 2 * 512 + 100 * 128 + 50);
    const g = await verifyImageSignature(gap, sigPath, pub);
    expect(g.findings.map((f) => f.code)).toEqual(['signature.image-sha256']);
    expect(g.findings[0].message).toMatch(/outside every partition/);

    const wrong = await verifyImageSignature(raw, sigPath, otherPub);
    expect(wrong).toEqual({ ok: false, findings: [expect.objectContaining({ code: 'signature.invalid', severity: 'error' })] });
    expect(wrong.findings[0].message).toMatch(/not a valid signature by .*other\.pub/);
  });

  it('a manifest changed inside the .sig file does not verify', async () => {
    const sigPath = join(dir, 'edited.sig');
    await signImage(raw, key, { output: sigPath });
    const doc = JSON.parse(readFileSync(sigPath, 'utf8')) as { manifest: string };
    const text = Buffer.from(doc.manifest, 'base64').toString().replace('"os1"', '"os9"');
    writeFileSync(sigPath, readFileSync(sigPath, 'utf8').replace(doc.manifest, Buffer.from(text).toString('base64')));
    const r = await verifyImageSignature(raw, sigPath, pub);
    expect(r.findings.map((f) => f.code)).toEqual(['signature.invalid']);
    await expect(verifyImageSignature(raw, join(dir, 'missing.sig'), pub)).rejects.toThrow(/cannot be read/);
  });

  it('a validly signed manifest with fields of the wrong type is a finding, not a crash', async () => {
    const basePath = join(dir, 'well-formed.sig');
    await signImage(raw, key, { output: basePath });
    const good = JSON.parse(Buffer.from((JSON.parse(readFileSync(basePath, 'utf8')) as { manifest: string }).manifest, 'base64').toString());
    const privateKey = await loadPrivateKey(key);
    /** A manifest as JSON.parse gives it, loose enough to break. */
    type Manifest = { partitions: Array<Record<string, unknown> | null>; image: Record<string, unknown> | string };
    const broken = [
      (m: Manifest) => {
        m.partitions[0]!.sha256 = 1048576000;
      },
      (m: Manifest) => {
        m.partitions[1]!.offset = '0';
      },
      (m: Manifest) => {
        m.partitions[0] = null;
      },
      (m: Manifest) => {
        (m.image as Record<string, unknown>).size = -1;
      },
      (m: Manifest) => {
        m.image = 'x';
      },
    ];
    for (const [i, breakIt] of broken.entries()) {
      const m = structuredClone(good);
      breakIt(m);
      const manifestBytes = Buffer.from(JSON.stringify(m));
      const sigPath = join(dir, `malformed-${i}.sig`);
      writeFileSync(sigPath, encodeSignatureFile({ manifestBytes, signature: signBytes(manifestBytes, privateKey) }));
      const r = await verifyImageSignature(raw, sigPath, pub);
      expect(
        r.findings.map((f) => f.code),
        String(breakIt),
      ).toEqual(['signature.manifest']);
    }
  });

  it('openssl pkeyutl -verify accepts the signature, from --detach-dir files and from the .sig with sed and base64', async (ctx) => {
    if (!requirePeer('openssl', 'openssl')) return ctx.skip();
    const detach = join(dir, 'detached');
    const sigPath = join(dir, 'for-openssl.sig');
    await signImage(qcow2, key, { output: sigPath, detachDir: detach });
    const verify = (m: string, s: string) =>
      execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', m, '-sigfile', s], { encoding: 'utf8' });
    expect(verify(join(detach, 'manifest.json'), join(detach, 'manifest.sig'))).toMatch(/Signature Verified Successfully/);
    // What a device with only busybox does (the commands in src/ops/sign-file.ts and the README).
    execFileSync('sh', [
      '-c',
      `cd '${dir}' && sed -n 's|.*"manifest": *"\\([^"]*\\)".*|\\1|p' for-openssl.sig | base64 -d > sh-manifest.json && sed -n 's|.*"signature": *"\\([^"]*\\)".*|\\1|p' for-openssl.sig | base64 -d > sh-manifest.sig`,
    ]);
    expect(readFileSync(join(dir, 'sh-manifest.json'))).toEqual(readFileSync(join(detach, 'manifest.json')));
    expect(verify(join(dir, 'sh-manifest.json'), join(dir, 'sh-manifest.sig'))).toMatch(/Signature Verified Successfully/);
    writeFileSync(join(dir, 'sh-manifest.json'), readFileSync(join(dir, 'sh-manifest.json'), 'utf8').replace('"os1"', '"os2"'));
    expect(() =>
      execFileSync(
        'openssl',
        ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', join(dir, 'sh-manifest.json'), '-sigfile', join(dir, 'sh-manifest.sig')],
        { stdio: 'pipe' },
      ),
    ).toThrow();
  });
});
