/**
 * qcow2 in-process: writer/reader round trips over random sparse disks and determinism (threads,
 * pipe vs file). The codec is in qcow2-codec.test.ts, hostile headers in qcow2-hostile.test.ts,
 * writer options and policy in qcow2-options.test.ts; the byte-mutation fuzz over our and
 * qemu-img's images is in test/peers/qcow2.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualDisk } from '../../src/model/extents.js';
import { isAllZero } from '../../src/containers/blocks.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import { openWithHandler, readAll, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-qcow2-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

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

/** `data` cut into clusters; those holding a non-zero byte, as joined ranges. */
function clustersWithData(data: Uint8Array, clusterSize: number): { offset: number; length: number }[] {
  const ranges: { offset: number; length: number }[] = [];
  for (let at = 0; at < data.length; at += clusterSize) {
    const length = Math.min(clusterSize, data.length - at);
    if (isAllZero(data.subarray(at, at + length))) continue;
    const last = ranges[ranges.length - 1];
    if (last && last.offset + last.length === at) last.length += length;
    else ranges.push({ offset: at, length });
  }
  return ranges;
}

const clusterBytes = (cs: string) => (cs === '2M' ? 2 * MiB : Number(cs));

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
              const ranges: { offset: number; length: number }[] = [];
              for await (const r of reader.allocatedRanges()) {
                expect(r.offset).toBeGreaterThanOrEqual(prevEnd);
                prevEnd = r.offset + r.length;
                rest.fill(0, Math.min(r.offset, rest.length), Math.min(prevEnd, rest.length));
                ranges.push(r);
              }
              expect(prevEnd).toBeLessThanOrEqual(reader.size);
              expect(isAllZero(rest)).toBe(true);
              // Exactly the clusters that hold a non-zero byte (the writer leaves zero clusters
              // unallocated), neighbours joined, across L2 tables (64 entries each at 512 bytes).
              expect(ranges).toEqual(clustersWithData(back, clusterBytes(cs)));
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
