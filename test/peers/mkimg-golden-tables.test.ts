/**
 * FreeBSD mkimg goldens (fixtures/mkimg, see its README): our readers see what
 * the README table lists, and our writers reproduce mkimg's MBR sectors and BSD labels byte for
 * byte.
 *
 * Revision note: the goldens' bsd.c (2014-era) zeroes only struct disklabel (148 + 8 * 16 =
 * 276 bytes) at byte 512 before filling it, so boot code shows again from byte 0x314; the
 * current bsd.c zeroes the whole label sector. encodeBsdLabel follows the goldens. For the
 * 63x255 vhdf golden, mkimg computed d_ncylinders (1) from the partitions before the vhdf format
 * grew the image to 16384 sectors; we pass `ncylinders: 1` (ceil(16384 / 16065) would be 2).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryDiskReader, sliceDiskReader } from '../../src/model/disk-reader.js';
import { decodeMbrSector, walkEbrChain, encodeMbrSector } from '../../formats/schemes/mbr.js';
import { decodeBsdLabel, encodeBsdLabel } from '../../formats/schemes/bsd.js';
import { probeMbr } from '../../src/schemes/mbr/probe.js';
import { probeBsd } from '../../src/schemes/bsd/probe.js';
import type { Geometry } from '../../formats/schemes/chs.js';
import { decodeGolden } from '../helpers/golden.js';

let dir = '';
const images = new Map<string, Uint8Array>();

function golden(name: string): Uint8Array {
  let img = images.get(name);
  if (!img) {
    const out = join(dir, name);
    decodeGolden(`${name}.hex`, dir);
    img = new Uint8Array(readFileSync(out));
    images.set(name, img);
  }
  return img;
}

/** `jot -b B n`: n lines of "B\n". */
function jotB(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 2) {
    out[i] = 0x42;
    out[i + 1] = 0x0a;
  }
  return out;
}

const ONE_BY_ONE: Geometry = { heads: 1, sectorsPerTrack: 1 };
const CHS_63x255: Geometry = { heads: 255, sectorsPerTrack: 63 };
const BSD_PARTS = [
  { letter: 'a', offset: 16, size: 8192, fstype: 7 },
  { letter: 'b', offset: 8208, size: 256, fstype: 1 },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'diskmint-mkimg-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function bsdSummary(parts: { label?: string; typeName: string; firstLba: number; lastLba: number }[]) {
  return parts.map((p) => `${p.label} ${p.typeName} ${p.firstLba}+${p.lastLba - p.firstLba + 1}`);
}

async function expectMbrWithNestedLabel(name: string, start: number, sectors: number, active: boolean, signature: string) {
  const img = golden(name);
  const disk = memoryDiskReader(img);
  const r = await probeMbr(disk);
  expect(r).not.toBeNull();
  expect(r!.findings.filter((f) => f.severity === 'error')).toEqual([]);
  expect(r!.table.diskSignature).toBe(signature);
  expect(r!.table.partitions).toHaveLength(1);
  expect(r!.table.partitions[0]).toMatchObject({ index: 1, typeName: 'freebsd', rawType: '0xa5', firstLba: start, lastLba: start + sectors - 1, active });
  const nested = await probeBsd(sliceDiskReader(disk, start * 512, sectors * 512));
  expect(nested).not.toBeNull();
  expect(nested!.findings).toEqual([]);
  expect(bsdSummary(nested!.table.partitions)).toEqual(['a 4.2BSD 16+8192', 'b swap 8208+256', `c unused 0+${sectors}`]);
}

describe('mkimg goldens: readers', () => {
  it('img-1x1-512-mbr.raw: slice 1 type 0xa5 active at 1+8464 holding a BSD label', async () => {
    const mbr = decodeMbrSector(golden('img-1x1-512-mbr.raw').subarray(0, 512));
    expect(mbr.hasBootSignature).toBe(true);
    expect(mbr.entries[0]).toEqual({
      active: true,
      status: 0x80,
      type: 0xa5,
      startLba: 1,
      sectors: 8464,
      chsStart: [0xff, 0xff, 0xff],
      chsEnd: [0xff, 0xff, 0xff],
    });
    expect(mbr.entries.slice(1)).toEqual([null, null, null]);
    await expectMbrWithNestedLabel('img-1x1-512-mbr.raw', 1, 8464, true, '0x0a420a42');
  });

  it('img-63x255-4096-mbr.raw: slice 1 at 63+16065', async () => {
    await expectMbrWithNestedLabel('img-63x255-4096-mbr.raw', 63, 16065, true, '0x0a420a42');
  });

  it('img-1x1-512-ebr.raw: one EBR entry 0xa5 at 1+8464, not active, also walkable as an EBR chain', async () => {
    await expectMbrWithNestedLabel('img-1x1-512-ebr.raw', 1, 8464, false, '0x00000000');
    const img = golden('img-1x1-512-ebr.raw');
    const chain = walkEbrChain((lba) => img.subarray(lba * 512, lba * 512 + 512), 0);
    expect(chain).toHaveLength(1);
    expect(chain[0]).toMatchObject({ ebrLba: 0, entry: { type: 0xa5, startLba: 1, sectors: 8464 } });
  });

  it('img-1x1-512-bsd.vhdf: the raw BSD image before the 512-byte footer reads as the README says', async () => {
    const vhdf = golden('img-1x1-512-bsd.vhdf');
    const raw = vhdf.subarray(0, vhdf.length - 512);
    const label = decodeBsdLabel(raw.subarray(512));
    expect(label).toMatchObject({
      secsize: 512,
      nsectors: 1,
      ntracks: 1,
      ncylinders: 10240,
      secpercyl: 1,
      secperunit: 10240,
      npartitions: 8,
      bbsize: 8192,
      sbsize: 0,
      rpm: 3600,
      checksumValid: true,
    });
    const r = await probeBsd(memoryDiskReader(raw));
    expect(r!.findings).toEqual([]);
    expect(bsdSummary(r!.table.partitions)).toEqual(['a 4.2BSD 16+8192', 'b swap 8208+256', 'c unused 0+10240']);
  });

  it('img-63x255-4096-bsd.vhdf: d_secperunit 16384 with c 0+16384', async () => {
    const vhdf = golden('img-63x255-4096-bsd.vhdf');
    const r = await probeBsd(memoryDiskReader(vhdf.subarray(0, vhdf.length - 512)));
    expect(r!.findings).toEqual([]);
    expect(bsdSummary(r!.table.partitions)).toEqual(['a 4.2BSD 16+8192', 'b swap 8208+256', 'c unused 0+16384']);
  });
});

describe('mkimg goldens: writers reproduce the bytes', () => {
  it('encodeBsdLabel = img-1x1-512-bsd.vhdf boot area (8 KiB)', () => {
    const vhdf = golden('img-1x1-512-bsd.vhdf');
    const ours = encodeBsdLabel({ sectorSize: 512, totalSectors: 10240, geometry: ONE_BY_ONE, bootcode: jotB(8192), partitions: BSD_PARTS });
    expect(Buffer.from(ours).equals(Buffer.from(vhdf.subarray(0, 8192)))).toBe(true);
  });

  it("encodeBsdLabel = img-63x255-4096-bsd.vhdf boot area, with mkimg's pre-resize d_ncylinders", () => {
    const vhdf = golden('img-63x255-4096-bsd.vhdf');
    const spec = { sectorSize: 512, totalSectors: 16384, geometry: CHS_63x255, bootcode: jotB(8192), partitions: BSD_PARTS };
    const ours = encodeBsdLabel({ ...spec, ncylinders: 1 });
    expect(Buffer.from(ours).equals(Buffer.from(vhdf.subarray(0, 8192)))).toBe(true);
    // Without the override only d_ncylinders (0x234) and the checksum (0x288) differ.
    const plain = encodeBsdLabel(spec);
    const diff = [...plain.keys()].filter((i) => plain[i] !== vhdf[i]);
    expect(diff).toContain(0x234);
    expect(diff.every((i) => i === 0x234 || i === 0x288 || i === 0x289)).toBe(true);
  });

  it('encodeBsdLabel = the BSD label nested in both mbr raw goldens', () => {
    for (const [name, start, sectors, geometry] of [
      ['img-1x1-512-mbr.raw', 1, 8464, ONE_BY_ONE],
      ['img-63x255-4096-mbr.raw', 63, 16065, CHS_63x255],
    ] as const) {
      const img = golden(name);
      const ours = encodeBsdLabel({ sectorSize: 512, totalSectors: sectors, geometry, bootcode: jotB(8192), partitions: BSD_PARTS });
      expect(Buffer.from(ours).equals(Buffer.from(img.subarray(start * 512, start * 512 + 8192))), name).toBe(true);
    }
  });

  it('encodeMbrSector = sector 0 of the mbr goldens (512-byte "B\\n" boot code, active slice)', () => {
    for (const [name, start, sectors, geometry] of [
      ['img-1x1-512-mbr.raw', 1, 8464, ONE_BY_ONE],
      ['img-63x255-4096-mbr.raw', 63, 16065, CHS_63x255],
    ] as const) {
      const ours = encodeMbrSector({ bootcode: jotB(512), entries: [{ type: 0xa5, startLba: start, sectors, active: true }], geometry });
      expect(Buffer.from(ours).equals(Buffer.from(golden(name).subarray(0, 512))), name).toBe(true);
    }
  });

  it('encodeMbrSector = sector 0 of the ebr goldens (no boot code, not active)', () => {
    const ebr1 = encodeMbrSector({ entries: [{ type: 0xa5, startLba: 1, sectors: 8464 }], geometry: ONE_BY_ONE });
    expect(Buffer.from(ebr1).equals(Buffer.from(golden('img-1x1-512-ebr.raw').subarray(0, 512)))).toBe(true);
    const ebr63 = encodeMbrSector({ entries: [{ type: 0xa5, startLba: 63, sectors: 16065 }], geometry: CHS_63x255 });
    expect(Buffer.from(ebr63).equals(Buffer.from(golden('img-63x255-4096-ebr.vhdf').subarray(0, 512)))).toBe(true);
  });
});
