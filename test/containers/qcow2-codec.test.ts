/**
 * qcow2 codec (formats/containers/qcow2*.ts): header, cluster descriptors, L1/L2 entries, table
 * sizes and refcount layout, and the zstd frame extent the reader relies on.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { createCompressor } from '../../src/containers/compress.js';
import { zstdFrameExtent } from '../../src/containers/qcow2/handler.js';
import {
  QCOW2_COMPRESSION,
  QCOW2_FEATURE_NAMES,
  encodeQcow2Header,
  l1EntriesFor,
  decodeQcow2Extensions,
  decodeQcow2Header,
} from '../../formats/containers/qcow2.js';
import { refcountLayout, refcountsPerBlock } from '../../formats/containers/qcow2-refcounts.js';
import {
  decodeCompressedDescriptor,
  decodeL1Entry,
  decodeL2Entry,
  encodeCompressedDescriptor,
  encodeL1Entry,
  compressedOffsetBits,
} from '../../formats/containers/qcow2-tables.js';

describe('qcow2 codec', () => {
  it('header v2 and v3 encode and parse back, with the feature name table', () => {
    for (const version of [2, 3] as const) {
      const bytes = encodeQcow2Header({
        version,
        clusterBits: 16,
        size: 123456789,
        l1Size: 1,
        l1TableOffset: 65536,
        refcountTableOffset: 131072,
        refcountTableClusters: 1,
        compressionType: version === 3 ? QCOW2_COMPRESSION.zstd : 0,
        featureNames: version === 3 ? QCOW2_FEATURE_NAMES : undefined,
      });
      const h = decodeQcow2Header(bytes);
      expect(h).toMatchObject({
        version,
        clusterBits: 16,
        size: 123456789,
        l1Size: 1,
        l1TableOffset: 65536,
        refcountTableOffset: 131072,
        refcountTableClusters: 1,
      });
      expect(h.headerLength).toBe(version === 3 ? 112 : 72);
      expect(h.compressionType).toBe(version === 3 ? 1 : 0);
      expect(h.incompatibleFeatures).toEqual(version === 3 ? [3] : []);
      const ext = decodeQcow2Extensions(bytes, h.headerLength);
      expect(ext.featureNames).toEqual(version === 3 ? QCOW2_FEATURE_NAMES : []);
    }
  });

  it('compressed descriptors round trip for every cluster_bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (bits, fo, fl) => {
        const cs = 2 ** bits;
        // JS numbers are exact to 2^53 (8 PiB): the codec refuses larger offsets.
        const maxOffset = Math.min(2 ** compressedOffsetBits(bits), 2 ** 53) - cs;
        const hostOffset = Math.floor(fo * maxOffset);
        const length = 1 + Math.floor(fl * (cs - 2));
        const [hi, lo] = encodeCompressedDescriptor(hostOffset, length, bits);
        expect(hi & 0x80000000).toBe(0);
        const d = decodeCompressedDescriptor(hi, lo, bits);
        expect(d.hostOffset).toBe(hostOffset);
        const e = decodeL2Entry(hi, lo, bits);
        expect(e.kind).toBe('compressed');
        const span = d.sectors * 512 - (hostOffset % 512);
        expect(span).toBeGreaterThanOrEqual(length);
        expect(span - length).toBeLessThan(512);
      }),
    );
    expect(() => encodeCompressedDescriptor(2 ** 53 + 2, 100, 9)).toThrow(/safe integer/);
  });

  it('L1/L2 standard entries and the zero flag', () => {
    const [hi, lo] = encodeL1Entry(0x123456780000);
    expect(hi >>> 31).toBe(1);
    expect(decodeL1Entry(hi, lo)).toBe(0x123456780000);
    expect(decodeL2Entry(hi, lo, 16)).toEqual({ kind: 'normal', hostOffset: 0x123456780000 });
    expect(decodeL2Entry(0, 0, 16)).toEqual({ kind: 'unallocated' });
    expect(decodeL2Entry(0x80000000, 0x10001, 16)).toEqual({ kind: 'zero' });
    expect(decodeL2Entry(0, 1, 16)).toEqual({ kind: 'zero' });
  });

  it('l1EntriesFor agrees with the spec formula', () => {
    expect(l1EntriesFor(0, 16)).toBe(0);
    expect(l1EntriesFor(1, 16)).toBe(1);
    expect(l1EntriesFor(512 * 1024 * 1024, 16)).toBe(1);
    expect(l1EntriesFor(512 * 1024 * 1024 + 1, 16)).toBe(2);
  });

  it('refcount layout covers itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 1, max: 50_000_000 }), (bits, other) => {
        const { blocks, tableClusters } = refcountLayout(bits, other);
        expect(blocks * refcountsPerBlock(bits)).toBeGreaterThanOrEqual(other + blocks + tableClusters);
        expect((tableClusters * 2 ** bits) / 8).toBeGreaterThanOrEqual(blocks);
      }),
    );
  });

  it('zstd frame extent ignores what follows the frame', async () => {
    const c = createCompressor({ threads: 1 });
    try {
      const data = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
      const frame = await c.compress(data, 'zstd');
      const padded = new Uint8Array(frame.length + 300).fill(0xee);
      padded.set(frame);
      expect(zstdFrameExtent(padded)).toEqual({ length: frame.length, contentSize: 65536 });
      expect(() => zstdFrameExtent(frame.subarray(0, frame.length - 1))).toThrow(FormatError);
    } finally {
      await c.close();
    }
  });
});
