/**
 * Signed update bundles applied to slots: nothing is written unless the signature, the
 * payload and (for deltas) the slot's base all check out; what is written ends identical to NEW.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, truncateSync, writeFileSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, convertImage } from '../../src/index.js';
import { presetLayoutChecked } from '../../src/layout/presets.js';
import { slotStatus, slotWrite, hashRange } from '../../src/ops/slots/slots.js';
import { openDisk } from '../../src/io/open-disk.js';
import { createBundle } from '../../src/ops/bundle/create.js';
import { bundleExtents, decodeHeader, HEADER_BYTES, RECORD_HEADER_BYTES } from '../../src/ops/bundle/format.js';
import { writeKeyPair } from '../../src/ops/sign-keys.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir = '';
let v1 = '';
let v2 = '';
let key = { privatePath: '', publicPath: '' };
let otherKey = { privatePath: '', publicPath: '' };

beforeAll(async () => {
  if (!requirePeer('makefs', 'makefs')) return;
  dir = tempDir('diskmint-bundle-slot-');
  mkdirSync(join(dir, 'root', 'bin'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(dir, 'root', 'bin', `tool${i}`), randomBytes(20_000 + i * 997)); // incompressible, like binaries
  runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', '8m', join(dir, 'v1.ufs'), join(dir, 'root')]);
  writeFileSync(join(dir, 'root', 'bin', 'tool7'), randomBytes(30_000)); // a small change
  runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', '8m', join(dir, 'v2.ufs'), join(dir, 'root')]);
  v1 = join(dir, 'v1.ufs');
  v2 = join(dir, 'v2.ufs');
  key = await writeKeyPair(join(dir, 'release'));
  otherKey = await writeKeyPair(join(dir, 'other'));
});

async function firmware(name: string, format?: string): Promise<string> {
  const layout = await presetLayoutChecked('nanobsd', {
    os: v1,
    copyOs: true,
    boot: join(ROOT, 'bootcode/diskmint-mbr.bin'),
    bootStage: join(ROOT, 'fixtures/demo/boot-stage.bin'),
    size: '160M',
    osSize: '12M',
  });
  const raw = join(dir, `${name}.img`);
  await buildImage(layout, { output: raw, baseDir: dir });
  if (!format) return raw;
  const out = join(dir, `${name}.${format}`);
  await convertImage(raw, out, { format });
  return out;
}

async function slotSnapshot(img: string): Promise<string> {
  const s = await slotStatus(img);
  const { reader } = await openDisk(img);
  try {
    const os2 = s.slots.find((x) => x.label === 'os2')!;
    return `${await hashRange(reader, os2.firstLba * 512, os2.sizeBytes)} ${s.slots.map((x) => x.attributes.join(',')).join('|')}`;
  } finally {
    await reader.close();
  }
}

async function slotBytes(img: string, length: number): Promise<string> {
  const s = await slotStatus(img, { hash: false });
  const { reader } = await openDisk(img);
  try {
    return await hashRange(reader, s.slots[1].firstLba * 512, length);
  } finally {
    await reader.close();
  }
}

describe('slot write --from UPDATE.dmb', () => {
  for (const format of [undefined, 'qcow2'] as const) {
    it(`full and delta bundles land byte-identical to NEW, then bootonce (${format ?? 'raw'})`, async (ctx) => {
      if (!v1) return ctx.skip();
      const img = await firmware(`fw-${format ?? 'raw'}`, format);
      const full = join(dir, 'full.dmb');
      await createBundle({ from: v2, key: key.privatePath, version: '2.0', output: full });
      const r = await slotWrite(img, 'os2', full, { pubkey: key.publicPath, bootonce: true });
      expect(r).toMatchObject({ slot: 5, bytes: statSync(v2).size, bootonce: true });
      expect(await slotBytes(img, statSync(v2).size)).toBe(sha(readFileSync(v2)));
      expect((await slotStatus(img, { hash: false })).slots[1].attributes).toEqual(['bootonce', 'bootme']);

      const img2 = await firmware(`fw2-${format ?? 'raw'}`, format);
      const delta = join(dir, 'delta.dmb');
      await createBundle({ from: v2, base: v1, key: key.privatePath, output: delta });
      expect(statSync(delta).size).toBeLessThan(statSync(full).size / 4);
      await slotWrite(img2, 'os2', delta, { pubkey: key.publicPath });
      expect(await slotBytes(img2, statSync(v2).size)).toBe(sha(readFileSync(v2)));
    });
  }

  it('refuses a flipped byte (payload, manifest, signature), a wrong key, truncation and a base mismatch, changing nothing', async (ctx) => {
    if (!v1) return ctx.skip();
    const img = await firmware('refuse');
    const good = join(dir, 'good.dmb');
    await createBundle({ from: v2, key: key.privatePath, output: good });
    const bytes = readFileSync(good);
    const m = bytes.readUInt32LE(16);
    const flips: Array<[string, number]> = [
      ['manifest', 64 + 10],
      ['signature', 64 + m + 5],
      ['payload', bytes.length - 100],
    ];
    const before = await slotSnapshot(img);
    for (const [what, at] of flips) {
      const bad = join(dir, `flip-${what}.dmb`);
      writeFileSync(bad, bytes);
      const fd = openSync(bad, 'r+');
      writeSync(fd, Buffer.from([bytes[at] ^ 0x40]), 0, 1, at);
      closeSync(fd);
      await expect(slotWrite(img, 'os2', bad, { pubkey: key.publicPath, bootonce: true }), what).rejects.toThrow();
      expect(await slotSnapshot(img), what).toBe(before);
    }
    await expect(slotWrite(img, 'os2', good, { pubkey: otherKey.publicPath, bootonce: true })).rejects.toThrow(/signature/i);
    const cut = join(dir, 'cut.dmb');
    writeFileSync(cut, bytes);
    truncateSync(cut, bytes.length - 4096);
    await expect(slotWrite(img, 'os2', cut, { pubkey: key.publicPath })).rejects.toThrow();
    const unsigned = join(dir, 'unsigned.dmb');
    await createBundle({ from: v2, output: unsigned });
    await expect(slotWrite(img, 'os2', unsigned, { pubkey: key.publicPath })).rejects.toThrow(/sign/i);
    await expect(slotWrite(img, 'os2', unsigned, { requireSignature: true })).rejects.toThrow(/--pubkey/);
    await expect(slotWrite(img, 'os2', v2, { pubkey: key.publicPath })).rejects.toThrow(/not a signed update bundle/);
    // A delta made from another base: the slot holds v1, the delta expects v2.
    const wrongBase = join(dir, 'wrong-base.dmb');
    await createBundle({ from: v1, base: v2, key: key.privatePath, output: wrongBase });
    await expect(slotWrite(img, 'os2', wrongBase, { pubkey: key.publicPath, bootonce: true })).rejects.toThrow(/applies only to the base image/);
    expect(await slotSnapshot(img)).toBe(before);
  });

  it('an unsigned bundle that fails part-way (a corrupt later record, an image of another hash) leaves a raw slot as it was', async (ctx) => {
    // Consistent stored hashes (an unsigned bundle's manifest can be rewritten to match): only
    // decompressing the records, or hashing what they make, finds the fault; found after the
    // first records were written, that used to leave the slot half overwritten.
    if (!v1) return ctx.skip();
    const img = await firmware('partway');
    const good = join(dir, 'partway.dmb');
    await createBundle({ from: v2, output: good });
    const bytes = readFileSync(good);
    const ext = bundleExtents(decodeHeader(bytes.subarray(0, HEADER_BYTES)));
    const manifestText = () => bytes.subarray(ext.manifest, ext.signature).toString('latin1');
    const setManifestHex = (b: Buffer, field: string, hex: string) => {
      const at = ext.manifest + manifestText().indexOf(`"${field}":"`) + field.length + 4;
      b.write(hex, at, 'latin1');
    };
    const restamp = (b: Buffer) => setManifestHex(b, 'storedSha256', sha(b.subarray(ext.stored)));
    // Record 1 corrupt: skip record 0 (header + stored bytes), flip a byte inside record 1's data.
    const corrupt = Buffer.from(bytes);
    const record1 = ext.stored + RECORD_HEADER_BYTES + corrupt.readUInt32LE(ext.stored + 12);
    corrupt[record1 + RECORD_HEADER_BYTES + 20] ^= 0xff;
    restamp(corrupt);
    // Every record sound, the image's hash in the manifest another one.
    const otherImage = Buffer.from(bytes);
    setManifestHex(otherImage, 'payloadSha256', 'ab'.repeat(32));
    const before = await slotSnapshot(img);
    for (const [what, b] of [
      ['corrupt record 1', corrupt],
      ['other image hash', otherImage],
    ] as const) {
      const bad = join(dir, `partway-${what.replace(/ /g, '-')}.dmb`);
      writeFileSync(bad, b);
      await expect(slotWrite(img, 'os2', bad, { bootonce: true }), what).rejects.toThrow(/record 1|payloadSha256/);
      expect(await slotSnapshot(img), what).toBe(before);
    }
    await slotWrite(img, 'os2', good, { bootonce: true }); // the bundle itself is sound
    expect(await slotSnapshot(img)).not.toBe(before);
  });
});
