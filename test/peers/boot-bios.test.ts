/**
 * Legacy-BIOS boot, end to end: a GPT image built by diskmint with syslinux's gptmbr.bin as
 * its protective-MBR boot code and bootcode/serial-marker.bin in a partition marked
 * `legacy-bios-bootable` boots under SeaBIOS (QEMU's default firmware, TCG) and writes
 * DISKMINT-BIOS-OK to COM1, as a raw image and converted by diskmint to qcow2.
 *
 * gptmbr.bin finds the first GPT entry with attribute bit 2 set, loads its first sector at
 * 0x7c00 and jumps to it: the test fails unless diskmint's protective MBR, GPT header and
 * entry array (CRCs, attribute bits, partition start) are right where the real loader reads.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, convertImage, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';
import { bootAndWaitForMarker, describeBoot, runLimited, type BootOptions } from '../helpers/qemu.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bootcode', 'serial-marker.bin');
const BUILD = join(ROOT, 'bootcode', 'build-serial-marker.sh');
const GPTMBR = '/usr/lib/syslinux/mbr/gptmbr.bin';
const MARKER = 'DISKMINT-BIOS-OK';
const BOOT_TIMEOUT_MS = 30_000;

const isCI = process.env.CI === 'true' || process.env.CI === '1';

/** Like requirePeer, for a file rather than a command. */
function requireFile(path: string, pkg: string): boolean {
  if (existsSync(path)) return true;
  const msg = `${path} not found: install the Debian package "${pkg}" (apt-get install ${pkg})`;
  if (isCI) throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

describe('bootcode/serial-marker.bin', () => {
  it('is a 512-byte boot sector holding the marker', async () => {
    const bin = await readFile(BIN);
    expect(bin.length).toBe(512);
    expect(bin[510]).toBe(0x55);
    expect(bin[511]).toBe(0xaa);
    expect(bin.includes(Buffer.from(`${MARKER}\r\n\0`, 'latin1'))).toBe(true);
    expect(bin[0]).toBe(0xfa); // cli before SS:SP change
  });

  it('is rebuilt byte-for-byte from serial-marker.asm by nasm', async (ctx) => {
    if (!requirePeer('nasm', 'nasm')) {
      ctx.skip();
      return;
    }
    const dir = tempDir('diskmint-serial-marker-');
    try {
      const out = join(dir, 'rebuilt.bin');
      const r = spawnSync('sh', [BUILD, out], { encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect((await readFile(out)).equals(await readFile(BIN))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('legacy BIOS boot (SeaBIOS, gptmbr.bin, legacy-bios-bootable)', () => {
  it('prints the marker on COM1 from a raw image and from its qcow2 conversion, and only with the attribute', { timeout: 120_000 }, async (ctx) => {
    if (!requirePeer('qemu-system-x86_64', 'qemu-system-x86') || !requireFile(GPTMBR, 'syslinux-common')) {
      ctx.skip();
      return;
    }
    const dir = tempDir('diskmint-boot-bios-');
    try {
      const layout = (attributes: string[]): Layout => ({
        scheme: 'gpt',
        seed: 'boot-bios-test',
        bootcode: GPTMBR,
        partitions: [{ type: 'linux-data', label: 'marker', size: '1M', attributes, contents: { file: BIN } }],
      });
      const raw = join(dir, 'bios.img');
      const qcow2 = join(dir, 'bios.qcow2');
      const notBootable = join(dir, 'not-bootable.img');
      await buildImage(layout(['legacy-bios-bootable']), { output: raw, baseDir: dir });
      await convertImage(raw, qcow2);
      // Control: the same disk without GPT attribute bit 2. gptmbr.bin finds no partition to
      // boot and says "Missing OS" (SeaBIOS's serial console shows its int 0x10 output).
      await buildImage(layout([]), { output: notBootable, baseDir: dir });

      const line = `${MARKER}\r\n`;
      const boots: BootOptions[] = [
        { disk: raw, format: 'raw', firmware: 'bios', marker: line, timeoutMs: BOOT_TIMEOUT_MS },
        { disk: qcow2, format: 'qcow2', firmware: 'bios', marker: line, timeoutMs: BOOT_TIMEOUT_MS },
      ];
      const control: BootOptions = { disk: notBootable, format: 'raw', firmware: 'bios', marker: 'Missing OS', timeoutMs: BOOT_TIMEOUT_MS };
      const results = await runLimited(
        2,
        [...boots, control].map((b) => () => bootAndWaitForMarker(b)),
      );
      boots.forEach((b, i) => {
        const r = results[i];
        console.log(`BIOS boot ${b.format}: ${r.found ? 'marker' : r.reason} after ${r.ms} ms`);
        expect.soft(r.found, describeBoot(b, r)).toBe(true);
      });
      const c = results[boots.length];
      console.log(`BIOS boot without legacy-bios-bootable: ${c.found ? '"Missing OS"' : c.reason} after ${c.ms} ms`);
      expect.soft(c.found, describeBoot(control, c)).toBe(true);
      expect.soft(c.log).not.toContain(MARKER);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
