/**
 * Peer tools judge our GPT bytes, and we read theirs.
 * - sgdisk (gdisk 1.0.9) takes the logical sector size from the device; for a plain file it
 *   always assumes 512 bytes, so it checks only 512-byte-sector images.
 * - sfdisk 2.38 has no sector-size option either; fdisk 2.38 has `-b 4096`, which we use for
 *   4096-byte-sector images (its `v` command verifies, `-l -o ...` lists).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeGptTables, type GptTablesSpec } from '../../formats/schemes/gpt.js';
import { GPT_TYPES } from '../../formats/schemes/gpt-types.js';
import { encodeGptAttributes } from '../../formats/schemes/gpt-attributes.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { probeGpt } from '../../src/schemes/gpt/probe.js';
import type { TableReadResult } from '../../src/schemes/types.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diskmint-gpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Sparse image: protective MBR written by hand (0x55AA, one 0xEE entry from LBA 1 over the disk) plus our tables. */
async function writeOurImage(path: string, spec: GptTablesSpec): Promise<void> {
  const ss = spec.sectorSize;
  const mbr = new Uint8Array(512);
  const dv = new DataView(mbr.buffer);
  mbr.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], 446); // status, CHS 0/0/2, type 0xEE, CHS max
  dv.setUint32(446 + 8, 1, true);
  dv.setUint32(446 + 12, Math.min(spec.totalSectors - 1, 0xffffffff), true);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const t = encodeGptTables(spec);
  const fh = await open(path, 'w');
  try {
    await fh.truncate(spec.totalSectors * ss);
    await fh.write(mbr, 0, mbr.length, 0);
    await fh.write(t.primary.bytes, 0, t.primary.bytes.length, t.primary.lba * ss);
    await fh.write(t.backup.bytes, 0, t.backup.bytes.length, t.backup.lba * ss);
  } finally {
    await fh.close();
  }
}

async function createSparse(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(bytes);
  await fh.close();
}

async function probeFile(path: string): Promise<TableReadResult> {
  const disk = await openRawFile(path);
  try {
    const r = await probeGpt(disk);
    expect(r).not.toBeNull();
    return r!;
  } finally {
    await disk.close();
  }
}

/** How util-linux (libfdisk) prints attributes: three UEFI names, then `GUID:` bits 48-63. */
function utilLinuxAttrs(bits: bigint): string {
  const words: string[] = [];
  if (bits & 1n) words.push('RequiredPartition');
  if (bits & 2n) words.push('NoBlockIOProtocol');
  if (bits & 4n) words.push('LegacyBIOSBootable');
  const guidBits: number[] = [];
  for (let b = 48; b < 64; b++) if ((bits >> BigInt(b)) & 1n) guidBits.push(b);
  if (guidBits.length) words.push(`GUID:${guidBits.join(',')}`);
  return words.join(' ');
}

interface PeerPartition {
  index: number;
  start: number;
  size: number;
  type: string;
  uuid: string;
  name: string;
  attrs: string;
}

function sfdiskJson(path: string): { id: string; sectorsize: number; partitions: PeerPartition[] } {
  const { out } = runPeer('sfdisk', ['--json', path]);
  const table = JSON.parse(out.slice(out.indexOf('{'))).partitiontable;
  return {
    id: table.id.toLowerCase(),
    sectorsize: table.sectorsize,
    partitions: (table.partitions ?? []).map((p: Record<string, string | number>) => ({
      index: Number(String(p.node).slice(path.length)),
      start: p.start as number,
      size: p.size as number,
      type: String(p.type).toLowerCase(),
      uuid: String(p.uuid).toLowerCase(),
      name: (p.name as string | undefined) ?? '',
      attrs: (p.attrs as string | undefined) ?? '',
    })),
  };
}

/** Under LC_ALL=C util-linux prints non-ASCII name bytes as `\xNN` escapes of the UTF-8 encoding. */
function unescapeC(text: string): string {
  return text.replace(/(?:\\x[0-9a-f]{2})+/gi, (run) => Buffer.from(run.replace(/\\x/gi, ''), 'hex').toString('utf8'));
}

/** `fdisk -b SS -l -o ...`: fixed columns first, then Name and Attrs cut at their header offsets. */
function fdiskList(path: string, sectorSize: number): PeerPartition[] {
  const { out } = runPeer('fdisk', ['-b', String(sectorSize), '-l', '-o', 'Device,Start,End,Type-UUID,UUID,Name,Attrs', path]);
  const lines = out.split('\n');
  const head = lines.findIndex((l) => l.startsWith('Device'));
  expect(head).toBeGreaterThan(0);
  const nameAt = lines[head].indexOf('Name');
  const attrsAt = lines[head].indexOf('Attrs');
  return lines
    .slice(head + 1)
    .filter((l) => l.startsWith(path))
    .map((l) => {
      const [device, start, end, type, uuid] = l.split(/\s+/);
      return {
        index: Number(device.slice(path.length)),
        start: Number(start),
        size: Number(end) - Number(start) + 1,
        type: type.toLowerCase(),
        uuid: uuid.toLowerCase(),
        name: unescapeC(l.slice(nameAt, attrsAt).trim()),
        attrs: l.slice(attrsAt).trim(),
      };
    });
}

function ourView(r: TableReadResult): PeerPartition[] {
  return r.table.partitions.map((p) => ({
    index: p.index,
    start: p.firstLba,
    size: p.lastLba - p.firstLba + 1,
    type: p.rawType,
    uuid: p.guid!,
    name: p.label ?? '',
    attrs: utilLinuxAttrs(BigInt(p.attributesRaw!)),
  }));
}

function specView(spec: GptTablesSpec): PeerPartition[] {
  return spec.partitions.map((p, i) => ({
    index: p.index ?? i + 1,
    start: p.firstLba,
    size: p.lastLba - p.firstLba + 1,
    type: p.typeGuid,
    uuid: p.guid,
    name: p.name,
    attrs: utilLinuxAttrs(p.attributes),
  }));
}

function ourSpec(sectorSize: number): GptTablesSpec {
  const mib = (1 << 20) / sectorSize;
  return {
    sectorSize,
    totalSectors: 64 * mib,
    diskGuid: '3f1c5a7e-9b2d-4e6f-8a0b-1c2d3e4f5a6b',
    partitions: [
      {
        typeGuid: GPT_TYPES.efi,
        guid: 'c0ffee00-1111-4222-8333-444455556601',
        firstLba: mib,
        lastLba: 3 * mib - 1,
        attributes: encodeGptAttributes(['required']),
        name: 'efiboot0',
      },
      {
        typeGuid: GPT_TYPES['freebsd-boot'],
        guid: 'c0ffee00-1111-4222-8333-444455556602',
        firstLba: 3 * mib,
        lastLba: 3 * mib + 1023 * (512 / sectorSize) + 512 / sectorSize - 1,
        attributes: encodeGptAttributes(['legacy-bios-bootable', 'no-block-io']),
        name: 'gptboot0',
      },
      {
        typeGuid: GPT_TYPES['freebsd-ufs'],
        guid: 'c0ffee00-1111-4222-8333-444455556603',
        firstLba: 4 * mib,
        lastLba: 20 * mib - 1,
        attributes: encodeGptAttributes(['bootme', 'bootonce']),
        name: 'rootfs1-é',
      },
      {
        index: 7,
        typeGuid: GPT_TYPES['freebsd-ufs'],
        guid: 'c0ffee00-1111-4222-8333-444455556607',
        firstLba: 20 * mib,
        lastLba: 36 * mib - 1,
        attributes: encodeGptAttributes(['bootfailed', 'bit48', 'bit63']),
        name: 'rootfs2',
      },
      {
        index: 4,
        typeGuid: GPT_TYPES['freebsd-swap'],
        guid: 'c0ffee00-1111-4222-8333-444455556604',
        firstLba: 40 * mib,
        lastLba: 41 * mib - 1,
        attributes: 0n,
        name: 'swap',
      },
    ],
  };
}

describe('our GPT bytes, judged by peers', () => {
  it('sgdisk finds no problems and reports our fields (512-byte sectors)', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk')) return ctx.skip();
    const spec = ourSpec(512);
    const path = join(dir, 'ours-512-sgdisk.img');
    await writeOurImage(path, spec);
    const verify = runPeer('sgdisk', ['-v', path]).out;
    expect(verify).toContain('No problems found');
    for (const [i, p] of spec.partitions.entries()) {
      const info = runPeer('sgdisk', ['-i', String(p.index ?? i + 1), path]).out;
      expect(info).toContain(`Partition GUID code: ${p.typeGuid.toUpperCase()}`);
      expect(info).toContain(`Partition unique GUID: ${p.guid.toUpperCase()}`);
      expect(info).toMatch(new RegExp(`First sector: ${p.firstLba} `));
      expect(info).toMatch(new RegExp(`Last sector: ${p.lastLba} `));
      expect(info).toContain(`Attribute flags: ${p.attributes.toString(16).toUpperCase().padStart(16, '0')}`);
      expect(info).toContain(`Partition name: '${p.name}'`);
    }
  });

  it('sfdisk reads the same types, GUIDs, names and attributes (512-byte sectors)', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const spec = ourSpec(512);
    const path = join(dir, 'ours-512-sfdisk.img');
    await writeOurImage(path, spec);
    expect(runPeer('sfdisk', ['-V', path]).out).toContain('No errors detected');
    const ref = sfdiskJson(path);
    expect(ref.id).toBe(spec.diskGuid);
    expect(ref.partitions).toEqual(specView(spec).sort((a, b) => a.index - b.index));
  });

  it('fdisk -b 4096 finds no errors and reads our fields (4096-byte sectors)', async (ctx) => {
    if (!requirePeer('fdisk', 'fdisk')) return ctx.skip();
    const spec = ourSpec(4096);
    const path = join(dir, 'ours-4096.img');
    await writeOurImage(path, spec);
    const verify = runPeer('fdisk', ['-b', '4096', path], 'v\nq\n').out;
    expect(verify).toContain('No errors detected');
    expect(verify).not.toMatch(/corrupt|mismatch/i);
    expect(fdiskList(path, 4096)).toEqual(specView(spec).sort((a, b) => a.index - b.index));
  });
});

/** Their image, our read: exactly the partitions sfdisk (or fdisk) lists, and no problems. */
async function expectSameAsPeer(path: string, ref: PeerPartition[], sectorSize = 512): Promise<void> {
  const r = await probeFile(path);
  expect(r.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  expect(r.table.sectorSize).toBe(sectorSize);
  expect(ref.length).toBeGreaterThan(0);
  expect(ourView(r)).toEqual(ref);
}

describe('peer GPT bytes, read by probeGpt', () => {
  it('sgdisk -n -t -c -A', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const path = join(dir, 'sgdisk.img');
    await createSparse(path, 64 << 20);
    const made = runPeer('sgdisk', [
      '-n',
      '1:2048:+1M',
      '-t',
      '1:a501',
      '-c',
      '1:gptboot0',
      '-n',
      '2:0:+20M',
      '-t',
      '2:516e7cb6-6ecf-11d6-8ff8-00022d09712b',
      '-c',
      '2:rootfs1',
      '-A',
      '2:set:59',
      '-A',
      '2:set:58',
      '-n',
      '5:0:+8M',
      '-t',
      '5:ef00',
      '-c',
      '5:efi system',
      '-A',
      '5:set:0',
      '-A',
      '5:set:2',
      '-n',
      '3:0:0',
      '-t',
      '3:8300',
      '-A',
      '3:set:57',
      path,
    ]);
    expect(made.out).toContain('operation has completed successfully');
    const ref = sfdiskJson(path);
    expect(ref.partitions.map((p) => p.index)).toEqual([1, 2, 3, 5]);
    expect(ref.partitions[1].attrs).toBe('GUID:58,59');
    await expectSameAsPeer(path, ref.partitions);
    const r = await probeFile(path);
    expect(r.table.diskGuid).toBe(ref.id);
    expect(r.table.partitions.find((p) => p.index === 2)!.attributes).toEqual(['bootonce', 'bootme']);
    expect(r.table.partitions.find((p) => p.index === 3)!.attributes).toEqual(['bootfailed']);
    expect(r.table.partitions[0].typeName).toBe('freebsd-boot');
  });

  it('sfdisk script input', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const path = join(dir, 'sfdisk.img');
    await createSparse(path, 64 << 20);
    const script = [
      'label: gpt',
      'start=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"',
      'size=10MiB, type=516E7CB5-6ECF-11D6-8FF8-00022D09712B, name="swap", attrs="RequiredPartition GUID:59"',
      'size=20MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data", attrs="LegacyBIOSBootable"',
      '',
    ].join('\n');
    const made = runPeer('sfdisk', [path], script);
    expect(made.status).toBe(0);
    await expectSameAsPeer(path, sfdiskJson(path).partitions);
  });

  it('parted mklabel gpt mkpart', async (ctx) => {
    if (!requirePeer('parted', 'parted') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const path = join(dir, 'parted.img');
    await createSparse(path, 64 << 20);
    runPeer('parted', [
      '-s',
      path,
      'mklabel',
      'gpt',
      'mkpart',
      'esp',
      'fat32',
      '1MiB',
      '10MiB',
      'mkpart',
      'root',
      'ext4',
      '10MiB',
      '50MiB',
      'set',
      '1',
      'esp',
      'on',
    ]);
    const ref = sfdiskJson(path);
    expect(ref.partitions.map((p) => p.name)).toEqual(['esp', 'root']);
    await expectSameAsPeer(path, ref.partitions);
  });

  it('fdisk -b 4096 (4096-byte sectors)', async (ctx) => {
    if (!requirePeer('fdisk', 'fdisk')) return ctx.skip();
    const path = join(dir, 'fdisk-4096.img');
    await createSparse(path, 32 << 20);
    const commands =
      [
        'g', // new GPT
        'n',
        '1',
        '256',
        '+1M',
        't',
        GPT_TYPES.efi.toUpperCase(),
        'n',
        '2',
        '',
        '+4M',
        't',
        '2',
        GPT_TYPES['freebsd-ufs'].toUpperCase(),
        'x',
        'n',
        '2',
        'rootfs',
        'A',
        '1',
        'r', // expert: name 2, legacy-bios-bootable on 1
        'w',
      ].join('\n') + '\n';
    const made = runPeer('fdisk', ['-b', '4096', path], commands);
    expect(made.out).toContain('The partition table has been altered');
    const ref = fdiskList(path, 4096);
    expect(ref.map((p) => [p.index, p.name, p.attrs])).toEqual([
      [1, '', 'LegacyBIOSBootable'],
      [2, 'rootfs', ''],
    ]);
    await expectSameAsPeer(path, ref, 4096);
  });
});
