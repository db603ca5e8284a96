/**
 * qcow2 in-process: codec round trips, writer/reader round trips over random sparse disks,
 * determinism (threads, pipe vs file) and hostile headers (writer options and policy are in
 * qcow2-options.test.ts; the byte-mutation fuzz over our and qemu-img's images is in
 * test/peers/qcow2.test.ts).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { FormatError } from '../../formats/common/errors.js';
import { createCompressor } from '../../src/containers/compress.js';
import { isAllZero } from '../../src/containers/blocks.js';
import type { ContainerReader, OpenContext } from '../../src/containers/types.js';
import { qcow2Handler, zstdFrameExtent } from '../../src/containers/qcow2/handler.js';
import {
  QCOW2_COMPRESSION,
  QCOW2_FEATURE_NAMES,
  encodeQcow2Header,
  l1EntriesFor,
  decodeQcow2Extensions,
  decodeQcow2Header,
} from '../../formats/containers/qcow2.js';
import { refcountLayout, refcountsPerBlock } from '../../formats/containers/qcow2-refcounts.js';
import {
  decodeCompressedDescriptor,
  decodeL1Entry,
  decodeL2Entry,
  encodeCompressedDescriptor,
  encodeL1Entry,
  compressedOffsetBits,
} from '../../formats/containers/qcow2-tables.js';
import { openWithHandler, readAll, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-qcow2-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const openCtx: OpenContext = {
  path: 'test.qcow2',
  openSibling: async () => {
    throw new Error('no siblings');
  },
};

/** A VirtualDisk and its raw bytes. */
type SourceDisk = { disk: VirtualDisk; raw: Buffer };

const extentArb = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  length: fc.integer({ min: 1, max: 300_000 }),
  fill: fc.constantFrom('random', 'constant', 'zero'),
  seed: fc.integer({ min: 0, max: 255 }),
});
const diskArb = fc.record({ size: fc.integer({ min: 1, max: 3 * MiB }), extents: fc.array(extentArb, { maxLength: 5 }) });

function buildDisk(spec: { size: number; extents: Array<{ at: number; length: number; fill: string; seed: number }> }): SourceDisk {
  const disk = new VirtualDisk(spec.size);
  const raw = Buffer.alloc(spec.size);
  const placed: Array<[number, number]> = [];
  for (const e of spec.extents) {
    const offset = Math.min(spec.size - 1, Math.floor(e.at * spec.size));
    const length = Math.min(e.length, spec.size - offset);
    if (placed.some(([o, l]) => offset < o + l && o < offset + length)) continue;
    const data = new Uint8Array(length);
    if (e.fill === 'constant') data.fill(e.seed | 1);
    else if (e.fill === 'random') for (let i = 0, x = e.seed + 1; i < length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    disk.placeBytes(offset, data);
    raw.set(data, offset);
    placed.push([offset, length]);
  }
  return { disk, raw };
}

interface Variant {
  name: string;
  options?: Record<string, string>;
  compress?: { algorithm: 'deflate' | 'zstd' };
}
const VARIANTS: Variant[] = [
  { name: 'v3', options: {} },
  { name: 'v2', options: { compat: '0.10' } },
  { name: 'v3 deflate', compress: { algorithm: 'deflate' } },
  { name: 'v3 zstd', compress: { algorithm: 'zstd' } },
  { name: 'v2 deflate', options: { compat: '0.10' }, compress: { algorithm: 'deflate' } },
];
const CLUSTER_SIZES = ['512', '4096', '65536', '2M'];

let fileCounter = 0;
async function roundTrip(src: SourceDisk, v: Variant, clusterSize: string, threads = 2): Promise<{ path: string; reader: ContainerReader }> {
  const path = join(dir, `rt-${fileCounter++}.qcow2`);
  await writeWithHandler(qcow2Handler, src.disk, path, { options: { ...v.options, cluster_size: clusterSize }, compress: v.compress, threads });
  return { path, reader: await openWithHandler(qcow2Handler, path) };
}

describe('qcow2 codec', () => {
  it('header v2 and v3 encode and parse back, with the feature name table', () => {
    for (const version of [2, 3] as const) {
      const bytes = encodeQcow2Header({
        version,
        clusterBits: 16,
        size: 123456789,
        l1Size: 1,
        l1TableOffset: 65536,
        refcountTableOffset: 131072,
        refcountTableClusters: 1,
        compressionType: version === 3 ? QCOW2_COMPRESSION.zstd : 0,
        featureNames: version === 3 ? QCOW2_FEATURE_NAMES : undefined,
      });
      const h = decodeQcow2Header(bytes);
      expect(h).toMatchObject({
        version,
        clusterBits: 16,
        size: 123456789,
        l1Size: 1,
        l1TableOffset: 65536,
        refcountTableOffset: 131072,
        refcountTableClusters: 1,
      });
      expect(h.headerLength).toBe(version === 3 ? 112 : 72);
      expect(h.compressionType).toBe(version === 3 ? 1 : 0);
      expect(h.incompatibleFeatures).toEqual(version === 3 ? [3] : []);
      const ext = decodeQcow2Extensions(bytes, h.headerLength);
      expect(ext.featureNames).toEqual(version === 3 ? QCOW2_FEATURE_NAMES : []);
    }
  });

  it('compressed descriptors round trip for every cluster_bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (bits, fo, fl) => {
        const cs = 2 ** bits;
        // JS numbers are exact to 2^53 (8 PiB): the codec refuses larger offsets.
        const maxOffset = Math.min(2 ** compressedOffsetBits(bits), 2 ** 53) - cs;
        const hostOffset = Math.floor(fo * maxOffset);
        const length = 1 + Math.floor(fl * (cs - 2));
        const [hi, lo] = encodeCompressedDescriptor(hostOffset, length, bits);
        expect(hi & 0x80000000).toBe(0);
        const d = decodeCompressedDescriptor(hi, lo, bits);
        expect(d.hostOffset).toBe(hostOffset);
        const e = decodeL2Entry(hi, lo, bits);
        expect(e.kind).toBe('compressed');
        const span = d.sectors * 512 - (hostOffset % 512);
        expect(span).toBeGreaterThanOrEqual(length);
        expect(span - length).toBeLessThan(512);
      }),
    );
    expect(() => encodeCompressedDescriptor(2 ** 53 + 2, 100, 9)).toThrow(/safe integer/);
  });

  it('L1/L2 standard entries and the zero flag', () => {
    const [hi, lo] = encodeL1Entry(0x123456780000);
    expect(hi >>> 31).toBe(1);
    expect(decodeL1Entry(hi, lo)).toBe(0x123456780000);
    expect(decodeL2Entry(hi, lo, 16)).toEqual({ kind: 'normal', hostOffset: 0x123456780000 });
    expect(decodeL2Entry(0, 0, 16)).toEqual({ kind: 'unallocated' });
    expect(decodeL2Entry(0x80000000, 0x10001, 16)).toEqual({ kind: 'zero' });
    expect(decodeL2Entry(0, 1, 16)).toEqual({ kind: 'zero' });
  });

  it('l1EntriesFor agrees with the spec formula', () => {
    expect(l1EntriesFor(0, 16)).toBe(0);
    expect(l1EntriesFor(1, 16)).toBe(1);
    expect(l1EntriesFor(512 * 1024 * 1024, 16)).toBe(1);
    expect(l1EntriesFor(512 * 1024 * 1024 + 1, 16)).toBe(2);
  });

  it('refcount layout covers itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 1, max: 50_000_000 }), (bits, other) => {
        const { blocks, tableClusters } = refcountLayout(bits, other);
        expect(blocks * refcountsPerBlock(bits)).toBeGreaterThanOrEqual(other + blocks + tableClusters);
        expect((tableClusters * 2 ** bits) / 8).toBeGreaterThanOrEqual(blocks);
      }),
    );
  });

  it('zstd frame extent ignores what follows the frame', async () => {
    const c = createCompressor({ threads: 1 });
    try {
      const data = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
      const frame = await c.compress(data, 'zstd');
      const padded = new Uint8Array(frame.length + 300).fill(0xee);
      padded.set(frame);
      expect(zstdFrameExtent(padded)).toEqual({ length: frame.length, contentSize: 65536 });
      expect(() => zstdFrameExtent(frame.subarray(0, frame.length - 1))).toThrow(FormatError);
    } finally {
      await c.close();
    }
  });
});

describe('qcow2 round trips', () => {
  for (const cs of CLUSTER_SIZES) {
    for (const v of VARIANTS) {
      it(`${v.name}, cluster_size ${cs}: random sparse disks read back identical`, async () => {
        await fc.assert(
          fc.asyncProperty(diskArb, async (spec) => {
            const src = buildDisk(spec);
            const { reader } = await roundTrip(src, v, cs);
            try {
              // The header rounds the size up to whole 512-byte sectors; the padding reads as zeros.
              expect(reader.size).toBe(Math.ceil(src.raw.length / 512) * 512);
              expect(reader.subformat).toBe(v.options?.compat === '0.10' ? 'v2' : 'v3');
              const back = await readAll(reader);
              expect(Buffer.compare(back.subarray(0, src.raw.length), src.raw)).toBe(0);
              expect(isAllZero(back.subarray(src.raw.length))).toBe(true);
              // Ranges are ascending, inside the disk, and cover every non-zero byte.
              const rest = Buffer.from(src.raw);
              let prevEnd = 0;
              for await (const r of reader.allocatedRanges()) {
                expect(r.offset).toBeGreaterThanOrEqual(prevEnd);
                prevEnd = r.offset + r.length;
                rest.fill(0, Math.min(r.offset, rest.length), Math.min(prevEnd, rest.length));
              }
              expect(prevEnd).toBeLessThanOrEqual(reader.size);
              expect(isAllZero(rest)).toBe(true);
            } finally {
              await reader.close();
            }
          }),
          { numRuns: cs === '512' ? 3 : 4 },
        );
      });
    }
  }

  it('zero-filled extents leave clusters unallocated', async () => {
    const disk = new VirtualDisk(4 * MiB).placeBytes(0, new Uint8Array(MiB)).placeBytes(2 * MiB, new Uint8Array(65536).fill(7));
    const { reader } = await roundTrip({ disk, raw: Buffer.alloc(0) }, VARIANTS[0], '65536');
    const ranges = [];
    for await (const r of reader.allocatedRanges()) ranges.push(r);
    await reader.close();
    expect(ranges).toEqual([{ offset: 2 * MiB, length: 65536 }]);
  });

  it('an empty disk and a zero-size disk', async () => {
    for (const size of [0, 10 * MiB]) {
      const { reader } = await roundTrip({ disk: new VirtualDisk(size), raw: Buffer.alloc(0) }, VARIANTS[0], '65536');
      expect(reader.size).toBe(size);
      expect((await reader.read(0, 4096)).every((b) => b === 0)).toBe(true);
      await reader.close();
    }
  });

  it('compression threads 1 and 4 give identical bytes; file (data first) and pipe (metadata first) hold the same disk, each deterministic', async () => {
    const src = buildDisk({
      size: 3 * MiB,
      extents: [
        { at: 0.1, length: 900_000, fill: 'random', seed: 3 },
        { at: 0.6, length: 500_000, fill: 'constant', seed: 9 },
      ],
    });
    for (const algorithm of ['deflate', 'zstd'] as const) {
      const a = join(dir, `t1-${algorithm}.qcow2`);
      const b = join(dir, `t4-${algorithm}.qcow2`);
      await writeWithHandler(qcow2Handler, src.disk, a, { compress: { algorithm }, threads: 1, options: { cluster_size: '4096' } });
      await writeWithHandler(qcow2Handler, src.disk, b, { compress: { algorithm }, threads: 4, options: { cluster_size: '4096' } });
      expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    }
    for (const compat of ['1.1', '0.10']) {
      const f = join(dir, `file-${compat}.qcow2`);
      await writeWithHandler(qcow2Handler, src.disk, f, { options: { compat } });
      const first = readFileSync(f);
      await writeWithHandler(qcow2Handler, src.disk, f, { options: { compat } });
      expect(readFileSync(f).equals(first)).toBe(true);
      const piped = await writeWithHandler(qcow2Handler, src.disk, f + '.pipe', { options: { compat }, pipe: true });
      const again = await writeWithHandler(qcow2Handler, src.disk, f + '.pipe', { options: { compat }, pipe: true });
      expect(piped!.equals(again!)).toBe(true);
      writeFileSync(f + '.pipe', piped!);
      for (const path of [f, f + '.pipe']) {
        const reader = await openWithHandler(qcow2Handler, path);
        expect((await readAll(reader)).equals(src.raw), path).toBe(true);
        await reader.close();
      }
    }
  });
});

/** A small valid image (v3, 512-byte clusters, data at 0 and 1 MiB, one compressed variant). */
async function sampleImage(compress = false, clusterSize = '512'): Promise<Uint8Array> {
  const disk = new VirtualDisk(2 * MiB).placeBytes(0, new Uint8Array(3000).fill(5)).placeBytes(
    MiB,
    new Uint8Array(5000).map((_, i) => i & 0xff),
  );
  const path = join(dir, `sample-${compress}-${clusterSize}.qcow2`);
  await writeWithHandler(qcow2Handler, disk, path, { options: { cluster_size: clusterSize }, compress: compress ? { algorithm: 'deflate' } : undefined });
  return new Uint8Array(readFileSync(path));
}

function patched(image: Uint8Array, edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = image.slice();
  edit(new DataView(copy.buffer), copy);
  return copy;
}

async function openBytes(bytes: Uint8Array, ctx: Partial<OpenContext> = {}): Promise<ContainerReader> {
  return qcow2Handler.open(memoryDiskReader(bytes), { ...openCtx, ...ctx });
}

/** Open and read everything the image says is allocated (bounded), closing afterwards. */
async function openAndReadAll(bytes: Uint8Array, ctx: Partial<OpenContext> = {}): Promise<void> {
  const r = await openBytes(bytes, ctx);
  try {
    let budget = 16 * MiB;
    let count = 0;
    for await (const range of r.allocatedRanges()) {
      const n = Math.min(range.length, budget);
      await r.read(range.offset, n);
      budget -= n;
      if (budget <= 0 || ++count > 10_000) break;
    }
    await r.read(0, Math.min(r.size, MiB));
  } finally {
    await r.close();
  }
}

async function expectFormatError(bytes: Uint8Array, pattern: RegExp, ctx: Partial<OpenContext> = {}): Promise<void> {
  const err = await openAndReadAll(bytes, ctx).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected FormatError matching ${pattern}`).toBeInstanceOf(FormatError);
  expect((err as FormatError).format).toBe('qcow2');
  expect((err as Error).message).toMatch(pattern);
}

describe('qcow2 hostile input', () => {
  let image: Uint8Array;
  let compressed: Uint8Array;
  const u64 = (v: DataView, at: number, value: number) => {
    v.setUint32(at, Math.floor(value / 2 ** 32));
    v.setUint32(at + 4, value >>> 0);
  };
  beforeAll(async () => {
    image = await sampleImage();
    compressed = await sampleImage(true);
  });
  const l1Offset = () => Number(new DataView(image.buffer, image.byteOffset).getBigUint64(40));
  const firstL2 = () =>
    decodeL1Entry(new DataView(image.buffer, image.byteOffset).getUint32(l1Offset()), new DataView(image.buffer, image.byteOffset).getUint32(l1Offset() + 4));

  it('the sample opens cleanly', async () => {
    await openAndReadAll(image);
    await openAndReadAll(compressed);
    expect(await qcow2Handler.detect(memoryDiskReader(image))).toBe(true);
    expect(await qcow2Handler.detect(memoryDiskReader(new Uint8Array(2)))).toBe(false);
  });

  it('header fields: magic, version, truncation, cluster_bits, header_length, virtual size', async () => {
    await expectFormatError(
      patched(image, (v) => v.setUint32(0, 0x514649fc)),
      /magic/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(4, 4)),
      /version 4/,
    );
    await expectFormatError(image.subarray(0, 50), /header needs/);
    await expectFormatError(image.subarray(0, 90), /version 3 header/);
    await expectFormatError(
      patched(image, (v) => v.setUint32(20, 8)),
      /cluster_bits 8/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(20, 22)),
      /cluster_bits 22/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(100, 96)),
      /header_length 96/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(100, 108)),
      /header_length 108/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(100, 4096)),
      /header_length 4096/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 24, 2 ** 60)),
      /virtual size.*2\^53/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 24, 2 ** 50)),
      /L1 table .* too small/,
    );
  });

  it('L1 table: too small, too large, past the end, unaligned, into the header', async () => {
    await expectFormatError(
      patched(image, (v) => v.setUint32(36, 0)),
      /L1 table .* too small/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(36, 5_000_000)),
      /exceeds/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(36, 100_000)),
      /L1 table .* past the end/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 40, 2 ** 40)),
      /L1 table .* past the end/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 40, 513)),
      /L1 table offset 513 is not cluster aligned/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 40, 0)),
      /L1 table offset 0 points into the header/,
    );
  });

  it('refcount table past the end, too large, unaligned', async () => {
    await expectFormatError(
      patched(image, (v) => u64(v, 48, 2 ** 40)),
      /refcount table .* past the end/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(56, 0xffffffff)),
      /refcount table .* exceeds/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(56, 4000)),
      /refcount table .* past the end/,
    );
    await expectFormatError(
      patched(image, (v) => u64(v, 48, 1000)),
      /refcount table offset 1000 is not cluster aligned/,
    );
  });

  it('L2 tables past the end, unaligned, shared; clusters into the header', async () => {
    const l1 = l1Offset();
    await expectFormatError(
      patched(image, (v) => v.setUint32(l1 + 4, 0x7ffffe00)),
      /L2 table at .* past the end/,
    );
    const big = await sampleImage(false, '65536');
    await expectFormatError(
      patched(big, (v) => v.setUint32(65536 + 4, (v.getUint32(65536 + 4) + 0x200) >>> 0)),
      /L2 table offset .* not cluster aligned/,
    );
    await expectFormatError(
      patched(image, (v) => {
        v.setUint32(l1 + 8, v.getUint32(l1));
        v.setUint32(l1 + 12, v.getUint32(l1 + 4));
      }),
      /more than one L1 entry/,
    );
    const l2 = firstL2();
    await expectFormatError(
      patched(image, (v) => {
        v.setUint32(l2, 0x80000000);
        v.setUint32(l2 + 4, 0);
      }),
      /points into the header/,
    );
    await expectFormatError(
      patched(image, (v) => {
        v.setUint32(l2, 0x00000010);
        v.setUint32(l2 + 4, 0);
      }),
      /past the end of the file/,
    );
    await expectFormatError(
      patched(image, (v) => {
        v.setUint32(l2, 0x40000000);
        v.setUint32(l2 + 4, 100);
      }),
      /compressed cluster .* header/,
    );
  });

  it('refused features: backing file, external data, encryption, unknown and extended-L2 bits, compression type', async () => {
    const backing = patched(image, (v, b) => {
      u64(v, 8, 400);
      v.setUint32(16, 4);
      b.set([0x61, 0x2e, 0x71, 0x32], 400);
    });
    await expectFormatError(backing, /backing file "a\.q2"; backing files are refused/);
    await expectFormatError(backing, /backing files are refused/, { allowBacking: true }); // allowed, but nothing to open it with
    await expectFormatError(
      patched(image, (v) => v.setUint32(76, 1 << 2)),
      /external data file/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(76, 1 << 2)),
      /names no data file/,
      { allowExternalData: true },
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(32, 1)),
      /crypt_method 1/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(76, 1 << 10)),
      /unknown incompatible feature bit 10/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(72, 1)),
      /unknown incompatible feature bit 32/,
    );
    await expectFormatError(
      patched(image, (v) => v.setUint32(76, 1 << 4)),
      /extended L2/,
    );
    await expectFormatError(
      patched(image, (v, b) => {
        v.setUint32(76, 1 << 3);
        b[104] = 2;
      }),
      /compression_type 2/,
    );
    await expectFormatError(
      patched(image, (_v, b) => {
        b[104] = 1;
      }),
      /compression_type 1 disagrees/,
    );
  });

  it('header extensions running past the first cluster', async () => {
    // The feature table extension at 112: give it a length past the cluster.
    await expectFormatError(
      patched(image, (v) => v.setUint32(116, 100_000)),
      /header extension/,
    );
  });

  it('dirty and corrupt bits still read; snapshots are ignored', async () => {
    const r = await openBytes(
      patched(image, (v) => {
        v.setUint32(76, 3);
        v.setUint32(60, 2);
        u64(v, 64, 1 << 30);
      }),
    );
    expect(r.details()).toMatchObject({ dirty: true, corrupt: true, snapshots: 2 });
    expect((await r.read(0, 3000)).every((b) => b === 5)).toBe(true);
    await r.close();
  });

  it('corrupt compressed data gives FormatError', async () => {
    // Find the first compressed descriptor and overwrite its data with garbage.
    const view = new DataView(compressed.buffer, compressed.byteOffset);
    const l1 = Number(view.getBigUint64(40));
    const l2 = decodeL1Entry(view.getUint32(l1), view.getUint32(l1 + 4));
    const e = decodeL2Entry(view.getUint32(l2), view.getUint32(l2 + 4), 9);
    expect(e.kind).toBe('compressed');
    if (e.kind !== 'compressed') return;
    await expectFormatError(
      patched(compressed, (_v, b) => b.fill(0xff, e.hostOffset, e.hostOffset + 8)),
      /decompress/,
    );
  });
});
