/** `diskmint mkimg` speaks FreeBSD mkimg's command line and lays images out as mkimg does. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMkimgArgs, parsePartSpec, expandNumber, runMkimg } from '../../src/ops/mkimg.js';
import { inspectImage, DiskmintError } from '../../src/index.js';
import { decodeGolden, tempDir, writeMkimgInputs } from '../helpers/golden.js';

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
    const a = parseMkimgArgs([
      '-s',
      'gpt',
      '-fvmdk',
      '-b',
      'pmbr',
      '-p',
      'freebsd-boot:=gptboot',
      '-P4096',
      '-S',
      '512',
      '-H',
      '255',
      '-T63',
      '-y',
      '-o',
      'out.vmdk',
    ]);
    expect(a).toMatchObject({
      scheme: 'gpt',
      format: 'vmdk',
      bootcode: 'pmbr',
      blockSize: 4096,
      sectorSize: 512,
      heads: 255,
      sectorsPerTrack: 63,
      deterministic: true,
      output: 'out.vmdk',
    });
    expect(() => parseMkimgArgs(['-s', 'apm', '-o', 'x'])).toThrow(/not supported/);
    expect(() => parseMkimgArgs(['-s', 'ebr', '-b', 'boot', '-o', 'x'])).toThrow(/no boot code/);
    expect(() => parseMkimgArgs(['-s', 'gpt'])).toThrow(/-o outfile is required/);
    expect(() => parseMkimgArgs(['-s', 'gpt', '-Z', '-o', 'x'])).toThrow(/unknown option -Z/);
  });
});

describe('mkimg command lines from mkimg_test.sh give mkimg golden bytes', () => {
  // mkimg_test.sh makes a bsd image, then an mbr or ebr image holding it as its one partition.
  // The ebr goldens: raw for 1x1-512; for 63x255-4096 only a fixed VHD (vhdf), whose data part
  // (before its 512-byte footer) is the raw image followed by zeros up to the VHD's size.
  const goldens = [
    ['img-1x1-512-mbr.raw.hex', 'mbr', ['1', '1'], '512'],
    ['img-63x255-4096-mbr.raw.hex', 'mbr', ['255', '63'], '4096'],
    ['img-1x1-512-ebr.raw.hex', 'ebr', ['1', '1'], '512'],
    ['img-63x255-4096-ebr.vhdf.hex', 'ebr', ['255', '63'], '4096'],
  ] as const;
  for (const [golden, scheme, geo, blk] of goldens) {
    it(`${golden}: -s bsd then -s ${scheme} with the bsd image as its one partition`, async () => {
      const dir = tempDir();
      const inputs = writeMkimgInputs(dir);
      const bsd = join(dir, 'bsd.img');
      const out = join(dir, `${scheme}.img`);
      const common = ['-f', 'raw', '-P', blk, '-H', geo[0], '-T', geo[1], '-y'];
      await runMkimg(['-s', 'bsd', ...common, '-b', inputs.boot8k, '-p', `freebsd-ufs:=${inputs.data4m}`, '-p', 'freebsd-swap::128K', '-o', bsd]);
      const mbrOnly = scheme === 'mbr' ? ['-b', inputs.boot512, '-a', '1'] : [];
      await runMkimg(['-s', scheme, ...common, ...mbrOnly, '-p', `freebsd:=${bsd}`, '-o', out]);
      const ours = readFileSync(out);
      const theirs = readFileSync(decodeGolden(golden, dir));
      const footer = golden.endsWith('.vhdf.hex') ? 512 : 0;
      expect(footer > 0 || ours.length === theirs.length).toBe(true);
      expect(Buffer.compare(ours, theirs.subarray(0, ours.length))).toBe(0);
      expect(theirs.subarray(ours.length, theirs.length - footer).every((b) => b === 0)).toBe(true);
      const t = (await inspectImage(out)).table!;
      expect(t.partitions.map((p) => [p.index, p.rawType, p.firstLba])).toEqual([[1, '0xa5', Number(geo[1])]]);
    });
  }

  it('-s gpt -y: 128-entry table as current mkimg, fixed GUIDs, partitions on -P boundaries', async () => {
    const dir = tempDir();
    const inputs = writeMkimgInputs(dir);
    const out = join(dir, 'gpt.img');
    await runMkimg([
      '-s',
      'gpt',
      '-f',
      'raw',
      '-P',
      '4096',
      '-y',
      '-b',
      inputs.boot512,
      '-p',
      `freebsd-ufs/rootfs:=${inputs.data4m}`,
      '-p',
      'freebsd-swap::128K',
      '-o',
      out,
    ]);
    const t = (await inspectImage(out)).table!;
    expect(t.entryCount).toBe(128);
    expect(t.diskGuid).toBe('03030303-0303-0303-0303-030303030303');
    expect(t.partitions.map((p) => [p.typeName, p.label, p.firstLba, p.lastLba, p.guid])).toEqual([
      ['freebsd-ufs', 'rootfs', 40, 40 + 8191, '01010101-0101-0101-0101-010101010101'],
      ['freebsd-swap', '', 8232, 8232 + 255, '02020202-0202-0202-0202-020202020202'],
    ]);
  });
});
