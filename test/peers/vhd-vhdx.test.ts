/**
 * Peers judge our VHD/VHDX bytes, and we read theirs.
 * - qemu-img 7.2 (qemu-utils): `check` has no vpc support (exit 63), so VHD output is judged by
 *   `compare -f vpc -F raw` and `info`. A fixed VHD must be opened with `-f vpc` (else raw).
 *   qemu's vpc driver sizes a disk by its CHS geometry unless the creator application is one of
 *   "win ", "qem2", "d2v ", "CTXS", "tap\0" or the geometry is the maximum 65535x16x255; our
 *   default output has CHS size == current_size, and our force_size output carries the maximum
 *   geometry (as qemu-img's own force_size output does), so qemu reads the exact size.
 * - 7-Zip 26.02 (`7zz`, package 7zip) decodes VHD and VHDX independently of qemu. Its VHDX
 *   reader refuses a virtual size with bit 9 set (it tests `size & (1 << 9)` where
 *   `size & 511` is meant), even for qemu's own files, so VHDX sizes here are whole KiB.
 * VHDX structures that overlap are in vhdx-overlap.test.ts, log replay in vhdx-log.test.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import { defaultVhdxBlockSize } from '../../src/containers/vhdx/writer.js';
import { vhdSizeFor } from '../../formats/containers/vhd.js';
import type { ContainerHandler } from '../../src/containers/types.js';
import { openWithHandler, readAll, writeWithHandler } from '../helpers/containers.js';
import { MKIMG_GOLDENS, decodeGolden } from '../helpers/golden.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { MIB, dir, sample } from './vhd-vhdx-helpers.js';

let n = 0;

function sevenZip(format: 'VHD' | 'VHDX', path: string): Buffer {
  const r = spawnSync('7zz', ['x', `-t${format}`, '-so', path], { maxBuffer: 1 << 30 });
  expect(r.status, r.stderr?.toString()).toBe(0);
  return r.stdout;
}

function qemuSize(driver: string, path: string): number {
  return JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', driver, path]))['virtual-size'] as number;
}

async function readWith(handler: ContainerHandler, path: string) {
  const r = await openWithHandler(handler, path);
  try {
    return { size: r.size, data: await readAll(r), details: r.details(), subformat: r.subformat };
  } finally {
    await r.close();
  }
}

function expectPrefixThenZeros(got: Uint8Array, expected: Uint8Array): void {
  expect(got.length).toBeGreaterThanOrEqual(expected.length);
  expect(Buffer.compare(Buffer.from(got.subarray(0, expected.length)), Buffer.from(expected))).toBe(0);
  expect(got.subarray(expected.length).every((b) => b === 0)).toBe(true);
}

const VHD_CASES: Array<Record<string, string>> = [{}, { subformat: 'fixed' }, { force_size: 'on' }, { subformat: 'fixed', force_size: 'on' }];
const SIZES = [5_000_000, 4 * MIB, 10 * MIB + 3 * 1024];

describe('qemu-img and 7-Zip read our VHD', () => {
  for (const options of VHD_CASES) {
    for (const size of SIZES) {
      it(`${JSON.stringify(options)} ${size} bytes`, async (ctx) => {
        if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
        const { disk, raw, expected } = sample(size);
        const out = join(dir, `ours${n++}.vhd`);
        await writeWithHandler(vhdHandler, disk, out, { options });
        const ours = await readWith(vhdHandler, out);
        expectPrefixThenZeros(ours.data, expected);
        // qemu sees the size we recorded (CHS product, or current_size with max geometry).
        expect(qemuSize('vpc', out)).toBe(ours.size);
        const cmp = runPeer('qemu-img', ['compare', '-f', 'vpc', '-F', 'raw', out, raw]);
        expect(cmp.status, cmp.out).toBe(0);
        expect(cmp.out).toMatch(/Images are identical/);
        if (requirePeer('7zz', '7zip')) expect(sevenZip('VHD', out).equals(ours.data)).toBe(true);
      });
    }
  }
});

describe('qemu-img and 7-Zip read our VHDX', () => {
  const cases: Array<Record<string, string>> = [
    {},
    { subformat: 'fixed' },
    { block_size: '1M' },
    { block_size: '32M', subformat: 'fixed' },
    { log_size: '2M', block_size: '2M' },
  ];
  for (const options of cases) {
    for (const size of SIZES) {
      it(`${JSON.stringify(options)} ${size} bytes`, async (ctx) => {
        if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
        const { disk, raw, expected } = sample(size);
        const out = join(dir, `ours${n++}.vhdx`);
        await writeWithHandler(vhdxHandler, disk, out, { options });
        const ours = await readWith(vhdxHandler, out);
        expectPrefixThenZeros(ours.data, expected);
        const check = runPeer('qemu-img', ['check', '-f', 'vhdx', out]);
        expect(check.status, check.out).toBe(0);
        expect(check.out).toMatch(/No errors were found/);
        const info = JSON.parse(runPeerOk('qemu-img', ['info', '--output=json', '-f', 'vhdx', out]));
        expect(info.format).toBe('vhdx');
        expect(info['virtual-size']).toBe(ours.size);
        const cmp = runPeer('qemu-img', ['compare', '-f', 'vhdx', '-F', 'raw', out, raw]);
        expect(cmp.status, cmp.out).toBe(0);
        if (requirePeer('7zz', '7zip')) expect(sevenZip('VHDX', out).equals(ours.data)).toBe(true);
      });
    }
  }
});

describe('we read qemu-img output', () => {
  const targets: Array<{ driver: string; handler: ContainerHandler; opts: string; fixed: boolean }> = [
    { driver: 'vpc', handler: vhdHandler, opts: 'subformat=dynamic', fixed: false },
    { driver: 'vpc', handler: vhdHandler, opts: 'subformat=fixed', fixed: true },
    { driver: 'vpc', handler: vhdHandler, opts: 'subformat=dynamic,force_size=on', fixed: false },
    { driver: 'vpc', handler: vhdHandler, opts: 'subformat=fixed,force_size=on', fixed: true },
    { driver: 'vhdx', handler: vhdxHandler, opts: 'subformat=dynamic,block_size=1M', fixed: false },
    { driver: 'vhdx', handler: vhdxHandler, opts: 'subformat=dynamic,block_size=32M', fixed: false },
    { driver: 'vhdx', handler: vhdxHandler, opts: 'subformat=fixed,block_size=1M', fixed: true },
    { driver: 'vhdx', handler: vhdxHandler, opts: 'subformat=fixed,block_size=32M', fixed: true },
  ];
  for (const t of targets) {
    for (const size of [5_000_000, 9 * MIB + 512]) {
      it(`${t.driver} ${t.opts} ${size} bytes`, async (ctx) => {
        if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
        const { raw, expected } = sample(size);
        const out = join(dir, `qemu${n++}.${t.driver}`);
        runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', t.driver, '-o', t.opts, raw, out]);
        const ours = await readWith(t.handler, out);
        expect(ours.size).toBe(qemuSize(t.driver, out));
        expect(ours.subformat).toBe(t.fixed ? 'fixed' : 'dynamic');
        expectPrefixThenZeros(ours.data, expected);
      });
    }
  }
});

describe('VHDX default block size matches qemu-img create', () => {
  it('8, 16 and 32 MiB by size', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    for (const size of [1024 * MIB, 2048 * MIB, 101 * 1024 * MIB]) {
      const out = join(dir, `create${n++}.vhdx`);
      runPeerOk('qemu-img', ['create', '-q', '-f', 'vhdx', out, String(size)]);
      const r = await openWithHandler(vhdxHandler, out);
      expect(r.details().blockSize).toBe(defaultVhdxBlockSize(size));
      await r.close();
    }
  });
});

describe('VHD CHS sizing matches qemu-img create', () => {
  it('for sizes across the geometry thresholds', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const sizes = [512, 1_000_000, 5_000_000, 32 * MIB + 7, 255 * MIB, 1024 * MIB + 1, 31_000 * MIB, 127 * 1024 * MIB, 200 * 1024 * MIB];
    for (const size of sizes) {
      for (const force of [false, true]) {
        const out = join(dir, `create${n++}.vhd`);
        runPeerOk('qemu-img', ['create', '-q', '-f', 'vpc', ...(force ? ['-o', 'force_size=on'] : []), out, String(size)]);
        expect(vhdSizeFor(size, force).size, `${size} force=${force}`).toBe(qemuSize('vpc', out));
        const r = await openWithHandler(vhdHandler, out);
        expect(r.size).toBe(qemuSize('vpc', out));
        await r.close();
      }
    }
  });
});

describe('mkimg goldens (VHD, fixed VHD, VHDX)', () => {
  const readme = readFileSync(join(MKIMG_GOLDENS, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| (img-\S+\.(vhd|vhdf|vhdx)\.hex) \| `([0-9a-f]{64})` \| `([0-9a-f]{64})` \|/gm)];
  const qemuDefault = new Map(
    [...readme.matchAll(/^\| (img-\S+\.(?:vhd|vhdf|vhdx)\.hex) \|[^|]*\|[^|]*\| (\d+) \| \w+ \| (\d+)/gm)].map((m) => [m[1], Number(m[3])]),
  );

  it('the README lists 18 of them', () => {
    expect(rows.length).toBe(18);
  });
  for (const m of rows) {
    it(m[1], async () => {
      const path = decodeGolden(m[1], dir);
      const handler = m[2] === 'vhdx' ? vhdxHandler : vhdHandler;
      const ours = await readWith(handler, path);
      // For vpc the README's raw hash is the force_size_calc=current_size conversion: footer size.
      expect(createHash('sha256').update(ours.data).digest('hex')).toBe(m[4]);
      expect(ours.subformat).toBe(m[2] === 'vhd' || (m[2] === 'vhdx' && !ours.details.leaveBlocksAllocated) ? 'dynamic' : 'fixed');
      // qemu's default (CHS) size for vpc is what details() reports as chsSize.
      if (m[2] !== 'vhdx') expect(ours.details.chsSize).toBe(qemuDefault.get(m[1]));
      else expect(ours.size).toBe(qemuDefault.get(m[1]));
    });
  }
});

describe('fuzz: mutated mkimg and qemu images', () => {
  const cases: Array<[string, ContainerHandler]> = [
    ['img-1x1-512-gpt.vhd.hex', vhdHandler],
    ['img-63x255-4096-gpt.vhdf.hex', vhdHandler],
    ['img-1x1-512-gpt.vhdx.hex', vhdxHandler],
  ];
  for (const [name, handler] of cases) {
    it(`${name} fails only with FormatError`, async () => {
      const img = readFileSync(decodeGolden(name, dir));
      // Metadata zones: the VHD footer copies, dynamic header and BAT; the VHDX header section
      // and the two regions the region table points at (metadata and BAT, in either order).
      const zones: Array<[number, number]> =
        handler === vhdHandler
          ? [
              [0, 2048],
              [img.length - 512, 512],
            ]
          : [
              [0, 600],
              [64 * 1024, 80],
              [128 * 1024, 80],
              [192 * 1024, 112],
              [256 * 1024, 112],
              [img.readUInt32LE(192 * 1024 + 16 + 16), 64 * 1024 + 64],
              [img.readUInt32LE(192 * 1024 + 48 + 16), 64 * 1024 + 64],
            ];
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ zone: fc.nat(zones.length - 1), where: fc.nat(), value: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
          async (edits) => {
            const buf = Buffer.from(img);
            for (const e of edits) {
              const [at, len] = zones[e.zone];
              buf[Math.min(buf.length - 1, at + (e.where % len))] = e.value;
            }
            try {
              const r = await handler.open(memoryDiskReader(buf), {
                path: name,
                openSibling: async () => {
                  throw new Error('none');
                },
              });
              if (r.size <= 64 * MIB) await readAll(r);
              for await (const x of r.allocatedRanges()) void x;
            } catch (e) {
              if (!(e instanceof FormatError) && !(e instanceof DiskmintError)) throw e;
            }
          },
        ),
        { numRuns: 150 },
      );
    });
  }
});
