/**
 * streamOptimized VMDK markers (VMware Virtual Disk Format 1.1, "Stream-Optimized Compressed
 * Sparse Extents"): a grain marker written as parts reads back through decodeMarker, and the
 * parts fill whole sectors.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GRAIN_MARKER_SIZE, SECTOR, decodeMarker, grainMarkerParts } from '../../formats/containers/vmdk.js';
import { concatBytes } from '../../formats/common/bytes.js';

describe('grainMarkerParts', () => {
  it('head, the compressed bytes as given and zero padding: whole sectors that decode to the lba and size (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.uint8Array({ minLength: 1, maxLength: 3 * SECTOR }), (lba, compressed) => {
        const parts = grainMarkerParts(lba, compressed);
        expect(parts[1]).toBe(compressed); // not copied
        const whole = concatBytes(parts);
        expect(whole.length % SECTOR).toBe(0);
        expect(whole.length - GRAIN_MARKER_SIZE - compressed.length).toBeLessThan(SECTOR);
        expect(decodeMarker(whole)).toEqual({ kind: 'grain', lba, size: compressed.length });
        expect(whole.subarray(GRAIN_MARKER_SIZE, GRAIN_MARKER_SIZE + compressed.length)).toEqual(compressed);
        expect(whole.subarray(GRAIN_MARKER_SIZE + compressed.length).every((b) => b === 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
