/**
 * qcow2 reader on hostile input: every header field, table offset and feature bit we refuse, each
 * as a FormatError naming what is wrong, and what still reads (dirty and corrupt bits, snapshots).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { FormatError } from '../../formats/common/errors.js';
import type { ContainerReader, OpenContext } from '../../src/containers/types.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import { decodeL1Entry, decodeL2Entry } from '../../formats/containers/qcow2-tables.js';
import { writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

const dir = tempDir('diskmint-qcow2-hostile-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

const openCtx: OpenContext = {
  path: 'test.qcow2',
  openSibling: async () => {
    throw new Error('no siblings');
  },
};

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
