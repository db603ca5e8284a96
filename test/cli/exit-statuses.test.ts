/**
 * The README's exit statuses, the same for the same kind of input whatever the command or the
 * format (issue 17 items 6, 7 and 17): a partition that is not there, a truncated or corrupt
 * container, an unreadable GPT are input that is not usable, exit 2, with a message naming the file.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';

function layoutImage(dir: string): string {
  mkdirSync(join(dir, 'esp'));
  writeFileSync(join(dir, 'esp', 'x'), 'x');
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({
      scheme: 'gpt',
      size: '8M',
      partitions: [
        { type: 'efi', size: '2M', contents: { fat: { from: 'esp' } } },
        { type: 'freebsd-ufs', size: '1M' },
      ],
    }),
  );
  const img = join(dir, 'disk.img');
  const b = diskmint(['build', layout, '-o', img]);
  expect(b.stderr).toBe('');
  return img;
}

describe('IMG:N where the disk has no partition N (item 17)', () => {
  it('exits 2 (the input is not usable) for fat, zfs and compare, naming the partitions it has', () => {
    const dir = tempDir();
    const img = layoutImage(dir);
    for (const args of [
      ['fat', 'ls', `${img}:9`],
      ['fat', 'cat', `${img}:9`, '/x'],
      ['zfs', 'label', `${img}:9`],
      ['compare', `${img}:9`, img],
      ['compare', img, `${img}:9`],
    ]) {
      const r = diskmint(args);
      expect(r.stderr, args.join(' ')).toContain(`${img} has no partition 9 (it has 1, 2)`);
      expect(r.status, args.join(' ')).toBe(2);
    }
  });
});

/** A raw GPT disk with data in its partitions, and each container format of it. */
function containers(dir: string): Record<string, string> {
  const img = layoutImage(dir);
  const bytes = readFileSync(img);
  for (let i = 3 << 20; i < 6 << 20; i += 4096) bytes[i] = (i >> 12) & 0xff || 1; // data in every grain and cluster
  writeFileSync(img, bytes);
  const out: Record<string, string> = {};
  for (const [name, args] of [
    ['qcow2', ['-O', 'qcow2']],
    ['vmdk', ['-O', 'vmdk']],
    ['streamOptimized vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
    ['vhd', ['-O', 'vhd']],
    ['vhdx', ['-O', 'vhdx']],
  ] as const) {
    const path = join(dir, `disk-${name.replace(' ', '-')}.img`);
    expect(diskmint(['convert', img, path, '-q', ...args]).status).toBe(0);
    out[name] = path;
  }
  return out;
}

function setGptEntryCount(bytes: Buffer, headerAt: number, count: number): void {
  const h = bytes.subarray(headerAt, headerAt + 512);
  h.writeUInt32LE(count, 80);
  h.writeUInt32LE(0, 16);
  h.writeUInt32LE(crc32(h.subarray(0, h.readUInt32LE(12))), 16);
}

describe('the same bad input, the same exit status and a message naming the file (items 6 and 7)', () => {
  const dir = tempDir();
  const images = containers(dir);
  for (const [name, path] of Object.entries(images)) {
    it(`a truncated ${name}: info, verify, convert, compare and fat ls all exit 2 naming it`, () => {
      const cut = join(dir, `cut-${name.replace(' ', '-')}`);
      const whole = readFileSync(path);
      writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2 / 512) * 512));
      for (const args of [
        ['info', cut],
        ['verify', cut],
        ['convert', cut, join(dir, 'out.raw')],
        ['compare', cut, images.qcow2],
        ['fat', 'ls', `${cut}:1`],
      ]) {
        const r = diskmint(args);
        expect(r.stderr, `${args.join(' ')}: ${r.stderr}`).toMatch(new RegExp(`^diskmint: ${cut}[: ]`));
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stdout.toString(), args.join(' ')).toBe('');
      }
      expect(existsSync(join(dir, 'out.raw'))).toBe(false);
    });
  }

  it('a qcow2 whose L1 table lies past the end of the file: exit 2 for info and verify', () => {
    const bytes = readFileSync(images.qcow2);
    bytes.writeBigUInt64BE(BigInt(bytes.length + 4 * 65536), 40); // l1_table_offset
    const bad = join(dir, 'l1.qcow2');
    writeFileSync(bad, bytes);
    for (const cmd of ['info', 'verify']) {
      const r = diskmint([cmd, bad]);
      expect(r.stderr).toMatch(new RegExp(`^diskmint: ${bad}: qcow2: L1 table .* past the end of the file`));
      expect(r.status).toBe(2);
    }
  });

  it('a GPT claiming 2^32 entries in both headers: info prints why it shows no partitions and exits 1, as verify does', () => {
    const bytes = readFileSync(layoutImage(tempDir()));
    setGptEntryCount(bytes, 512, 0xffffffff);
    setGptEntryCount(bytes, bytes.length - 512, 0xffffffff);
    const bad = join(dir, 'entries.img');
    writeFileSync(bad, bytes);
    const info = diskmint(['info', bad]);
    expect(info.stdout.toString()).toMatch(/error +gpt\.primary-header-invalid .*4294967295 entries/);
    expect(info.stdout.toString()).toMatch(/error +gpt\.backup-header-invalid/);
    expect(info.status).toBe(1);
    const json = diskmint(['info', bad, '--json']);
    expect(JSON.parse(json.stdout.toString()).findings.map((f: { code: string }) => f.code)).toContain('gpt.primary-header-invalid');
    expect(json.status).toBe(1);
    expect(diskmint(['verify', bad]).status).toBe(1);
  });

  it('a sound image: info exits 0 and prints no problems', () => {
    const r = diskmint(['info', images.vhdx]);
    expect(r.stdout.toString()).not.toMatch(/problems/);
    expect(r.status).toBe(0);
  });
});
