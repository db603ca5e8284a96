/**
 * Our own writers' outputs against stored goldens, as FreeBSD mkimg's mkimg_test.sh does for
 * mkimg: each scheme (raw), each container writer and a few of their sub-formats (from one GPT
 * layout), and a FAT volume, built from fixed inputs with SOURCE_DATE_EPOCH and seeds set, and
 * compared byte for byte with fixtures/golden/<image>.<file>.hex (`hexdump -C` text, see
 * test/helpers/hexdump.ts).
 *
 * A change in any output fails here naming the image and its first differing offset. When the
 * change is meant (a writer fixed, a layout rule changed), rewrite the goldens and review their
 * diff: `DISKMINT_REBASE=1 npx vitest run test/layout/golden-outputs.test.ts`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, createFatImage, type Layout, type WriteImageOptions } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { hexdumpC, parseHexdumpC } from '../helpers/hexdump.js';

const GOLDEN_DIR = new URL('../../fixtures/golden/', import.meta.url).pathname;
const REBASE = process.env.DISKMINT_REBASE === '1';
/** 2026-01-01 00:00:00 UTC: FAT entry times and the VHD footer's time stamp. */
const SOURCE_DATE_EPOCH = '1767225600';

/** `bytes` of recognisable data: each 512-byte sector starts with its name and number, then a letter. */
function sectorData(name: string, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let s = 0; s * 512 < bytes; s++) {
    const head = new TextEncoder().encode(`${name} sector ${s}\n`);
    const sector = out.subarray(s * 512, Math.min(bytes, (s + 1) * 512));
    for (let i = 0; i < sector.length; i++) sector[i] = i < head.length ? head[i] : 0x41 + (s % 26);
  }
  return out;
}

/** The fixed inputs, in `dir`: partition data, boot code, and a small tree for FAT. */
function writeInputs(dir: string): void {
  writeFileSync(join(dir, 'a.bin'), sectorData('a.bin', 6 * 1024));
  writeFileSync(join(dir, 'b.bin'), sectorData('b.bin', 3 * 1024 + 100)); // not whole sectors
  writeFileSync(join(dir, 'mbr-boot.bin'), sectorData('mbr-boot', 446));
  writeFileSync(join(dir, 'bsd-boot.bin'), sectorData('bsd-boot', 8192));
  mkdirSync(join(dir, 'esp/EFI/BOOT'), { recursive: true });
  writeFileSync(join(dir, 'esp/EFI/BOOT/BOOTX64.EFI'), sectorData('BOOTX64.EFI', 1500));
  writeFileSync(join(dir, 'esp/README.TXT'), 'diskmint golden volume\n');
  writeFileSync(join(dir, 'esp/A long file name.txt'), 'long names get an 8.3 alias\n');
}

const gpt: Layout = {
  scheme: 'gpt',
  size: '2M',
  align: '64K',
  seed: 'golden-gpt',
  partitions: [
    { type: 'efi', label: 'esp', size: '1M', contents: { fat: { from: 'esp', type: '12', label: 'GOLDEN' } } },
    { type: 'freebsd-ufs', label: 'root', size: '512K', attributes: ['bootme'], contents: { file: 'a.bin' } },
    { type: 'freebsd-swap', label: 'swap', size: 'rest' },
  ],
};

/** Images of each scheme, raw. */
const SCHEMES: Record<string, Layout> = {
  gpt,
  'gpt-4k': {
    scheme: 'gpt',
    sectorSize: 4096,
    size: '1M',
    align: '64K',
    seed: 'golden-gpt-4k',
    entries: 32,
    partitions: [
      { type: 'freebsd-boot', label: 'boot', size: '64K', contents: { file: 'b.bin' } },
      { type: 'freebsd-zfs', label: 'zfs', size: 'rest', contents: { file: 'a.bin' } },
    ],
  },
  mbr: {
    scheme: 'mbr',
    size: '2M',
    align: '64K',
    seed: 'golden-mbr',
    bootcode: 'mbr-boot.bin',
    diskSignature: '0x1234abcd',
    geometry: { heads: 16, sectors: 63 },
    partitions: [
      { type: 'fat16', size: '512K', active: true, contents: { file: 'a.bin' } },
      { type: 'linux', size: '256K', logical: true, contents: { file: 'b.bin' } },
      { type: 'freebsd', size: '256K', logical: true },
    ],
  },
  bsd: {
    scheme: 'bsd',
    size: '1M',
    seed: 'golden-bsd',
    bootcode: 'bsd-boot.bin',
    partitions: [
      { type: '4.2BSD', size: '256K', contents: { file: 'a.bin' } },
      { type: 'swap', size: 'rest' },
    ],
  },
  ebr: {
    scheme: 'ebr',
    size: '1M',
    seed: 'golden-ebr',
    align: '4K',
    partitions: [
      { type: 'fat16', size: '128K', contents: { file: 'b.bin' } },
      { type: 'linux', size: '64K', contents: { file: 'a.bin' } },
    ],
  },
};

/** The GPT layout through each writer and a few sub-formats. */
const WRITERS: Record<string, { file: string } & WriteImageOptions> = {
  'gpt-qcow2': { file: 'disk.qcow2' },
  'gpt-qcow2-compat010': { file: 'disk.qcow2', options: { compat: '0.10', cluster_size: '4096' } },
  'gpt-qcow2-deflate': { file: 'disk.qcow2', compress: true, compression: 'deflate' },
  'gpt-qcow2-zstd': { file: 'disk.qcow2', compress: true, compression: 'zstd', options: { compression_type: 'zstd' } },
  'gpt-vmdk': { file: 'disk.vmdk' },
  'gpt-vmdk-stream': { file: 'disk.vmdk', options: { subformat: 'streamOptimized' }, compress: true },
  'gpt-vmdk-flat': { file: 'disk.vmdk', options: { subformat: 'monolithicFlat' } },
  'gpt-vmdk-2gb': { file: 'disk.vmdk', options: { subformat: 'twoGbMaxExtentSparse' } },
  'gpt-vhd': { file: 'disk.vhd' },
  'gpt-vhd-fixed': { file: 'disk.vhd', options: { subformat: 'fixed' } },
  'gpt-vhdx': { file: 'disk.vhdx' },
  'gpt-vhdx-fixed': { file: 'disk.vhdx', options: { subformat: 'fixed' } },
};

const inputs = tempDir('diskmint-golden-in-');
const previousEpoch = process.env.SOURCE_DATE_EPOCH;
beforeAll(() => {
  process.env.SOURCE_DATE_EPOCH = SOURCE_DATE_EPOCH;
  writeInputs(inputs);
  if (REBASE) mkdirSync(GOLDEN_DIR, { recursive: true });
});
afterAll(() => {
  if (previousEpoch === undefined) delete process.env.SOURCE_DATE_EPOCH;
  else process.env.SOURCE_DATE_EPOCH = previousEpoch;
});

/** Golden file names each image's files were compared with (or written to). */
const used = new Set<string>();
/** Images whose every file matched (or was rewritten). */
let imagesDone = 0;
const IMAGE_COUNT = Object.keys(SCHEMES).length + Object.keys(WRITERS).length + 1;

/** Compare every file `make` writes into a fresh folder with its golden (or rewrite them). */
async function checkImage(image: string, make: (dir: string) => Promise<unknown>): Promise<void> {
  const dir = tempDir('diskmint-golden-out-');
  await make(dir);
  const files = readdirSync(dir).sort();
  expect(files.length, `${image}: wrote no file`).toBeGreaterThan(0);
  for (const file of files) {
    const name = `${image}.${file}.hex`;
    used.add(name);
    const bytes = new Uint8Array(readFileSync(join(dir, file)));
    const path = join(GOLDEN_DIR, name);
    if (REBASE) {
      writeFileSync(path, hexdumpC(bytes));
      continue;
    }
    let golden: Uint8Array;
    try {
      golden = parseHexdumpC(readFileSync(path, 'utf8'));
    } catch {
      throw new Error(`${image}: no golden ${name} for ${file}; write it with DISKMINT_REBASE=1 npx vitest run test/layout/golden-outputs.test.ts`);
    }
    const at = firstDifference(bytes, golden);
    if (at !== -1) {
      const detail =
        at >= Math.min(bytes.length, golden.length)
          ? `ours is ${bytes.length} bytes, the golden ${golden.length}`
          : `ours 0x${bytes[at].toString(16).padStart(2, '0')}, golden 0x${golden[at].toString(16).padStart(2, '0')}`;
      throw new Error(
        `${image}: ${file} differs from ${name} first at offset ${at} (0x${at.toString(16)}): ${detail}. ` +
          'If the change is meant: DISKMINT_REBASE=1 npx vitest run test/layout/golden-outputs.test.ts, then review the diff',
      );
    }
  }
  imagesDone++;
}

/** First offset where `a` and `b` differ (the shorter length when one is a prefix of the other), or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

const build = (layout: Layout, output: string, opts: WriteImageOptions = {}) =>
  buildImage(structuredClone(layout), { ...opts, output, baseDir: inputs, progress: false, threads: 1 });

describe(`our outputs match fixtures/golden${REBASE ? ' (DISKMINT_REBASE=1: rewriting them)' : ''}`, () => {
  for (const [scheme, layout] of Object.entries(SCHEMES)) {
    it(`${scheme}, raw`, () => checkImage(`${scheme}-raw`, (dir) => build(layout, join(dir, 'disk.img'))));
  }
  for (const [image, { file, ...opts }] of Object.entries(WRITERS)) {
    it(image, () => checkImage(image, (dir) => build(gpt, join(dir, file), opts)));
  }
  it('FAT volume (fat create)', () =>
    checkImage('fat', (dir) => createFatImage(join(dir, 'fat.img'), { from: join(inputs, 'esp'), label: 'GOLDENFAT', progress: false })));

  it('every golden belongs to an image above', (ctx) => {
    if (imagesDone !== IMAGE_COUNT) return ctx.skip(); // a filtered or failed run has not seen them all
    const stale = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.hex') && !used.has(f));
    if (REBASE) for (const f of stale) rmSync(join(GOLDEN_DIR, f));
    else expect(stale, 'goldens no image writes: remove them (DISKMINT_REBASE=1 does)').toEqual([]);
  });
});

describe('the hexdump -C text the goldens are stored in', () => {
  it('round-trips, with * for repeated lines and a short last line', () => {
    const bytes = new Uint8Array(1000);
    bytes.set(sectorData('x', 77), 3);
    bytes.fill(0xaa, 600, 950);
    const text = hexdumpC(bytes);
    expect(text.split('\n').filter((l) => l === '*').length).toBe(4); // a run of 'A's, zeros, 0xaa, zeros
    expect(text.endsWith('000003e8\n')).toBe(true);
    expect(parseHexdumpC(text)).toEqual(bytes);
  });
});
