/**
 * diskmint's own MBR boot code (bootcode/diskmint-mbr.S): the committed binary, that it is
 * reproducible from its source with binutils, and (when QEMU is installed) that it really
 * prints its message under a PC BIOS.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BOOTCODE_KINDS } from '../../formats/boot/bootcode-kinds.js';
import { havePeer, requirePeer } from '../helpers/peer.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bootcode', 'diskmint-mbr.bin');
const BUILD = join(ROOT, 'bootcode', 'build.sh');
const MESSAGE = 'diskmint: this disk has no boot loader installed';
/** Code area of sector 0: the disk signature starts at byte 440. */
const CODE_AREA = 440;

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'diskmint-bootcode-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('bootcode/diskmint-mbr.bin', () => {
  it('fits the 440-byte code area and carries the message with CR LF', async () => {
    const bin = await readFile(BIN);
    expect(bin.length).toBeLessThanOrEqual(CODE_AREA);
    expect(bin.length).toBeLessThanOrEqual(BOOTCODE_KINDS.mbr.copiedBytes);
    expect(bin.includes(Buffer.from(`${MESSAGE}\r\n\0`, 'latin1'))).toBe(true);
    // Starts by disabling interrupts before it touches SS:SP (cli = 0xfa).
    expect(bin[0]).toBe(0xfa);
  });

  it('is rebuilt byte-for-byte from diskmint-mbr.S by build.sh', async (ctx) => {
    if (!requirePeer('as', 'binutils') || !requirePeer('ld', 'binutils') || !requirePeer('objcopy', 'binutils')) {
      ctx.skip();
      return;
    }
    await withTempDir(async (dir) => {
      const out = join(dir, 'rebuilt.bin');
      const r = spawnSync('sh', [BUILD, out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const rebuilt = await readFile(out);
      expect(rebuilt.length).toBe(CODE_AREA);
      expect(rebuilt.equals(await readFile(BIN))).toBe(true);
    });
  });
});

/**
 * Boot a 1 MiB disk whose sector 0 is the boot code + 0x55AA under QEMU's SeaBIOS, then read
 * the VGA text buffer (0xb8000: character, attribute pairs) through the monitor's pmemsave.
 * BIOS int 0x10 output goes to the VGA card, not to a serial port, so this reads the screen.
 */
const QEMU = ['qemu-system-x86_64', 'qemu-system-i386'].find(havePeer);

describe('diskmint-mbr.bin under QEMU', () => {
  it('prints its message on the screen', async (ctx) => {
    if (!QEMU) {
      console.warn('skipping: qemu-system-x86_64/qemu-system-i386 not found (Debian package "qemu-system-x86")');
      ctx.skip();
      return;
    }
    await withTempDir(async (dir) => {
      const disk = Buffer.alloc(1 << 20);
      (await readFile(BIN)).copy(disk, 0);
      disk[510] = 0x55;
      disk[511] = 0xaa;
      const diskPath = join(dir, 'disk.img');
      await writeFile(diskPath, disk);
      const screen = join(dir, 'vga.bin');
      const text = await bootAndReadScreen(QEMU, diskPath, screen, 30_000);
      expect(text).toContain(MESSAGE);
    });
  }, 60_000);
});

async function bootAndReadScreen(qemu: string, diskPath: string, screenPath: string, timeoutMs: number): Promise<string> {
  const child = spawn(
    qemu,
    [
      '-accel',
      'tcg',
      '-m',
      '32',
      '-display',
      'none',
      '-serial',
      'none',
      '-monitor',
      'stdio',
      '-no-reboot',
      '-drive',
      `file=${diskPath},format=raw,if=ide`,
      '-boot',
      'c',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let text = '';
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 500));
      child.stdin.write(`pmemsave 0xb8000 4000 "${screenPath}"\n`);
      await new Promise((r) => setTimeout(r, 300));
      if (!existsSync(screenPath)) continue;
      text = vgaText(await readFile(screenPath));
      if (text.includes(MESSAGE)) break;
    }
  } finally {
    if (child.exitCode === null) {
      child.stdin.write('quit\n');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
  }
  if (!text.includes(MESSAGE)) throw new Error(`message not on screen. Screen:\n${text}\nQEMU said (tail):\n${output.slice(-2000)}`);
  return text;
}

/** 80x25 text mode: even bytes are characters, odd bytes attributes. */
function vgaText(buf: Buffer): string {
  const rows: string[] = [];
  for (let row = 0; row < 25; row++) {
    let line = '';
    for (let col = 0; col < 80; col++) {
      const c = buf[(row * 80 + col) * 2] ?? 0;
      line += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ' ';
    }
    rows.push(line.trimEnd());
  }
  return rows.join('\n');
}
