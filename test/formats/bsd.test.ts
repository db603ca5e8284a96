import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import {
  BSD_BOOT_AREA,
  BSD_FSTYPES,
  BSD_MAGIC,
  bsdFstypeByte,
  bsdFstypeName,
  decodeBsdLabel,
  encodeBsdLabel,
  type BsdPartition,
} from '../../formats/schemes/bsd.js';
import { expectFormatError } from '../helpers/codec.js';

const U32 = 0xffffffff;

const LETTERS = 'abdefghijklmnopqrst'.split('');

const labelSpec = fc
  .record({
    sectorSize: fc.constantFrom(512, 1024, 4096),
    totalSectors: fc.integer({ min: 1, max: U32 }),
    heads: fc.integer({ min: 1, max: 255 }),
    spt: fc.integer({ min: 1, max: 63 }),
    extra: fc.integer({ min: 0, max: 12 }),
    bootcode: fc.option(fc.uint8Array({ maxLength: BSD_BOOT_AREA }), { nil: undefined }),
    parts: fc.uniqueArray(
      fc.record({
        letter: fc.constantFrom(...LETTERS),
        offset: fc.integer({ min: 0, max: U32 }),
        size: fc.integer({ min: 0, max: U32 }),
        fstype: fc.integer({ min: 0, max: 255 }),
        fsize: fc.integer({ min: 0, max: U32 }),
        frag: fc.integer({ min: 0, max: 255 }),
        cpg: fc.integer({ min: 0, max: 0xffff }),
      }),
      { selector: (p) => p.letter, maxLength: 19 },
    ),
  })
  .map((r) => {
    const highest = Math.max(2, ...r.parts.map((p) => p.letter.charCodeAt(0) - 0x61));
    const npartitions = Math.min(20, Math.max(8, highest + 1) + r.extra);
    return { ...r, npartitions };
  });

describe('BSD label codec', () => {
  it('parse(write(x)) = x for 8..20 partition slots', () => {
    fc.assert(
      fc.property(labelSpec, (s) => {
        const area = encodeBsdLabel({
          sectorSize: s.sectorSize,
          totalSectors: s.totalSectors,
          geometry: { heads: s.heads, sectorsPerTrack: s.spt },
          npartitions: s.npartitions,
          bootcode: s.bootcode,
          partitions: s.parts,
        });
        expect(area.length).toBe(Math.max(8192, 2 * s.sectorSize));
        if (s.bootcode) expect(area.subarray(0, Math.min(s.bootcode.length, s.sectorSize))).toEqual(s.bootcode.subarray(0, s.sectorSize));
        const label = decodeBsdLabel(area.subarray(s.sectorSize));
        expect(label).toMatchObject({
          secsize: s.sectorSize,
          nsectors: s.spt,
          ntracks: s.heads,
          secpercyl: s.heads * s.spt,
          ncylinders: Math.ceil(s.totalSectors / (s.heads * s.spt)),
          secperunit: s.totalSectors,
          npartitions: s.npartitions,
          bbsize: 8192,
          sbsize: 0,
          rpm: 3600,
          type: 0,
          typename: '',
          packname: '',
          checksumValid: true,
        });
        const expected: BsdPartition[] = [...s.parts, { letter: 'c', offset: 0, size: s.totalSectors, fstype: 0, fsize: 0, frag: 0, cpg: 0 }]
          .filter((p) => p.size > 0 || p.fstype !== 0)
          .sort((a, b) => a.letter.localeCompare(b.letter));
        expect(label.partitions).toEqual(expected);
      }),
    );
  });

  it('checksum is the XOR of the label words (dkcksum)', () => {
    const area = encodeBsdLabel({ sectorSize: 512, totalSectors: 1000, partitions: [{ letter: 'a', offset: 16, size: 900, fstype: 7 }] });
    const label = area.subarray(512, 512 + 148 + 8 * 16);
    let x = 0;
    for (let i = 0; i < label.length; i += 2) x ^= label[i] | (label[i + 1] << 8);
    expect(x).toBe(0); // including the stored checksum, the XOR is zero
    const damaged = area.slice(512);
    damaged[148 + 4] ^= 1; // a's offset
    expect(decodeBsdLabel(damaged).checksumValid).toBe(false);
  });

  it('rejects what a label cannot hold', () => {
    const base = { sectorSize: 512, totalSectors: 100, partitions: [] as { letter: string; offset: number; size: number; fstype: number }[] };
    expectFormatError(() => encodeBsdLabel({ ...base, partitions: [{ letter: 'c', offset: 0, size: 1, fstype: 7 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, partitions: [{ letter: 'u', offset: 0, size: 1, fstype: 7 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, npartitions: 21 }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, npartitions: 8, partitions: [{ letter: 'j', offset: 0, size: 1, fstype: 7 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, partitions: [{ letter: 'a', offset: U32 + 1, size: 1, fstype: 7 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, sectorSize: 1000 }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeBsdLabel({ ...base, bootcode: new Uint8Array(8193) }), 'INVALID_ARGUMENT');
    // 'j' lifts the default slot count to 10
    expect(decodeBsdLabel(encodeBsdLabel({ ...base, partitions: [{ letter: 'j', offset: 0, size: 1, fstype: 7 }] }).subarray(512)).npartitions).toBe(10);
  });

  it('parser errors: BAD_MAGIC, TRUNCATED, TOO_LARGE', () => {
    const good = encodeBsdLabel({ sectorSize: 512, totalSectors: 100, partitions: [] }).slice(512);
    expectFormatError(() => decodeBsdLabel(good.subarray(0, 100)), 'TRUNCATED');
    expectFormatError(() => decodeBsdLabel(good.subarray(0, 200)), 'TRUNCATED'); // 8 slots need 276
    const noMagic2 = good.slice();
    noMagic2[132] = 0;
    expectFormatError(() => decodeBsdLabel(noMagic2), 'BAD_MAGIC');
    expectFormatError(() => decodeBsdLabel(new Uint8Array(512)), 'BAD_MAGIC');
    const many = good.slice();
    many[138] = 21;
    expectFormatError(() => decodeBsdLabel(many), 'TOO_LARGE');
  });

  it('mutated labels: the parser throws only FormatError', () => {
    const good = encodeBsdLabel({
      sectorSize: 512,
      totalSectors: 10240,
      npartitions: 20,
      partitions: [
        { letter: 'a', offset: 16, size: 8192, fstype: 7 },
        { letter: 'b', offset: 8208, size: 256, fstype: 1 },
      ],
    }).slice(512, 1024);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(511), fc.integer({ min: 0, max: 255 })), { maxLength: 16 }), fc.nat(512), (edits, cut) => {
        const bytes = good.slice(0, cut);
        for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
        try {
          const label = decodeBsdLabel(bytes);
          expect(label.npartitions).toBeLessThanOrEqual(20);
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
    );
  });

  it('fstype names', () => {
    expect(BSD_MAGIC).toBe(0x82564557);
    expect(bsdFstypeName(7)).toBe('4.2BSD');
    expect(bsdFstypeName(1)).toBe('swap');
    expect(bsdFstypeName(0)).toBe('unused');
    expect(bsdFstypeName(27)).toBe('ZFS');
    expect(bsdFstypeName(14)).toBe('vinum');
    expect(bsdFstypeName(19)).toBeUndefined();
    expect(bsdFstypeName(200)).toBeUndefined();
    expect(BSD_FSTYPES['freebsd-ufs']).toBe(7);
    expect(BSD_FSTYPES['freebsd-swap']).toBe(1);
    expect(BSD_FSTYPES['freebsd-zfs']).toBe(27);
    expect(BSD_FSTYPES['4.2BSD']).toBe(7);
    expect(bsdFstypeByte('zfs')).toBe(27);
    expect(bsdFstypeByte('FREEBSD-UFS')).toBe(7);
    expect(bsdFstypeByte('42')).toBe(42);
    expect(bsdFstypeByte('nope')).toBeUndefined();
  });
});
