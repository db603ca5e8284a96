/**
 * Peer tools judge our MBR/EBR and BSD label bytes, and we read theirs:
 * util-linux sfdisk and partx (libblkid), GNU parted.
 *
 * parted's "bsd" label is the Alpha layout (libparted `labels/bsd.c`: sector 0, byte 64), so it
 * does not recognise the FreeBSD layout (sector 1) that mkimg and encodeBsdLabel produce; the
 * tests show that for mkimg's golden and ours alike, and that parted reads the same label
 * structure at byte 64. libblkid (partx) reads the FreeBSD layout, whole-disk and nested.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { decodeGolden } from '../helpers/golden.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { openRawFile, sliceDiskReader } from '../../src/model/disk-reader.js';
import { encodeMbrSector, encodeMbrTables, type MbrTablesSpec } from '../../formats/schemes/mbr.js';
import { encodeBsdLabel } from '../../formats/schemes/bsd.js';
import { probeMbr } from '../../src/schemes/mbr/probe.js';
import { probeBsd } from '../../src/schemes/bsd/probe.js';
import type { TableReadResult } from '../../src/schemes/types.js';

const MiB = 2048; // 512-byte sectors
const DISK_SECTORS = 64 * MiB;
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'diskmint-mbr-peers-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A sparse file of `sectors` with the given sectors written. */
function sparseImage(name: string, sectors: number, writes: Array<{ lba: number; bytes: Uint8Array }>): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, sectors * 512);
    for (const w of writes) writeSync(fd, w.bytes, 0, w.bytes.length, w.lba * 512);
  } finally {
    closeSync(fd);
  }
  return path;
}

async function probe(path: string, fn: typeof probeMbr): Promise<TableReadResult | null> {
  const disk = await openRawFile(path);
  try {
    return await fn(disk);
  } finally {
    await disk.close();
  }
}

interface SfdiskPart {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
}

function sfdiskJson(path: string): { label: string; id: string; partitions: SfdiskPart[] } {
  return JSON.parse(runPeerOk('sfdisk', ['--json', path])).partitiontable;
}

/** [number, start, size, type byte, bootable] as sfdisk lists them. */
function sfdiskRows(path: string): Array<[number, number, number, number, boolean]> {
  return sfdiskJson(path).partitions.map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p.start, p.size, parseInt(p.type, 16), !!p.bootable]);
}

/** `parted -m unit s print` partition lines: [number, start, end, size, flags]. */
function partedRows(path: string): { label: string; rows: Array<[number, number, number, number, string]> } {
  const out = runPeer('parted', ['-m', '-s', path, 'unit', 's', 'print']).out;
  const lines = out.split('\n').filter((l) => l.endsWith(';'));
  const diskLine = lines.find((l) => l.startsWith('/')) ?? '';
  const rows = lines
    .filter((l) => /^\d+:/.test(l))
    .map((l) => {
      const f = l.slice(0, -1).split(':');
      return [Number(f[0]), parseInt(f[1]), parseInt(f[2]), parseInt(f[3]), f[6] ?? ''] as [number, number, number, number, string];
    });
  return { label: diskLine.split(':')[5] ?? '', rows };
}

/** `partx` (libblkid) rows: [number, start, sectors, type, scheme]. */
function partxRows(path: string): string[] {
  return runPeerOk('partx', ['-g', '-r', '-o', 'NR,START,SECTORS,TYPE,SCHEME', path]).trim().split('\n');
}

function ourRows(r: TableReadResult): Array<[number, number, number, number, boolean]> {
  return r.table.partitions.map((p) => [p.index, p.firstLba, p.lastLba - p.firstLba + 1, parseInt(p.rawType, 16), !!p.active]);
}

const OUR_LAYOUT: MbrTablesSpec = {
  diskSignature: 0xdeadbeef,
  primaries: [
    { type: 0x0c, startLba: 1 * MiB, sectors: 4 * MiB, active: true },
    { type: 0x83, startLba: 5 * MiB, sectors: 4 * MiB },
    { type: 0xa5, startLba: 9 * MiB, sectors: 4 * MiB },
  ],
  // each EBR 1 MiB before its logical, everything 1 MiB aligned
  logicals: [
    { type: 0x83, ebrLba: 13 * MiB, startLba: 14 * MiB, sectors: 4 * MiB },
    { type: 0x82, ebrLba: 18 * MiB, startLba: 19 * MiB, sectors: 2 * MiB },
    { type: 0x07, ebrLba: 21 * MiB, startLba: 22 * MiB, sectors: 10 * MiB },
  ],
};
const EXPECTED_ROWS: Array<[number, number, number, number, boolean]> = [
  [1, 1 * MiB, 4 * MiB, 0x0c, true],
  [2, 5 * MiB, 4 * MiB, 0x83, false],
  [3, 9 * MiB, 4 * MiB, 0xa5, false],
  [4, 13 * MiB, 19 * MiB, 0x05, false],
  [5, 14 * MiB, 4 * MiB, 0x83, false],
  [6, 19 * MiB, 2 * MiB, 0x82, false],
  [7, 22 * MiB, 10 * MiB, 0x07, false],
];

describe('MBR with logical partitions against sfdisk and parted', () => {
  it('sfdisk and parted list exactly the partitions we wrote', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk') || !requirePeer('parted', 'parted')) return ctx.skip();
    const path = sparseImage('ours-mbr.img', DISK_SECTORS, encodeMbrTables(OUR_LAYOUT));
    const sf = sfdiskJson(path);
    expect(sf.label).toBe('dos');
    expect(sf.id).toBe('0xdeadbeef');
    expect(sfdiskRows(path)).toEqual(EXPECTED_ROWS);
    const verify = runPeer('sfdisk', ['-V', path]).out;
    expect(verify).toContain('No errors detected');
    expect(verify.split('\n').filter((l) => /error/i.test(l) && !/No errors detected/.test(l))).toEqual([]);
    const parted = partedRows(path);
    expect(parted.label).toBe('msdos');
    expect(parted.rows.map(([n, s, e, size]) => [n, s, e, size])).toEqual(EXPECTED_ROWS.map(([n, s, size]) => [n, s, s + size - 1, size]));
    expect(parted.rows.map(([n, , , , flags]) => [n, flags.split(', ').includes('boot')])).toEqual(EXPECTED_ROWS.map(([n, , , , b]) => [n, b]));
    // parted shows type bytes only as flags: 0x0c -> lba, 0x82 -> swap
    expect(parted.rows.find(([n]) => n === 1)![4].split(', ')).toContain('lba');
    expect(parted.rows.find(([n]) => n === 6)![4].split(', ')).toContain('swap');
    const ours = await probe(path, probeMbr);
    expect(ours!.findings).toEqual([]);
    expect(ourRows(ours!)).toEqual(EXPECTED_ROWS);
  });

  it('an sfdisk-made logical chain reads as sfdisk --json describes it', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const path = sparseImage('sfdisk.img', DISK_SECTORS, []);
    const script = [
      'label: dos',
      'label-id: 0x11223344',
      'start=2048, size=4096, type=c, bootable',
      'start=6144, size=4096, type=a5',
      'start=10240, type=5',
      'start=12288, size=4096, type=83',
      'start=18432, size=2048, type=82',
      'start=22528, size=8192, type=7',
      '',
    ].join('\n');
    runPeerOk('sfdisk', ['-q', path], script);
    const r = await probe(path, probeMbr);
    expect(r!.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(r!.table.diskSignature).toBe('0x11223344');
    expect(ourRows(r!)).toEqual(sfdiskRows(path));
    expect(r!.table.partitions.filter((p) => p.logical).map((p) => p.index)).toEqual([5, 6, 7]);
  });

  it('a parted-made logical chain reads as sfdisk --json describes it', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk') || !requirePeer('parted', 'parted')) return ctx.skip();
    const path = sparseImage('parted.img', DISK_SECTORS, []);
    // prettier-ignore
    runPeer('parted', ['-s', path, 'mklabel', 'msdos',
      'mkpart', 'primary', 'fat32', '1MiB', '5MiB',
      'mkpart', 'primary', 'linux-swap', '5MiB', '9MiB',
      'mkpart', 'extended', '9MiB', '60MiB',
      'mkpart', 'logical', 'ext4', '10MiB', '20MiB',
      'mkpart', 'logical', '21MiB', '30MiB',
      'mkpart', 'logical', '31MiB', '59MiB',
      'set', '1', 'boot', 'on']);
    const expected = sfdiskRows(path);
    expect(expected.length).toBe(6);
    const r = await probe(path, probeMbr);
    expect(r!.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(ourRows(r!)).toEqual(expected);
    expect(r!.table.partitions.find((p) => p.index === 3)!.typeName).toBe('extended');
  });
});

const BSD_PARTS = [
  { letter: 'a', offset: 16, size: 8192, fstype: 7 },
  { letter: 'b', offset: 8208, size: 2048, fstype: 1 },
  { letter: 'd', offset: 10256, size: 4096, fstype: 27 },
];

describe('BSD labels against parted and partx', () => {
  it('partx (libblkid) reads our whole-disk FreeBSD label', async (ctx) => {
    if (!requirePeer('partx', 'util-linux')) return ctx.skip();
    const area = encodeBsdLabel({ sectorSize: 512, totalSectors: 16 * MiB, partitions: BSD_PARTS });
    const path = sparseImage('bsd-whole.img', 16 * MiB, [{ lba: 0, bytes: area }]);
    // libblkid numbers the used slots consecutively (skipping the unused 'c'); we number by slot (d = 4)
    expect(partxRows(path)).toEqual(['1 16 8192 0x7 bsd', '2 8208 2048 0x1 bsd', '3 10256 4096 0x1b bsd']);
    const r = await probe(path, probeBsd);
    expect(r!.findings).toEqual([]);
    expect(r!.table.partitions.map((p) => `${p.index} ${p.firstLba} ${p.lastLba - p.firstLba + 1} ${p.typeName}`)).toEqual([
      '1 16 8192 4.2BSD',
      '2 8208 2048 swap',
      '3 0 32768 unused',
      '4 10256 4096 ZFS',
    ]);
  });

  it('parted does not know the FreeBSD layout (mkimg golden and ours alike) but reads the label at byte 64', async (ctx) => {
    if (!requirePeer('parted', 'parted')) return ctx.skip();
    const golden = join(dir, 'img-1x1-512-bsd.vhdf');
    expect(decodeGolden('img-1x1-512-bsd.vhdf.hex', dir)).toBe(golden);
    const area = encodeBsdLabel({ sectorSize: 512, totalSectors: 16 * MiB, partitions: BSD_PARTS });
    const ours = sparseImage('bsd-freebsd-layout.img', 16 * MiB, [{ lba: 0, bytes: area }]);
    for (const path of [golden, ours]) {
      const out = runPeer('parted', ['-m', '-s', path, 'unit', 's', 'print']).out;
      expect(out).toMatch(/unrecognised disk label/);
    }
    // the same label structure at sector 0, byte 64 (parted's BSD_LABEL_OFFSET)
    const alpha = new Uint8Array(512);
    alpha.set(area.subarray(512, 512 + 276), 64);
    const path = sparseImage('bsd-alpha.img', 16 * MiB, [{ lba: 0, bytes: alpha }]);
    const parted = partedRows(path);
    expect(parted.label).toBe('bsd');
    // parted skips slots with p_fstype 0 ('c') and numbers partitions by slot
    expect(parted.rows.map(([n, s, e, size]) => [n, s, e, size])).toEqual([
      [1, 16, 8207, 8192],
      [2, 8208, 10255, 2048],
      [4, 10256, 14351, 4096],
    ]);
    const r = await probe(path, probeBsd);
    expect(r!.findings.map((f) => f.code)).toEqual(['bsd.alpha-location']);
    expect(r!.table.partitions.filter((p) => p.rawType !== '0').map((p) => [p.index, p.firstLba, p.lastLba])).toEqual(
      parted.rows.map(([n, s, e]) => [n, s, e]),
    );
  });

  it('a parted-made bsd label reads as parted prints it', async (ctx) => {
    if (!requirePeer('parted', 'parted')) return ctx.skip();
    const path = sparseImage('parted-bsd.img', 16 * MiB, []);
    runPeer('parted', ['-s', path, 'mklabel', 'bsd', 'mkpart', 'ext2', '2048s', '10239s', 'mkpart', 'linux-swap', '10240s', '12287s']);
    const parted = partedRows(path);
    expect(parted.label).toBe('bsd');
    const r = await probe(path, probeBsd);
    // parted 3.5 leaves d_checksum as computed for its empty label (mklabel), so after mkpart it
    // no longer matches dkcksum(); FreeBSD would reject the label, and we say so.
    expect(r!.findings.map((f) => [f.code, f.severity])).toEqual([
      ['bsd.alpha-location', 'info'],
      ['bsd.checksum', 'error'],
    ]);
    expect(r!.table.partitions.map((p) => [p.index, p.firstLba, p.lastLba, p.lastLba - p.firstLba + 1])).toEqual(
      parted.rows.map(([n, s, e, size]) => [n, s, e, size]),
    );
    // parted writes MSDOS (8) for non-swap file systems and swap (1)
    expect(r!.table.partitions.map((p) => p.typeName)).toEqual(['MSDOS', 'swap']);
  });

  it('an MBR slice holding our label: partx lists the nested FreeBSD partitions where we do', async (ctx) => {
    if (!requirePeer('partx', 'util-linux') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const sliceStart = MiB;
    const sliceSectors = 15 * MiB;
    const mbr = encodeMbrSector({ entries: [{ type: 0xa5, startLba: sliceStart, sectors: sliceSectors, active: true }] });
    const label = encodeBsdLabel({ sectorSize: 512, totalSectors: sliceSectors, partitions: BSD_PARTS });
    const path = sparseImage('mbr-bsd.img', 16 * MiB, [
      { lba: 0, bytes: mbr },
      { lba: sliceStart, bytes: label },
    ]);
    expect(sfdiskRows(path)).toEqual([[1, sliceStart, sliceSectors, 0xa5, true]]);
    const rows = partxRows(path);
    const disk = await openRawFile(path);
    try {
      const outer = await probeMbr(disk);
      expect(outer!.findings).toEqual([]);
      const nested = await probeBsd(sliceDiskReader(disk, sliceStart * 512, sliceSectors * 512));
      expect(nested!.findings).toEqual([]);
      const ours = [
        `1 ${sliceStart} ${sliceSectors} 0xa5 dos`,
        ...nested!.table.partitions
          .filter((p) => p.rawType !== '0')
          .map((p, i) => `${5 + i} ${sliceStart + p.firstLba} ${p.lastLba - p.firstLba + 1} 0x${Number(p.rawType).toString(16)} freebsd`),
      ];
      expect(rows).toEqual(ours);
    } finally {
      await disk.close();
    }
    expect(readFileSync(path).length).toBe(16 * MiB * 512);
  });
});
