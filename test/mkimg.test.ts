/** `diskmint mkimg` speaks FreeBSD mkimg's command line and lays images out as mkimg does. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMkimgArgs, parsePartSpec, expandNumber, runMkimg } from '../src/mkimg.js';
import { inspectImage, DiskmintError } from '../src/index.js';
import { decodeGolden, tempDir, writeMkimgInputs } from './helpers/golden.js';

describe('mkimg argument parsing', () => {
  it('partition specs', () => {
    expect(parsePartSpec('freebsd-ufs/rootfs:=root.ufs')).toEqual({ type: 'freebsd-ufs', label: 'rootfs', file: 'root.ufs' });
    expect(parsePartSpec('freebsd-swap::128k')).toEqual({ type: 'freebsd-swap', label: undefined, size: 131072 });
    expect(parsePartSpec('efi::1m:2m')).toEqual({ type: 'efi', label: undefined, size: 1 << 20, offset: { bytes: 2 << 20, relative: false } });
    expect(parsePartSpec('-')).toBeUndefined();
    expect(() => parsePartSpec('freebsd:-cat x')).toThrow(/from a command/);
    expect(() => parsePartSpec('nonsense')).toThrow(DiskmintError);
    expect(expandNumber('64k', 'x')).toBe(65536);
    expect(expandNumber('2g', 'x')).toBe(2 ** 31);
  });

  it('options in separate and joined forms', () => {
    const a = parseMkimgArgs(['-s', 'gpt', '-fvmdk', '-b', 'pmbr', '-p', 'freebsd-boot:=gptboot', '-P4096', '-S', '512', '-H', '255', '-T63', '-y', '-o', 'out.vmdk']);
    expect(a).toMatchObject({ scheme: 'gpt', format: 'vmdk', bootcode: 'pmbr', blockSize: 4096, sectorSize: 512, heads: 255, sectorsPerTrack: 63, deterministic: true, output: 'out.vmdk' });
    expect(() => parseMkimgArgs(['-s', 'apm', '-o', 'x'])).toThrow(/not supported/);
    expect(() => parseMkimgArgs(['-s', 'gpt'])).toThrow(/-o outfile is required/);
    expect(() => parseMkimgArgs(['-s', 'gpt', '-Z', '-o', 'x'])).toThrow(/unknown option -Z/);
  });
});

describe('mkimg command lines from mkimg_test.sh give mkimg golden bytes', () => {
  for (const [golden, geo, blk] of [['img-1x1-512-mbr.raw.hex', ['1', '1'], '512'], ['img-63x255-4096-mbr.raw.hex', ['255', '63'], '4096']] as const) {
    it(`${golden}: -s bsd then -s mbr with the bsd image as its slice`, async () => {
      const dir = tempDir();
      const inputs = writeMkimgInputs(dir);
      const bsd = join(dir, 'bsd.img');
      const out = join(dir, 'mbr.img');
      const common = ['-f', 'raw', '-P', blk, '-H', geo[0], '-T', geo[1], '-y'];
      await runMkimg(['-s', 'bsd', ...common, '-b', inputs.boot8k, '-p', `freebsd-ufs:=${inputs.data4m}`, '-p', 'freebsd-swap::128K', '-o', bsd]);
      await runMkimg(['-s', 'mbr', ...common, '-b', inputs.boot512, '-p', `freebsd:=${bsd}`, '-a', '1', '-o', out]);
      expect(Buffer.compare(readFileSync(out), readFileSync(decodeGolden(golden, dir)))).toBe(0);
    });
  }

  it('-s gpt -y: 128-entry table as current mkimg, fixed GUIDs, partitions on -P boundaries', async () => {
    const dir = tempDir();
    const inputs = writeMkimgInputs(dir);
    const out = join(dir, 'gpt.img');
    await runMkimg(['-s', 'gpt', '-f', 'raw', '-P', '4096', '-y', '-b', inputs.boot512, '-p', `freebsd-ufs/rootfs:=${inputs.data4m}`, '-p', 'freebsd-swap::128K', '-o', out]);
    const t = (await inspectImage(out)).table!;
    expect(t.entryCount).toBe(128);
    expect(t.diskGuid).toBe('03030303-0303-0303-0303-030303030303');
    expect(t.partitions.map((p) => [p.typeName, p.label, p.firstLba, p.lastLba, p.guid])).toEqual([
      ['freebsd-ufs', 'rootfs', 40, 40 + 8191, '01010101-0101-0101-0101-010101010101'],
      ['freebsd-swap', '', 8232, 8232 + 255, '02020202-0202-0202-0202-020202020202'],
    ]);
  });
});
