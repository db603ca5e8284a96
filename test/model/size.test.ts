/**
 * One grammar for byte sizes: layouts' sizes (parseSizeSpec), and through parseByteSize the
 * size options of the writers (qcow2 cluster_size, VHDX block_size and log_size), which had
 * grammars of their own. Each still takes every spelling it took before.
 */
import { describe, expect, it } from 'vitest';
import { parseByteSize, parseSizeSpec } from '../../src/model/size.js';
import { qcow2WriteSettings } from '../../src/containers/qcow2/writer.js';
import { parseVhdxOptions } from '../../src/containers/vhdx/writer.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('parseByteSize', () => {
  it('reads bytes with binary units, as layouts spell them', () => {
    for (const [text, bytes] of [
      ['65536', 65536],
      ['64k', 64 * KiB],
      ['64K', 64 * KiB],
      ['64KiB', 64 * KiB],
      ['64kb', 64 * KiB],
      ['64 K', 64 * KiB],
      ['2M', 2 * MiB],
      ['2m', 2 * MiB],
      ['1G', 1024 * MiB],
      ['512b', 512],
      ['512B', 512],
      ['0.5M', 512 * KiB],
      [' 8M ', 8 * MiB],
      [4096, 4096],
    ] as const) {
      expect(parseByteSize(text), String(text)).toBe(bytes);
      if (typeof text === 'string') expect(parseSizeSpec(text), text).toEqual({ kind: 'bytes', bytes });
    }
  });

  it('refuses what is not a number of bytes: sectors, shares, rest, auto, fractions of a byte, garbage', () => {
    for (const text of ['2048s', '50%', 'rest', 'auto', '1.5', '0.3K', '', 'M', '64x', '-1', '1e3', '32ib']) expect(parseByteSize(text), text).toBeUndefined();
  });
});

describe('writer size options use it', () => {
  const clusterSize = (value: string) => qcow2WriteSettings({ cluster_size: value }, undefined).clusterBits;
  it('qcow2 cluster_size: what it took before (digits, b/k/m/g in either case) and the layout spellings', () => {
    for (const [value, bits] of [
      ['512', 9],
      ['512b', 9],
      ['4096', 12],
      ['64k', 16],
      ['64K', 16],
      ['2M', 21],
      ['2m', 21],
      ['64KiB', 16],
      ['1MB', 20],
      ['0.5M', 19],
    ] as const) {
      expect(clusterSize(value), value).toBe(bits);
    }
    for (const value of ['1000', '256', '4M', '1G', '2048s', '100%', 'x']) expect(() => clusterSize(value), value).toThrow(/cluster_size/);
  });

  it('VHDX block_size and log_size: what they took before (k/m/g with or without iB/B) and the layout spellings', () => {
    for (const [value, bytes] of [
      ['1M', MiB],
      ['32M', 32 * MiB],
      ['32MiB', 32 * MiB],
      ['32mb', 32 * MiB],
      ['33554432', 32 * MiB],
      ['32768K', 32 * MiB],
      ['256M', 256 * MiB],
      ['0.5G', 512 * MiB],
    ] as const) {
      if (bytes <= 256 * MiB) expect(parseVhdxOptions({ block_size: value }, 1 << 30).blockSize, value).toBe(bytes);
      expect(parseVhdxOptions({ log_size: value }, 1 << 30).logSize, value).toBe(bytes);
    }
    expect(parseVhdxOptions({ block_size: '0' }, 1 << 30).blockSize).toBe(8 * MiB); // qemu: 0 = chosen by size
    for (const value of ['32', '3M', '512M', '2048s', '10%', 'big'])
      expect(() => parseVhdxOptions({ block_size: value }, 1 << 30), value).toThrow(/block_size/);
    // Taken by VHDX's own case-blind regex before, not by the common grammar (lower-case i, as in layouts).
    for (const value of ['32MIB', '32ib']) expect(() => parseVhdxOptions({ block_size: value }, 1 << 30), value).toThrow(/not a size/);
    expect(() => parseVhdxOptions({ log_size: 'big' }, 1 << 30)).toThrow(/log_size=big: not a size/);
  });
});
