/**
 * Pipe output (`-o -`) of every container format, judged by qemu-img: tables come first, after a
 * pre-scan, and only blocks holding non-zero data are stored, as in a file. So each piped image
 * passes `qemu-img check` (vpc has none), compares identical to the raw disk and to the same
 * format written to a file, allocates only the blocks that hold data (`qemu-img map`; VHDX, which
 * qemu maps as all data, by its BAT), and is no larger than what `qemu-img convert` writes.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../src/model/extents.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import { vmdkHandler } from '../../src/containers/vmdk/handler.js';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import type { ContainerHandler } from '../../src/containers/types.js';
import { openWithHandler, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

const MiB = 1 << 20;
let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-pipe-peers-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  handler: ContainerHandler;
  /** qemu-img's driver name and options for the same image. */
  driver: string;
  options?: Record<string, string>;
  /** The format's block (cluster, grain, BAT block) for this 16 MiB disk. */
  block: number;
  /** qemu-img check knows the format. */
  check: boolean;
}

const CASES: Case[] = [
  { name: 'qcow2', handler: qcow2Handler, driver: 'qcow2', block: 64 * 1024, check: true },
  { name: 'vmdk monolithicSparse', handler: vmdkHandler, driver: 'vmdk', block: 64 * 1024, check: true },
  { name: 'vmdk streamOptimized', handler: vmdkHandler, driver: 'vmdk', options: { subformat: 'streamOptimized' }, block: 64 * 1024, check: true },
  { name: 'vhd', handler: vhdHandler, driver: 'vpc', block: 2 * MiB, check: false }, // qemu-img check has no vpc support
  { name: 'vhdx', handler: vhdxHandler, driver: 'vhdx', block: 8 * MiB, check: true },
];

/** A disk whose extent map covers every byte (zeros placed explicitly), with `pieces` of data. */
function zeroFilledDisk(name: string, size: number, pieces: Array<[at: number, length: number]>): { disk: VirtualDisk; rawPath: string } {
  const raw = new Uint8Array(size);
  for (const [k, [at, length]] of pieces.entries()) for (let i = 0; i < length; i++) raw[at + i] = (i * 131 + k * 17) & 0xff || 7;
  const rawPath = join(dir, `${name}.raw`);
  writeFileSync(rawPath, raw);
  return { disk: new VirtualDisk(size).placeBytes(0, raw), rawPath };
}

/** Bytes qemu-img map reports as data. */
function mappedData(path: string, driver: string): Array<{ start: number; length: number }> {
  const map = JSON.parse(runPeerOk('qemu-img', ['map', '--output=json', '-f', driver, path])) as Array<{ start: number; length: number; data: boolean }>;
  return map.filter((r) => r.data).map(({ start, length }) => ({ start, length }));
}

describe('pipe output of every format, judged by qemu-img', () => {
  for (const c of CASES) {
    const slug = c.name.replace(/\W+/g, '-');

    it(`${c.name}: one data block in the middle of explicit zeros allocates one block, no more than qemu-img convert writes`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const at = 9 * MiB + 100; // inside one block of every format
      const { disk, rawPath } = zeroFilledDisk(`one-${slug}`, 16 * MiB, [[at, 1000]]);
      const path = join(dir, `one-${slug}.img`);
      writeFileSync(path, (await writeWithHandler(c.handler, disk, path, { options: c.options, pipe: true }))!);
      expect(runPeer('qemu-img', ['compare', '-f', c.driver, '-F', 'raw', path, rawPath]).out).toContain('Images are identical');
      if (c.check) expect(runPeer('qemu-img', ['check', '-f', c.driver, path]).status).toBe(0);
      const blockStart = Math.floor(at / c.block) * c.block;
      if (c.driver === 'vhdx') {
        // qemu maps a VHDX as data throughout: its BAT says which blocks are present.
        const r = await openWithHandler(c.handler, path);
        expect(r.details().presentBlocks).toBe(1);
        const ranges = [];
        for await (const range of r.allocatedRanges()) ranges.push(range);
        expect(ranges).toEqual([{ offset: blockStart, length: c.block }]);
        await r.close();
      } else {
        expect(mappedData(path, c.driver)).toEqual([{ start: blockStart, length: c.block }]);
      }
      const theirs = join(dir, `one-${slug}-qemu.img`);
      const qemuOptions = c.options
        ? [
            '-o',
            Object.entries(c.options)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          ]
        : [];
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', c.driver, ...qemuOptions, rawPath, theirs]);
      expect(statSync(path).size).toBeLessThanOrEqual(statSync(theirs).size);
    });

    it(`${c.name}: data at the start, across blocks and at the end holds the same disk piped as in a file`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const size = 16 * MiB;
      const { disk, rawPath } = zeroFilledDisk(`many-${slug}`, size, [
        [0, 4096],
        [2 * MiB - 1000, 3000],
        [8 * MiB - 70_000, 200_000],
        [size - 700, 700],
      ]);
      const piped = join(dir, `many-${slug}-piped.img`);
      const file = join(dir, `many-${slug}-file.img`);
      writeFileSync(piped, (await writeWithHandler(c.handler, disk, piped, { options: c.options, pipe: true }))!);
      await writeWithHandler(c.handler, disk, file, { options: c.options });
      for (const path of [piped, file]) {
        expect(runPeer('qemu-img', ['compare', '-f', c.driver, '-F', 'raw', path, rawPath]).out).toContain('Images are identical');
        if (c.check) expect(runPeer('qemu-img', ['check', '-f', c.driver, path]).status).toBe(0);
      }
      expect(runPeer('qemu-img', ['compare', '-f', c.driver, '-F', c.driver, piped, file]).out).toContain('Images are identical');
      // The same blocks stored either way: the same size (the same bytes, but for qcow2's table
      // order and, in VMDK, the name the embedded descriptor gives the extent).
      expect(statSync(piped).size).toBe(statSync(file).size);
      if (c.driver !== 'qcow2' && c.driver !== 'vmdk') expect(readFileSync(piped).equals(readFileSync(file))).toBe(true);
    });
  }
});
