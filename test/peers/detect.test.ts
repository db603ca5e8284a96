/**
 * Every command opens images by content (openDisk), never through a chosen handler. Each
 * format and subformat qemu-img writes must be recognised that way, and read back the bytes it
 * was made from. (Reading qemu's files through a handler directly once hid a detection bug:
 * qemu pads descriptor-only VMDK files with NULs.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDisk } from '../../src/io/open-disk.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const CASES: Array<{ format: string; options: string; subformat: string }> = [
  { format: 'qcow2', options: 'compat=0.10', subformat: 'v2' },
  { format: 'qcow2', options: 'compat=1.1', subformat: 'v3' },
  { format: 'vpc', options: 'subformat=dynamic', subformat: 'dynamic' },
  { format: 'vpc', options: 'subformat=fixed', subformat: 'fixed' },
  { format: 'vhdx', options: 'subformat=dynamic', subformat: 'dynamic' },
  { format: 'vhdx', options: 'subformat=fixed', subformat: 'fixed' },
  { format: 'vmdk', options: 'subformat=monolithicSparse', subformat: 'monolithicSparse' },
  { format: 'vmdk', options: 'subformat=streamOptimized', subformat: 'streamOptimized' },
  { format: 'vmdk', options: 'subformat=monolithicFlat', subformat: 'monolithicFlat' },
  { format: 'vmdk', options: 'subformat=twoGbMaxExtentSparse', subformat: 'twoGbMaxExtentSparse' },
  { format: 'vmdk', options: 'subformat=twoGbMaxExtentFlat', subformat: 'twoGbMaxExtentFlat' },
];

describe('images qemu-img writes are found by content', () => {
  for (const c of CASES) {
    it(`${c.format} ${c.options}`, async (ctx) => {
      if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
      const dir = tempDir();
      const raw = join(dir, 'src.raw');
      const bytes = Buffer.alloc(3 << 20);
      for (let i = 0; i < bytes.length; i += 4099) bytes[i] = (i % 251) + 1;
      writeFileSync(raw, bytes);
      // A neutral name: detection must not lean on the extension.
      const out = join(dir, 'image.bin');
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', c.format, '-o', c.options, raw, out]);
      const { reader, format } = await openDisk(out);
      try {
        expect(format).toBe(c.format === 'vpc' ? 'vhd' : c.format);
        expect(reader.subformat).toBe(c.subformat);
        expect(Buffer.from(await reader.read(0, bytes.length)).equals(bytes)).toBe(true);
      } finally {
        await reader.close();
      }
    });
  }
});
