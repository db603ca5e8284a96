/**
 * Issue 17 item 15: pools of 2006 (version 1) hold the old vdev_boot_header_t (VDEV_BOOT_MAGIC
 * 0x2f5b007b10c, then vb_version, vb_offset and vb_size, in the pool's byte order; OpenSolaris
 * vdev_impl.h, GRUB's zfs/vdev_impl.h) where pools since OpenZFS 2.0 keep the boot environment.
 * Read as a boot environment it showed "bootenv version 3254243537164" (the magic). A synthetic
 * label area holding that header, in both byte orders, is shown as an old boot header instead.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { BOOTENV_OFFSET, BOOTENV_SIZE, decodeBootenv, labelOffsets, sealEmbedded, VDEV_BOOT_MAGIC } from '../../formats/fs/zfs-label.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { describeBootenv, readZfsLabels, zfsBootenv } from '../../src/ops/zfs.js';
import { labelFindings } from '../../src/ops/zfs-findings.js';
import { zfsSetBootonce } from '../../src/ops/zfs-bootonce.js';
import { addZfsCommands } from '../../src/cli/zfs.js';
import { cliOutput } from '../../src/cli/output.js';
import { tempDir } from '../helpers/golden.js';

/** VDEV_BOOT_OFFSET (2 labels) and VDEV_BOOT_SIZE (3.5 MiB), as the old vdev_label_init filled them in. */
const BOOT_OFFSET = 512n * 1024n;
const BOOT_SIZE = 7n << 19n;

/** The 8 KiB block of a label at vdev byte `labelOffset`: vdev_boot_header_t, sealed as label blocks are. */
function oldHeader(labelOffset: number, endian: 'big' | 'little'): Uint8Array {
  const block = new Uint8Array(BOOTENV_SIZE);
  const v = new DataView(block.buffer);
  const le = endian === 'little';
  v.setBigUint64(0, VDEV_BOOT_MAGIC, le);
  v.setBigUint64(8, 1n, le);
  v.setBigUint64(16, BOOT_OFFSET, le);
  v.setBigUint64(24, BOOT_SIZE, le);
  return sealEmbedded(block, labelOffset + BOOTENV_OFFSET, endian);
}

function withOldHeaders(vdev: Uint8Array, endian: 'big' | 'little'): Uint8Array {
  const out = new Uint8Array(vdev);
  for (const o of labelOffsets(out.length)) out.set(oldHeader(o, endian), o + BOOTENV_OFFSET);
  return out;
}

describe('the old vdev_boot_header (item 15)', () => {
  for (const endian of ['big', 'little'] as const) {
    it(`is recognised, ${endian}-endian, and not read as a boot environment`, async () => {
      expect(VDEV_BOOT_MAGIC).toBe(3254243537164n); // the "bootenv version" the issue saw
      const be = decodeBootenv(oldHeader(0, endian), BOOTENV_OFFSET);
      expect(be.checksum.valid).toBe(true);
      expect(be.oldBootHeader).toEqual({ endian, version: 1n, offset: BOOT_OFFSET, size: BOOT_SIZE });
      expect(be.error).toBeUndefined();

      const set = await readZfsLabels(memoryDiskReader(withOldHeaders(new Uint8Array(1 << 20), endian)));
      const report = describeBootenv('synthetic', set);
      expect(report.version).toBeUndefined();
      expect(report.oldBootHeader).toMatchObject({ version: 1n, offset: BOOT_OFFSET, size: BOOT_SIZE });
      expect(report.bootonce).toBeUndefined();
      expect(report.agree).toBe(true);
      expect(report.labels.every((l) => l.oldBootHeader === true && l.version === undefined)).toBe(true);
      const codes = labelFindings(set, 'zfs').map((f) => `${f.severity}:${f.code}`);
      expect(codes.filter((c) => c === 'info:zfs.old-boot-header')).toHaveLength(4);
      expect(codes.some((c) => c.includes('bootenv'))).toBe(false);
    });
  }

  it('zfs bootenv on a pool whose labels hold it says so, with no version', async () => {
    const pool = new Uint8Array(gunzipSync(readFileSync(new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname)));
    const path = join(tempDir('diskmint-zfs-old-'), 'old.img');
    writeFileSync(path, withOldHeaders(pool, 'big'));
    expect((await zfsBootenv(path)).oldBootHeader?.endian).toBe('big');
    const out: string[] = [];
    const spy = vi.spyOn(cliOutput, 'out').mockImplementation((s) => void out.push(s));
    try {
      const p = new Command();
      p.exitOverride();
      addZfsCommands(p);
      await p.parseAsync(['zfs', 'bootenv', path], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    expect(out.join('')).toMatch(
      /no boot environment; label 0 holds an old vdev_boot_header \(version 1, boot area at byte 524288, 3670016 bytes, big-endian\)/,
    );
    expect(out.join('')).not.toMatch(/3254243537164/);
  });

  it('zfs bootonce refuses a pool whose labels hold it, changing nothing', async () => {
    const pool = new Uint8Array(gunzipSync(readFileSync(new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname)));
    const path = join(tempDir('diskmint-zfs-old-'), 'old.img');
    const bytes = withOldHeaders(pool, 'little');
    writeFileSync(path, bytes);
    await expect(zfsSetBootonce(path, 'zroot/ROOT/next')).rejects.toThrow(/old vdev_boot_header \(version 1, .*nothing was changed/);
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(bytes))).toBe(true);
  });
});
