/**
 * Issue 17 item 11: a hybrid MBR (a 0xEE protective entry beside real partitions, as Boot Camp
 * and `sgdisk -h` write it). sgdisk makes it; sfdisk and sgdisk judge what each view holds. With
 * the GPT in place both views are shown (the GPT, and the MBR's entries as `table.hybridMbr`)
 * with the warning mbr.hybrid; with the GPT gone, the MBR is read as sfdisk reads it (it used to
 * show no table at all).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { inspectImage } from '../../src/index.js';
import { diskmint } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const scratch = tempDir('diskmint-hybrid-');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A 64 MiB GPT disk, an ESP and a basic-data partition, made hybrid by sgdisk (-h 2:EE: the data partition first, 0xEE after it). */
function makeHybrid(name: string): string {
  const img = join(scratch, name);
  writeFileSync(img, Buffer.alloc(64 << 20));
  const r = runPeer('sgdisk', ['-n', '1:2048:+16M', '-t', '1:ef00', '-n', '2:0:+20M', '-t', '2:0700', '-h', '2:EE', img]);
  expect(r.status, r.out).toBe(0);
  return img;
}

describe('hybrid MBR (item 11)', () => {
  it('with its GPT: both views, and the warning mbr.hybrid', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const img = makeHybrid('hybrid.img');
    // The judges: sgdisk finds the GPT clean; sgdisk -h's MBR holds the data partition then 0xEE.
    expect(runPeer('sgdisk', ['-v', img]).out).toMatch(/No problems found/);
    const r = await inspectImage(img);
    expect(r.table?.scheme).toBe('gpt');
    expect(r.table?.partitions.map((p) => [p.index, p.firstLba, p.lastLba])).toEqual([
      [1, 2048, 34815],
      [2, 34816, 75775],
    ]);
    expect(r.table?.hybridMbr?.partitions.map((p) => [p.index, p.rawType, p.firstLba, p.lastLba])).toEqual([
      [1, '0x07', 34816, 75775],
      [2, '0xee', 1, 34815],
    ]);
    const codes = r.findings.map((f) => `${f.severity}:${f.code}`);
    expect(codes).toContain('warning:mbr.hybrid');
    expect(codes).not.toContain('warning:gpt.pmbr-size');
    expect(codes).not.toContain('warning:mbr.hybrid-mismatch');

    const info = diskmint(['info', img]);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout.toString()).toMatch(/hybrid MBR in sector 0[^\n]*\n\s+MBR, 512-byte sectors[^\n]*\n[^\n]*\n\s+1\s+ntfs\s+0x07\s+34816\s+75775/);
    const v = diskmint(['verify', img]);
    expect(v.stdout.toString()).toMatch(/warning mbr\.hybrid .*partition 1 \(type 0x07, sectors 34816-75775\)/);
  });

  it('an MBR entry the GPT does not have is a mismatch', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk')) return ctx.skip();
    const img = makeHybrid('mismatch.img');
    // Move the hybrid entry's start by one sector (MBR entry 1, start LBA at byte 446 + 8).
    const fd = openSync(img, 'r+');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(34817);
    writeSync(fd, b, 0, 4, 446 + 8);
    b.writeUInt32LE(40959);
    writeSync(fd, b, 0, 4, 446 + 12);
    closeSync(fd);
    const r = await inspectImage(img);
    expect(r.findings.map((f) => f.code)).toContain('mbr.hybrid-mismatch');
  });

  it('without a GPT behind it: the MBR as sfdisk reads it, not "no partition table"', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk') || !requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const img = makeHybrid('nogpt.img');
    // Boot Camp disks cloned by MBR-only tools: the GPT headers and entries are gone (both copies).
    const fd = openSync(img, 'r+');
    writeSync(fd, Buffer.alloc(33 * 512), 0, 33 * 512, 512);
    writeSync(fd, Buffer.alloc(33 * 512), 0, 33 * 512, (64 << 20) - 33 * 512);
    closeSync(fd);
    const sf = runPeer('sfdisk', ['-d', img]);
    expect(sf.out).toMatch(/label: dos/);
    expect(sf.out).toMatch(/nogpt\.img1 : start=\s+34816, size=\s+40960, type=7/);
    expect(sf.out).toMatch(/nogpt\.img2 : start=\s+1, size=\s+34815, type=ee/);
    const r = await inspectImage(img);
    expect(r.table?.scheme).toBe('mbr');
    expect(r.table?.partitions.map((p) => [p.index, p.rawType, p.firstLba, p.sizeBytes / 512])).toEqual([
      [1, '0x07', 34816, 40960],
      [2, '0xee', 1, 34815],
    ]);
    expect(r.findings.map((f) => `${f.severity}:${f.code}`)).toContain('warning:mbr.hybrid');
  });
});
