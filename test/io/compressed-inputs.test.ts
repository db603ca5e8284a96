/**
 * Compressed images read as they come (issue 19): gzip, xz, zstd, bzip2 and a zip holding one
 * image, made by the real tools (gzip, xz, zstd, bzip2, zip), are detected by content and read by
 * info, convert, compare and verify as the raw image they hold (qemu-img judges the converted
 * bytes); their data ranges come from the decompression, not a scan; a truncated stream, a zip
 * of two images and an edit are refused with one sentence, writing nothing.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildImage, compareImages, convertImage, flashImage, inspectImage, verifyImage } from '../../src/index.js';
import { openDisk } from '../../src/io/open-disk.js';
import { slotBootonce } from '../../src/ops/slots/slots.js';
import { detectCompression } from '../../formats/common/compression.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;

const KINDS = [
  { kind: 'gzip', tool: 'gzip', pkg: 'gzip', ext: '.gz', make: (f: string) => execFileSync('gzip', ['-k', '-n', f]) },
  { kind: 'xz', tool: 'xz', pkg: 'xz-utils', ext: '.xz', make: (f: string) => execFileSync('xz', ['-k', '-T1', f]) },
  { kind: 'zstd', tool: 'zstd', pkg: 'zstd', ext: '.zst', make: (f: string) => execFileSync('zstd', ['-q', '-k', f]) },
  { kind: 'bzip2', tool: 'bzip2', pkg: 'bzip2', ext: '.bz2', make: (f: string) => execFileSync('bzip2', ['-k', f]) },
  { kind: 'zip', tool: 'zip', pkg: 'zip', ext: '.zip', make: (f: string) => execFileSync('zip', ['-q', '-j', `${f}.zip`, f]) },
] as const;

let dir: string;
let raw: string;

beforeAll(async () => {
  dir = tempDir('diskmint-compressed-');
  raw = join(dir, 'card.img');
  // A card image: data at the start, in the middle and at the end (the backup GPT), holes between.
  const data = Buffer.alloc(3 * MiB);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 9)) & 0xff;
  writeFileSync(join(dir, 'os.bin'), data);
  await buildImage(
    {
      scheme: 'gpt',
      size: '48M',
      partitions: [
        { type: 'freebsd-ufs', label: 'os1', size: '16M', attributes: ['bootme'], contents: { file: 'os.bin' } },
        { type: 'freebsd-ufs', label: 'os2', size: '16M' },
      ],
    },
    { output: raw, baseDir: dir, progress: false },
  );
});

async function ranges(path: string): Promise<Array<{ offset: number; length: number }>> {
  const { reader } = await openDisk(path);
  try {
    const out = [];
    for await (const r of reader.allocatedRanges()) out.push(r);
    return out;
  } finally {
    await reader.close();
  }
}

describe.each(KINDS)('a $kind-compressed image', (k) => {
  const file = () => (k.kind === 'zip' ? `${raw}.zip` : `${raw}${k.ext}`);

  it('is read as the raw image it holds: info, convert (qemu-img compares), compare, verify; ranges as the raw', async () => {
    requirePeer(k.tool, k.pkg);
    requirePeer('qemu-img', 'qemu-utils');
    if (!existsSync(file())) k.make(raw);
    const info = await inspectImage(file());
    expect(info.format).toBe('raw');
    expect(info.details).toMatchObject({ compression: k.kind });
    expect(info.table?.partitions.map((p) => p.label)).toEqual(['os1', 'os2']);
    const out = join(dir, `${k.kind}.qcow2`);
    await convertImage(file(), out, { format: 'qcow2' });
    execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, out]);
    expect((await compareImages(raw, file())).identical).toBe(true);
    expect((await verifyImage(file())).ok).toBe(true);
    expect(await ranges(file())).toEqual(await ranges(raw));
  });

  it('truncated: one sentence naming the file, exit code NOT_A_DISK, no output written', async () => {
    requirePeer(k.tool, k.pkg);
    if (!existsSync(file())) k.make(raw);
    const cut = join(dir, `cut-${k.kind}${k.ext}`);
    copyFileSync(file(), cut);
    truncateSync(cut, Math.floor(statSync(cut).size / 2));
    const out = join(dir, `cut-${k.kind}.qcow2`);
    await expect(convertImage(cut, out, { format: 'qcow2' })).rejects.toMatchObject({
      code: 'NOT_A_DISK',
      message: expect.stringMatching(
        new RegExp(`${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the ${k.kind} stream is damaged or truncated .*nothing was written`),
      ),
    });
    expect(existsSync(out)).toBe(false);
  });

  it('flashes to a device (a file standing in) as the raw image it holds, read back and verified', async () => {
    requirePeer(k.tool, k.pkg);
    if (!existsSync(file())) k.make(raw);
    const device = join(dir, `device-${k.kind}.bin`);
    writeFileSync(device, Buffer.alloc(0));
    truncateSync(device, statSync(raw).size);
    const r = await flashImage(file(), device, { yes: true, verify: 'full' });
    expect(r.dataBytes).toBeGreaterThan(0);
    // xz (its index) and zstd (its frame headers) record their size: written as they decode; the others decoded first.
    expect(r.compression).toEqual({ kind: k.kind, read: k.kind === 'xz' || k.kind === 'zstd' ? 'streamed' : 'spooled' });
    expect(readFileSync(device).equals(readFileSync(raw))).toBe(true);
  });

  it('is not edited: the refusal names the command that makes an editable copy, the file unchanged', async () => {
    requirePeer(k.tool, k.pkg);
    if (!existsSync(file())) k.make(raw);
    const before = readFileSync(file());
    await expect(slotBootonce(file(), 'os2')).rejects.toThrow(new RegExp(`is ${k.kind}-compressed, .*diskmint convert .*nothing was changed`));
    expect(readFileSync(file()).equals(before)).toBe(true);
  });
});

describe('compressed containers and archives', () => {
  it('a gzip-compressed qcow2 opens as the qcow2 it holds', async () => {
    const q = join(dir, 'inner.qcow2');
    await convertImage(raw, q, { format: 'qcow2' });
    execFileSync('gzip', ['-k', '-n', q]);
    const { reader, format, compression } = await openDisk(`${q}.gz`);
    await reader.close();
    expect([format, compression]).toEqual(['qcow2', 'gzip']);
    expect((await compareImages(raw, `${q}.gz`)).identical).toBe(true);
  });

  it('a zip holding two images is refused, listing them', async () => {
    requirePeer('zip', 'zip');
    const other = join(dir, 'other.img');
    copyFileSync(raw, other);
    const two = join(dir, 'two.zip');
    execFileSync('zip', ['-q', '-j', two, raw, other]);
    await expect(inspectImage(two)).rejects.toThrow(/two\.zip holds 2 files \(card\.img, other\.img\); a zip must hold one image/);
  });
});

describe('detectCompression (property)', () => {
  it('never throws, and knows each magic whatever follows it', () => {
    const magics: Array<[number[], string]> = [
      [[0x1f, 0x8b, 0x08], 'gzip'],
      [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
      [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
      [[0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 'bzip2'],
      [[0x50, 0x4b, 0x03, 0x04], 'zip'],
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 8 }), fc.nat(magics.length - 1), (random, tail, pick) => {
        detectCompression(random); // any bytes: an answer, never an exception
        const [magic, kind] = magics[pick];
        expect(detectCompression(Uint8Array.from([...magic, ...tail]))).toBe(kind);
        expect(detectCompression(Uint8Array.from(magic.slice(0, -1)))).toBeUndefined(); // one byte short
      }),
    );
  });
});
