/**
 * The seeded identifiers are SHA-256 digests computed in JavaScript (@noble/hashes, to keep
 * node:crypto out of start-up). They must stay the bytes node:crypto gives: every GUID, disk
 * signature and FAT serial that earlier diskmint versions wrote depends on them.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deriveGuid, deriveU32, seedFromLayoutText } from '../../src/model/seed.js';

const nodeSha256 = (text: string) => createHash('sha256').update(text).digest();

describe('seeded identifiers', () => {
  it('equal node:crypto SHA-256 for any seed and name, non-ASCII and lone surrogates included', () => {
    const text = fc.string({ unit: 'binary', maxLength: 80 });
    fc.assert(
      fc.property(text, text, (seed, what) => {
        const d = nodeSha256(`diskmint\0${seed}\0${what}`);
        expect(deriveU32(seed, what)).toBe(d.readUInt32LE(0) || 1);
        const g = deriveGuid(seed, what).replace(/-/g, '');
        d[6] = (d[6] & 0x0f) | 0x40;
        d[8] = (d[8] & 0x3f) | 0x80;
        expect(g).toBe(d.subarray(0, 16).toString('hex'));
        expect(seedFromLayoutText(seed)).toBe(nodeSha256(seed).toString('hex').slice(0, 32));
      }),
      { numRuns: 300 },
    );
  });

  it('derive version-4-shaped GUIDs', () => {
    expect(deriveGuid('demo', 'disk')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
