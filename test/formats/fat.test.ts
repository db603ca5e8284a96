import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import {
  chooseFatGeometry,
  decodeBootSector,
  encodeBootSector,
  FAT16_MIN_CLUSTERS,
  FAT32_MIN_CLUSTERS,
  FAT12_MAX_CLUSTERS,
} from '../../formats/fs/fat-boot.js';
import { decodeFsInfo, encodeFsInfo } from '../../formats/fs/fat-fsinfo.js';
import {
  decodeDirEntries,
  dosDateTime,
  encodeLongEntries,
  encodeShortEntry,
  entriesFor,
  fromDosDateTime,
  lfnChecksum,
  ATTR_ARCHIVE,
} from '../../formats/fs/fat-dir.js';
import {
  assignShortNames,
  basisName,
  exactShortName,
  caseFoldName,
  normalizeLabel,
  shortNameBytes,
  validateLongName,
  NT_LOWER_BASE,
  NT_LOWER_EXT,
} from '../../formats/fs/fat-names.js';
import {
  encodeContiguousFat,
  endOfChainMark,
  fatBytesFor,
  encodeFatEntries,
  reservedEntries,
  decodeFatEntries,
  type FatBits,
} from '../../formats/fs/fat-table.js';

/** fatgen103 section 7's ChkSum(), transcribed literally, as an independent reference. */
function referenceChecksum(name: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((sum & 1 ? 0x80 : 0) + (sum >> 1) + name[i]) & 0xff;
  return sum;
}

const longNameArb = fc
  .array(fc.oneof(fc.constantFrom(...'abcXYZ019 .-_+,;=[]éß日本語'.split('')), fc.constantFrom('🎉', 'Ω')), { minLength: 1, maxLength: 40 })
  .map((a) => a.join(''))
  .filter((n) => {
    try {
      validateLongName(n);
      return true;
    } catch {
      return false;
    }
  });

describe('FAT table entries', () => {
  for (const bits of [12, 16, 32] as FatBits[]) {
    it(`FAT${bits} pack/unpack round trip`, () => {
      const max = bits === 12 ? 0xfff : bits === 16 ? 0xffff : 0x0fffffff;
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max }), { minLength: 1, maxLength: 300 }), (values) => {
          const bytes = new Uint8Array(fatBytesFor(bits, values.length));
          encodeFatEntries(bits, values, bytes);
          expect(Array.from(decodeFatEntries(bits, bytes, values.length))).toEqual(values);
        }),
      );
    });
  }
  it('packs FAT12 pairs as fatgen103 describes (entry N at byte N + N/2)', () => {
    const bytes = new Uint8Array(3);
    encodeFatEntries(12, [0xabc, 0x123], bytes);
    expect(Array.from(bytes)).toEqual([0xbc, 0x3a, 0x12]);
  });
  it('refuses short FAT bytes with FormatError', () => {
    expect(() => decodeFatEntries(16, new Uint8Array(3), 2)).toThrow(FormatError);
  });
  it('encodeContiguousFat gives the bytes of encodeFatEntries for the same chains (property, aligned and unaligned buffers)', () => {
    const chainsArb = fc.record({
      bits: fc.constantFrom<FatBits>(12, 16, 32),
      media: fc.constantFrom(0xf8, 0xf0),
      gaps: fc.array(fc.record({ gap: fc.nat(5), count: fc.integer({ min: 1, max: 40 }) }), { maxLength: 25 }),
      shift: fc.constantFrom(0, 1, 2),
    });
    fc.assert(
      fc.property(chainsArb, ({ bits, media, gaps, shift }) => {
        const chains: [number, number][] = [];
        let next = 2;
        for (const { gap, count } of gaps) {
          chains.push([next + gap, count]);
          next += gap + count;
        }
        const values = new Array<number>(next).fill(0);
        [values[0], values[1]] = reservedEntries(bits, media);
        for (const [first, count] of chains) {
          for (let k = first; k < first + count - 1; k++) values[k] = k + 1;
          values[first + count - 1] = endOfChainMark(bits);
        }
        const expected = new Uint8Array(fatBytesFor(bits, next));
        encodeFatEntries(bits, values, expected);
        const backing = new Uint8Array(expected.length + shift + 8); // shift: a view not aligned to the entry size
        const out = backing.subarray(shift, shift + expected.length + 8);
        encodeContiguousFat(bits, media, chains, out);
        expect(Buffer.from(out.subarray(0, expected.length)).equals(Buffer.from(expected))).toBe(true);
        expect(out.subarray(expected.length).every((b) => b === 0)).toBe(true);
      }),
    );
  });
  it('encodeContiguousFat refuses chains outside the cluster range and short buffers with FormatError', () => {
    expect(() => encodeContiguousFat(16, 0xf8, [[1, 3]], new Uint8Array(64))).toThrow(FormatError);
    expect(() => encodeContiguousFat(12, 0xf8, [[0xff0, 8]], new Uint8Array(8192))).toThrow(FormatError);
    expect(() => encodeContiguousFat(32, 0xf8, [[2, 0]], new Uint8Array(64))).toThrow(FormatError);
    expect(() => encodeContiguousFat(32, 0xf8, [[2, 100]], new Uint8Array(64))).toThrow(FormatError);
  });
});

describe('FAT geometry (mkfs.fat rules)', () => {
  it('chooses FAT12 for small, FAT16 for medium and FAT32 from 512 MiB', () => {
    expect(chooseFatGeometry({ totalSectors: 2048, sectorSize: 512, bits: 'auto' }).bits).toBe(12);
    expect(chooseFatGeometry({ totalSectors: 64 * 2048, sectorSize: 512, bits: 'auto' }).bits).toBe(16);
    const big = chooseFatGeometry({ totalSectors: 1024 * 2048, sectorSize: 512, bits: 'auto' });
    expect(big.bits).toBe(32);
    expect(big.sectorsPerCluster).toBe(8); // > 260 MiB: 4 KiB clusters
    expect(big.reservedSectors).toBe(32);
  });
  it('keeps every type inside its cluster-count range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 4_000_000 }),
        fc.constantFrom<'auto' | FatBits>('auto', 12, 16, 32),
        fc.constantFrom(512, 4096),
        (sectors, bits, ss) => {
          let g;
          try {
            g = chooseFatGeometry({ totalSectors: sectors, sectorSize: ss, bits });
          } catch (err) {
            expect(err).toBeInstanceOf(FormatError);
            return;
          }
          if (bits !== 'auto') expect(g.bits).toBe(bits);
          if (g.bits === 12) expect(g.clusters).toBeLessThanOrEqual(FAT12_MAX_CLUSTERS);
          if (g.bits === 16) expect(g.clusters).toBeGreaterThanOrEqual(FAT16_MIN_CLUSTERS);
          if (g.bits === 32) expect(g.clusters).toBeGreaterThanOrEqual(FAT32_MIN_CLUSTERS);
          const meta = g.reservedSectors + 2 * g.fatSectors + Math.ceil((g.rootEntries * 32) / ss);
          expect(meta + g.clusters * g.sectorsPerCluster).toBeLessThanOrEqual(sectors);
          expect(Math.floor((g.fatSectors * ss * 8) / g.bits)).toBeGreaterThanOrEqual(g.clusters + 2);
          // The reader derives the same type from the cluster count alone.
          const boot = encodeBootSector({ geometry: g, oemName: 'DISKMINT', serial: 1, label: 'NO NAME    ' });
          expect(decodeBootSector(boot).geometry).toEqual(g);
        },
      ),
      { numRuns: 200 },
    );
  });
  it('refuses impossible combinations with a clear FormatError', () => {
    expect(() => chooseFatGeometry({ totalSectors: 4096, sectorSize: 512, bits: 32 })).toThrow(/FAT32 needs at least 65525 clusters/);
    expect(() => chooseFatGeometry({ totalSectors: 256, sectorSize: 512, bits: 16 })).toThrow(/FAT16 needs/);
    expect(() => chooseFatGeometry({ totalSectors: 8 * 1024 * 1024, sectorSize: 512, bits: 12 })).toThrow(/FAT12 holds at most/);
    expect(() => chooseFatGeometry({ totalSectors: 8192, sectorSize: 512, bits: 'auto', sectorsPerCluster: 3 })).toThrow(FormatError);
  });
});

describe('FAT boot sector and FSInfo', () => {
  it('round trips the BPB fields, with signature and extended boot signature', () => {
    const g = { ...chooseFatGeometry({ totalSectors: 70000 * 8, sectorSize: 4096, bits: 32 }), hiddenSectors: 2048 };
    const bytes = encodeBootSector({ geometry: g, oemName: 'DISKMINT', serial: 0x12345678, label: 'MYVOL      ' });
    expect(bytes.length).toBe(4096);
    expect([bytes[510], bytes[511]]).toEqual([0x55, 0xaa]);
    expect(bytes[0]).toBe(0xeb);
    const d = decodeBootSector(bytes);
    expect(d.geometry).toEqual(g);
    expect(d.serial).toBe(0x12345678);
    expect(d.label).toBe('MYVOL      ');
    expect(d.fsTypeText).toBe('FAT32   ');
    expect(d.backupBootSector).toBe(6);
    expect(d.fsInfoSector).toBe(1);
    expect(d.oemName).toBe('DISKMINT');
  });
  it('FSInfo round trip', () => {
    const s = encodeFsInfo({ freeCount: 1234, nextFree: 99 }, 512);
    expect(decodeFsInfo(s)).toEqual({ freeCount: 1234, nextFree: 99 });
    s[0] = 0;
    expect(decodeFsInfo(s)).toBeUndefined();
  });
  it('decodeBootSector throws only FormatError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        try {
          decodeBootSector(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('FAT names', () => {
  it('LFN checksum matches fatgen103 ChkSum()', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 11, maxLength: 11 }), (name) => {
        expect(lfnChecksum(name)).toBe(referenceChecksum(name));
      }),
    );
  });
  it('folds and maps names by code point, the ASCII fast paths included (property)', () => {
    // The rules spelled out one code point at a time, as fatgen103 states them.
    const SPECIALS = "$%'-_@~`!(){}^#&";
    const shortChar = (ch: string) => ch.length === 1 && (/[A-Z0-9]/.test(ch) || SPECIALS.includes(ch));
    const foldByCodePoint = (name: string) => [...name].map((ch) => (ch.toUpperCase().length === ch.length ? ch.toUpperCase() : ch)).join('');
    const nameArb = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'aZ09.~ _+$ß日é'.split('')), maxLength: 14 }),
      fc.string({ unit: 'binary', maxLength: 14 }),
      fc.string({ maxLength: 14 }),
    );
    fc.assert(
      fc.property(nameArb, (name) => {
        expect(caseFoldName(name)).toBe(foldByCodePoint(name));
        const exact = exactShortName(name);
        if (exact) expect([...name].every((ch) => ch === '.' || shortChar(ch.toUpperCase()))).toBe(true);
        const dot = name.indexOf('.');
        const base = dot < 0 ? name : name.slice(0, dot);
        const ext = dot < 0 ? '' : name.slice(dot + 1);
        const shapeOk = base.length >= 1 && base.length <= 8 && ext.length <= 3 && !ext.includes('.') && !(dot >= 0 && ext.length === 0);
        if (shapeOk && [...name].every((ch) => ch === '.' || shortChar(ch.toUpperCase()))) expect(exact).toBeDefined();
        const b = basisName(name);
        expect(`${b.base}${b.ext}`).toMatch(/^[A-Z0-9$%'\-_@~`!(){}^#&]*$/);
      }),
    );
  });
  it('generates Windows-style aliases', () => {
    const names = ['longname1.txt', 'longname2.txt', 'longname3.txt', 'longname4.txt', 'longname5.txt', 'longname6.txt'];
    expect(assignShortNames(names).map((p) => p.name11)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `LONGNA~${n}TXT`));
    expect(basisName('a.b.c')).toEqual({ base: 'AB', ext: 'C' });
    expect(basisName('.bashrc')).toEqual({ base: 'BASHRC', ext: '' });
    expect(basisName('My File+1.html')).toEqual({ base: 'MYFILE_1', ext: 'HTM' });
    expect(assignShortNames(['日本語.txt'])[0].name11).toBe('___~1   TXT');
    // An exact 8.3 name keeps its name even when a generated alias would have wanted it.
    const plans = assignShortNames(['longnames.txt', 'LONGNA~1.TXT']);
    expect(plans.map((p) => p.name11)).toEqual(['LONGNA~2TXT', 'LONGNA~1TXT']);
    expect(assignShortNames(Array.from({ length: 12 }, (_, i) => `averylongname${i}.dat`))[11].name11).toBe('AVERY~12DAT');
  });
  it('aliases are the smallest free ~N for each name in turn, as the plain search gives (property)', () => {
    // The search the generator shortcuts: for each name, N = 1, 2, ... until the alias is free.
    const plainSearch = (names: string[]) => {
      const taken = new Set(names.map((n) => exactShortName(n)?.name11).filter((x) => x !== undefined));
      return names.map((name) => {
        const exact = exactShortName(name);
        if (exact) return exact.name11;
        const { base, ext } = basisName(name);
        for (let n = 1; ; n++) {
          const name11 = (base.slice(0, 8 - `~${n}`.length) + `~${n}`).padEnd(8, ' ') + ext.padEnd(3, ' ');
          if (!taken.has(name11)) return (taken.add(name11), name11);
        }
      });
    };
    // Few stems and tails: many collisions, with exact 8.3 names (LONGNA~3.TXT) mixed in.
    const name = fc
      .tuple(fc.constantFrom('longname', 'LONGNA~', 'long name', 'longnames', 'a', 'Ab'), fc.nat(14), fc.constantFrom('.txt', '.TXT', '', '.html'))
      .map(([stem, n, ext]) => `${stem}${n}${ext}`);
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 60, selector: (n) => caseFoldName(n) }), (names) => {
        expect(assignShortNames(names).map((p) => p.name11)).toEqual(plainSearch(names));
      }),
      { numRuns: 300 },
    );
  });
  it('8.3 names: upper case as is, lower case with NT case bits, mixed case with an LFN', () => {
    expect(exactShortName('README.TXT')).toEqual({ name11: 'README  TXT', ntCase: 0 });
    expect(exactShortName('hello.txt')).toEqual({ name11: 'HELLO   TXT', ntCase: NT_LOWER_BASE | NT_LOWER_EXT });
    expect(exactShortName('HELLO.txt')).toEqual({ name11: 'HELLO   TXT', ntCase: NT_LOWER_EXT });
    expect(exactShortName('Mixed.Txt')).toEqual({ name11: 'MIXED   TXT', ntCase: 0, longName: 'Mixed.Txt' });
    expect(exactShortName('toolongname.txt')).toBeUndefined();
    expect(exactShortName('a+b.txt')).toBeUndefined();
    expect(exactShortName('a.b.c')).toBeUndefined();
  });
  it('aliases are unique, legal and 11 bytes', () => {
    fc.assert(
      fc.property(fc.uniqueArray(longNameArb, { maxLength: 30, selector: (n) => n.toUpperCase() }), (names) => {
        const plans = assignShortNames(names);
        const set = new Set(plans.map((p) => p.name11));
        expect(set.size).toBe(names.length);
        for (const p of plans) {
          expect(p.name11).toMatch(/^[A-Z0-9$%'\-_@~`!(){}^#& ]{11}$/);
          expect(p.name11[0]).not.toBe(' ');
        }
      }),
    );
  });
  it('long names round trip through LFN entries (checksummed) and back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(longNameArb, { minLength: 1, maxLength: 12, selector: (n) => n.toUpperCase() }), (names) => {
        const plans = assignShortNames(names);
        const bytes = new Uint8Array(plans.reduce((n, p) => n + entriesFor(p), 0) * 32 + 32);
        let at = 0;
        plans.forEach((p, i) => {
          if (p.longName) at += encodeLongEntries(bytes, at, p.longName, p.name11) * 32;
          encodeShortEntry(bytes, at, { name11: p.name11, ntCase: p.ntCase, attr: ATTR_ARCHIVE, cluster: i + 2, size: i, mtime: new Date(0) });
          at += 32;
        });
        const decoded = decodeDirEntries(bytes);
        expect(decoded.map((d) => d.name)).toEqual(names);
        expect(decoded.every((d) => !d.badLfn)).toBe(true);
        expect(decoded.map((d) => d.cluster)).toEqual(names.map((_, i) => i + 2));
      }),
    );
  });
  it('an LFN whose checksum does not match falls back to the short name', () => {
    const bytes = new Uint8Array(4 * 32);
    const n = encodeLongEntries(bytes, 0, 'a long file name.txt', 'ALONGF~1TXT');
    encodeShortEntry(bytes, n * 32, { name11: 'OTHER   TXT', attr: ATTR_ARCHIVE, cluster: 0, size: 0, mtime: new Date(0) });
    const [e] = decodeDirEntries(bytes);
    expect(e.name).toBe('OTHER.TXT');
    expect(e.badLfn).toBe(true);
    expect(lfnChecksum(shortNameBytes('ALONGF~1TXT'))).toBe(bytes[13]);
  });
  it('refuses names FAT cannot hold', () => {
    for (const bad of ['', '.', '..', 'a'.repeat(256), 'a:b', 'a*b', 'q?', 'x<y', 'p|q', 'back\\slash', 'quo"te', 'ctl\x01', 'dot.', 'space ']) {
      expect(() => validateLongName(bad), JSON.stringify(bad)).toThrow(FormatError);
    }
    expect(() => validateLongName('a'.repeat(255))).not.toThrow();
  });
  it('decodeDirEntries never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        for (const e of decodeDirEntries(bytes, { withLabels: true })) expect(typeof e.name).toBe('string');
      }),
    );
  });
});

describe('FAT timestamps and labels', () => {
  it('DOS date/time round trip at 2-second resolution, clamped to 1980..2107', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1980-01-01T00:00:00Z'), max: new Date('2107-12-31T23:59:58Z'), noInvalidDate: true }), (d) => {
        const { date, time } = dosDateTime(d);
        const back = fromDosDateTime(date, time);
        expect(Math.floor(d.getTime() / 2000) * 2000).toBe(back.getTime());
      }),
    );
    expect(dosDateTime(new Date('1970-01-01T00:00:00Z'))).toEqual({ date: 0x21, time: 0, tenths: 0 });
  });
  it('labels are validated and upper-cased', () => {
    expect(normalizeLabel('boot')).toBe('BOOT       ');
    expect(() => normalizeLabel('TOOLONGLABEL')).toThrow(/11/);
    expect(() => normalizeLabel('A*B')).toThrow(FormatError);
    expect(() => normalizeLabel(' LEAD')).toThrow(FormatError);
  });
});
