/**
 * The fallback selector's committed binaries (bootcode/SELECTOR.md): their sizes and fixed
 * bytes, and that nasm rebuilds each one byte for byte from bootcode/*.asm.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BOOTCODE_KINDS } from '../../formats/boot/bootcode-kinds.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';
import { BOOTCODE } from '../helpers/fallback-image.js';

const BINS = ['fallback-mbr.bin', 'fallback-stage2.bin', 'test-stage-a.bin', 'test-stage-b.bin'];
/** K in fallback-mbr.asm: the MBR loads sectors 1..16 of the BIOS-boot partition. */
const SELECTOR_SECTORS = 16;

const bin = (name: string) => readFile(join(BOOTCODE, name));
/** The 16 bytes of a GPT type GUID as they sit in an entry (UEFI 2.10 appendix A: mixed-endian). */
function guidBytes(text: string): Buffer {
  const h = text.replace(/-/g, '');
  const swap = (s: string) => s.match(/../g)!.reverse().join('');
  return Buffer.from(swap(h.slice(0, 8)) + swap(h.slice(8, 12)) + swap(h.slice(12, 16)) + h.slice(16), 'hex');
}

describe('bootcode/fallback-*.bin', () => {
  it('fallback-mbr.bin fills the 440-byte code area and names the BIOS-boot type and its messages', async () => {
    const mbr = await bin('fallback-mbr.bin');
    expect(mbr.length).toBe(440);
    expect(mbr[0]).toBe(0xfa); // cli before SS:SP change
    expect(mbr.includes(guidBytes('21686148-6449-6e6f-744e-656564454649'))).toBe(true);
    expect(mbr.includes(Buffer.from('Missing boot loader'))).toBe(true);
    expect(mbr.includes(Buffer.from('Read error'))).toBe(true);
  });

  it('fallback-stage2.bin fits the sectors the MBR loads and the selector kind', async () => {
    const s2 = await bin('fallback-stage2.bin');
    expect(s2.length).toBeGreaterThan(0);
    expect(s2.length).toBeLessThanOrEqual(SELECTOR_SECTORS * 512);
    expect(s2.length).toBeLessThanOrEqual(BOOTCODE_KINDS['diskmint-selector'].maxBytes);
    expect(s2.includes(guidBytes('83bd6b9d-7f41-11dc-be0b-001560b84f0f'))).toBe(true);
  });

  it('the test stages are 1024 bytes and differ only in their name', async () => {
    const a = await bin('test-stage-a.bin');
    const b = await bin('test-stage-b.bin');
    expect([a.length, b.length]).toEqual([1024, 1024]);
    const differing = [...a.keys()].filter((i) => a[i] !== b[i]);
    expect(differing.map((i) => [a[i], b[i]])).toEqual([[0x41, 0x42]]); // 'A' / 'B'
  });

  it('nasm rebuilds every file byte for byte (build-fallback.sh)', async (ctx) => {
    if (!requirePeer('nasm', 'nasm')) {
      ctx.skip();
      return;
    }
    const out = tempDir('diskmint-fallback-build-');
    const r = spawnSync('sh', [join(BOOTCODE, 'build-fallback.sh'), out], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    for (const name of BINS) {
      expect((await readFile(join(out, name))).equals(await bin(name)), name).toBe(true);
    }
  });
});
