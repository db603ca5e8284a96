/**
 * Update bundles (.dmb): full and delta round-trips (payload chunks applied with plain fs
 * writes give NEW byte for byte), reproducible bytes whatever the thread count, and refusal,
 * with a clear message, of every damaged, truncated, unsigned or wrongly signed bundle and of
 * a delta whose base does not match. openssl checks the manifest signature.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBundle, type CreateBundleOptions } from '../../src/ops/bundle/create.js';
import { bundleTargetCheck, openBundle, type OpenedBundle } from '../../src/ops/bundle/open.js';
import {
  HEADER_BYTES,
  RECORD_HEADER_BYTES,
  decodeHeader,
  decodeManifest,
  decodeRecordHeader,
  encodeHeader,
  type BundleManifest,
} from '../../src/ops/bundle/format.js';
import { writeKeyPair } from '../../src/ops/sign-keys.js';
import { DiskmintError, FormatError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const KiB = 1024;
const MiB = 1 << 20;
let dir = '';
let key = '';
let pub = '';
let otherPub = '';
let base = '';
let next = '';

/** Deterministic bytes that do not compress: an AES-256-CTR keystream. */
function noise(n: number, label: string): Buffer {
  const k = createHash('sha256').update(label).digest();
  return createCipheriv('aes-256-ctr', k, Buffer.alloc(16)).update(Buffer.alloc(n));
}

function writeImage(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = tempDir('diskmint-bundle-');
  ({ privatePath: key, publicPath: pub } = await writeKeyPair(join(dir, 'release')));
  otherPub = (await writeKeyPair(join(dir, 'other'))).publicPath;
  // BASE: 3 MiB of text-like data with a noisy middle; NEW: a few blocks changed, 300 KiB longer.
  const text = Buffer.from('FreeBSD /usr/bin and /usr/lib, compressible filler. '.repeat(70_000)).subarray(0, 3 * MiB);
  const b = Buffer.concat([text.subarray(0, MiB), noise(MiB, 'mid'), text.subarray(0, MiB)]);
  const n = Buffer.concat([b, noise(300 * KiB, 'tail')]);
  noise(100, 'patch1').copy(n, 5000);
  noise(70 * KiB, 'patch2').copy(n, 2 * MiB - 10 * KiB); // spans a 1 MiB window boundary
  n[3 * MiB - 1] ^= 1;
  base = writeImage('base.img', b);
  next = writeImage('new.img', n);
});

async function make(name: string, opts: Partial<CreateBundleOptions>): Promise<string> {
  const output = join(dir, name);
  await createBundle({ from: next, key, output, threads: 2, ...opts });
  return output;
}

/** What the slot writer does, with plain fs writes: start from `start`, write each chunk, cut at the image size. */
async function applyOnto(b: OpenedBundle, start: string | undefined, target: string): Promise<Buffer> {
  if (start) copyFileSync(start, target);
  else writeFileSync(target, Buffer.alloc(0));
  const fd = openSync(target, 'r+');
  try {
    for await (const c of b.payload()) writeSync(fd, c.data, 0, c.data.length, c.offset);
  } finally {
    closeSync(fd);
  }
  truncateSync(target, b.manifest.payloadSize);
  return readFileSync(target);
}

function flipCopy(from: string, to: string, offset: number): string {
  const bytes = readFileSync(from);
  bytes[offset] ^= 0x10;
  writeFileSync(to, bytes);
  return to;
}

describe('round trips', () => {
  it('a full bundle covers the image in order and rebuilds NEW; zstd and deflate', async () => {
    for (const compression of ['zstd', 'zlib'] as const) {
      const path = await make(`full-${compression}.dmb`, { compression, version: '14.1-p2' });
      const b = await openBundle(path, { pubkey: pub });
      expect(b).toMatchObject({ signed: true, verified: true });
      expect(b.manifest).toMatchObject({
        kind: 'full',
        version: '14.1-p2',
        compression,
        payloadSize: statSync(next).size,
        payloadSha256: sha(readFileSync(next)),
        created: 0,
      });
      expect(b.manifest.targetSlotSize).toBe(Math.ceil(statSync(next).size / 512) * 512);
      let end = 0;
      for await (const c of b.payload()) {
        expect(c.offset).toBe(end);
        end += c.data.length;
      }
      expect(end).toBe(b.manifest.payloadSize);
      expect((await applyOnto(b, undefined, join(dir, `out-${compression}.img`))).equals(readFileSync(next))).toBe(true);
    }
  });

  it('a delta holds only changed blocks and, applied onto BASE, gives NEW; also a NEW shorter than BASE', async () => {
    const full = statSync(await make('full.dmb', {})).size;
    const path = await make('delta.dmb', { base });
    const b = await openBundle(path, { pubkey: pub, requireSignature: true });
    expect(b.manifest).toMatchObject({ kind: 'delta', baseSize: statSync(base).size, baseSha256: sha(readFileSync(base)), blockSize: 64 * KiB });
    const chunks: Array<[number, number]> = [];
    for await (const c of b.payload()) chunks.push([c.offset, c.data.length]);
    // block 0 (patch1), blocks 31 and 32 (patch2, across a 1 MiB record window), 47 (last base byte), the 300 KiB tail
    const B = 64 * KiB;
    expect(chunks).toEqual([
      [0, B],
      [31 * B, B],
      [32 * B, B],
      [47 * B, B],
      [48 * B, 300 * KiB],
    ]);
    expect(statSync(path).size).toBeLessThan(full / 2);
    expect((await applyOnto(b, base, join(dir, 'delta-out.img'))).equals(readFileSync(next))).toBe(true);

    // The other way round: NEW shorter than BASE (the slot's bytes past NEW's end do not matter).
    const back = join(dir, 'back.dmb');
    await createBundle({ from: base, base: next, key, output: back, blockSize: 4096 });
    const r = await openBundle(back, { pubkey: pub });
    expect(r.manifest.payloadSize).toBe(statSync(base).size);
    expect((await applyOnto(r, next, join(dir, 'back-out.img'))).equals(readFileSync(base))).toBe(true);

    // Identical images: a delta with no records at all.
    const same = join(dir, 'same.dmb');
    await createBundle({ from: base, base, key, output: same });
    const s = await openBundle(same, { pubkey: pub });
    expect(s.manifest.records).toBe(0);
    expect((await applyOnto(s, base, join(dir, 'same-out.img'))).equals(readFileSync(base))).toBe(true);
  });

  it('is reproducible: same inputs give the same bytes with 1 or 4 threads; SOURCE_DATE_EPOCH sets the time', async () => {
    const one = readFileSync(await make('t1.dmb', { base, threads: 1 }));
    const four = readFileSync(await make('t4.dmb', { base, threads: 4 }));
    expect(one.equals(four)).toBe(true);
    const f1 = readFileSync(await make('f1.dmb', { threads: 1, compression: 'zlib' }));
    const f4 = readFileSync(await make('f4.dmb', { threads: 4, compression: 'zlib' }));
    expect(f1.equals(f4)).toBe(true);
    process.env.SOURCE_DATE_EPOCH = '1700000000';
    try {
      const dated = await openBundle(await make('dated.dmb', { base }));
      expect(dated.manifest.created).toBe(1700000000);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
  });
});

describe('refusals', () => {
  let good = '';
  let layout = { manifest: 0, signature: 0, stored: 0 };
  beforeAll(async () => {
    good = await make('good.dmb', { base });
    const h = decodeHeader(readFileSync(good).subarray(0, HEADER_BYTES));
    layout = { manifest: HEADER_BYTES, signature: HEADER_BYTES + h.manifestLength, stored: HEADER_BYTES + h.manifestLength + h.signatureLength };
  });

  it('one byte flipped in the payload, the manifest or the signature; a wrong key; an unsigned bundle', async () => {
    const payload = flipCopy(good, join(dir, 'flip-payload.dmb'), layout.stored + RECORD_HEADER_BYTES + 100);
    await expect(openBundle(payload, { pubkey: pub })).rejects.toThrow(/the payload is corrupt: its sha256 is [0-9a-f]{12}, the signed manifest says/);
    const manifest = flipCopy(good, join(dir, 'flip-manifest.dmb'), layout.manifest + 20);
    await expect(openBundle(manifest, { pubkey: pub })).rejects.toThrow(
      /the signature does not verify with .*release\.pub: the manifest or the signature was changed/,
    );
    const signature = flipCopy(good, join(dir, 'flip-signature.dmb'), layout.signature + 5);
    await expect(openBundle(signature, { pubkey: pub })).rejects.toThrow(/the signature does not verify/);
    await expect(openBundle(good, { pubkey: otherPub })).rejects.toThrow(/does not verify with .*other\.pub/);
    const unsigned = await make('unsigned.dmb', { base, key: undefined });
    await expect(openBundle(unsigned, { pubkey: pub })).rejects.toThrow(/the bundle is unsigned; refusing it/);
    await expect(openBundle(unsigned, { requireSignature: true })).rejects.toThrow(/no public key was given/);
    expect(await openBundle(unsigned)).toMatchObject({ signed: false, verified: false });
    // Without a key the stored hash still catches a damaged payload.
    await expect(openBundle(payload)).rejects.toThrow(/payload is corrupt/);
  });

  it('a truncated bundle, before opening or while streaming; trailing bytes; not a bundle', async () => {
    const bytes = readFileSync(good);
    const cut = writeImage('cut.dmb', bytes.subarray(0, bytes.length - 1000));
    await expect(openBundle(cut, { pubkey: pub })).rejects.toThrow(/truncated: the bundle is \d+ bytes, its header says \d+/);
    await expect(openBundle(writeImage('tiny.dmb', bytes.subarray(0, 40)))).rejects.toThrow(/shorter than its 64-byte header/);
    await expect(openBundle(writeImage('long.dmb', Buffer.concat([bytes, Buffer.alloc(3)])))).rejects.toThrow(/3 unexpected bytes after the payload/);
    await expect(openBundle(base)).rejects.toThrow(/not a diskmint update bundle/);
    const shrinking = writeImage('shrinking.dmb', bytes);
    const b = await openBundle(shrinking, { pubkey: pub });
    truncateSync(shrinking, bytes.length - 10);
    const drain = async () => {
      for await (const c of b.payload()) void c;
    };
    await expect(drain()).rejects.toThrow(/truncated/);
  });

  it('payload damage is caught while streaming too (checkPayload: false), with a typed error', async () => {
    const payload = flipCopy(good, join(dir, 'flip-stream.dmb'), layout.stored + RECORD_HEADER_BYTES + 100);
    const b = await openBundle(payload, { pubkey: pub, checkPayload: false });
    const drain = async () => {
      for await (const c of b.payload()) void c;
    };
    await expect(drain()).rejects.toBeInstanceOf(DiskmintError);
  });

  it('bundleTargetCheck: slot too small, delta base mismatch or not hashed; fits', async () => {
    const d = (await openBundle(good, { pubkey: pub })).manifest;
    expect(bundleTargetCheck(d, d.targetSlotSize - 512, d.baseSha256)).toMatch(/needs a slot of at least .* this slot is/);
    expect(bundleTargetCheck(d, 64 * MiB)).toMatch(/delta update: the slot's first \d+ bytes must be hashed/);
    expect(bundleTargetCheck(d, 64 * MiB, sha(readFileSync(next)))).toMatch(
      /applies only to the base image with sha256 [0-9a-f]{12} .* but the slot's first \d+ bytes hash to [0-9a-f]{12}: write a full bundle instead/,
    );
    expect(bundleTargetCheck(d, 64 * MiB, d.baseSha256)).toBeUndefined();
    expect(bundleTargetCheck({ ...d, baseSize: 128 * MiB }, 64 * MiB, d.baseSha256)).toMatch(/larger than the slot/);
    const f = (await openBundle(await make('fit.dmb', {}))).manifest;
    expect(bundleTargetCheck(f, f.targetSlotSize)).toBeUndefined();
  });

  it('any one byte changed anywhere in a signed bundle is refused', async () => {
    const small = await make('small.dmb', { base, blockSize: 4096 });
    const bytes = readFileSync(small);
    const probe = join(dir, 'probe.dmb');
    await fc.assert(
      fc.asyncProperty(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const copy = Buffer.from(bytes);
        copy[at] ^= x;
        writeFileSync(probe, copy);
        const err = await openBundle(probe, { pubkey: pub }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DiskmintError);
      }),
      { numRuns: 150 },
    );
  });
});

describe('format bounds', () => {
  it('decoders given arbitrary bytes throw FormatError only', () => {
    const m: BundleManifest = {
      format: 'diskmint-bundle',
      formatVersion: 1,
      kind: 'delta',
      version: '',
      created: 0,
      payloadSize: 10 * MiB,
      payloadSha256: 'a'.repeat(64),
      targetSlotSize: 10 * MiB,
      baseSize: 1,
      baseSha256: 'b'.repeat(64),
      compression: 'zstd',
      blockSize: 65536,
      records: 3,
      storedSize: 100,
      storedSha256: 'c'.repeat(64),
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const fn of [() => decodeHeader(bytes), () => decodeManifest(bytes), () => decodeRecordHeader(bytes, m, 0, 0)]) {
          try {
            fn();
          } catch (err) {
            expect(err).toBeInstanceOf(FormatError);
          }
        }
      }),
    );
    const h = encodeHeader({ manifestLength: 70_000, signatureLength: 64, storedLength: 0 });
    expect(() => decodeHeader(h)).toThrow(/manifest length 70000 is outside/);
    expect(() => decodeManifest(new TextEncoder().encode(' {"format":"diskmint-bundle"}'))).toThrow(FormatError);
  });
});

describe('peers', () => {
  it('openssl pkeyutl verifies the manifest cut out of the bundle with od, tail and head', async (ctx) => {
    if (!requirePeer('openssl', 'openssl')) return ctx.skip();
    const path = await make('openssl.dmb', { base });
    const out = join(dir, 'sh');
    mkdirSync(out, { recursive: true });
    execFileSync('sh', [
      '-c',
      [
        `cd '${out}'`,
        `M=$(od -An -tu4 -j16 -N4 '${path}' | tr -d ' '); S=$(od -An -tu4 -j20 -N4 '${path}' | tr -d ' ')`,
        `tail -c +65 '${path}' | head -c "$M" > manifest.json`,
        `tail -c +$((65 + M)) '${path}' | head -c "$S" > manifest.sig`,
      ].join('\n'),
    ]);
    expect(
      runPeerOk('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', join(out, 'manifest.json'), '-sigfile', join(out, 'manifest.sig')]),
    ).toMatch(/Signature Verified Successfully/);
    const b = await openBundle(path);
    expect(readFileSync(join(out, 'manifest.json')).equals(Buffer.from(b.manifestBytes))).toBe(true);
  });

  it('real UFS2 images from makefs: the delta of a small change is small and applies', async (ctx) => {
    if (!requirePeer('makefs', 'makefs')) return ctx.skip();
    for (const name of ['a', 'b']) {
      mkdirSync(join(dir, name, 'etc'), { recursive: true });
      writeFileSync(join(dir, name, 'etc', 'blob'), noise(2 * MiB, 'blob'));
      writeFileSync(join(dir, name, 'etc', 'version'), `os ${name}\n`);
      runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-T', '0', '-s', '8m', join(dir, `${name}.ufs`), join(dir, name)]);
    }
    const full = await createBundle({ from: join(dir, 'b.ufs'), key, output: join(dir, 'ufs-full.dmb') });
    const delta = await createBundle({ from: join(dir, 'b.ufs'), base: join(dir, 'a.ufs'), key, output: join(dir, 'ufs-delta.dmb') });
    expect(delta.bytes).toBeLessThan(full.bytes / 4);
    const b = await openBundle(delta.path, { pubkey: pub });
    expect((await applyOnto(b, join(dir, 'a.ufs'), join(dir, 'ufs-out.img'))).equals(readFileSync(join(dir, 'b.ufs')))).toBe(true);
  });
});
