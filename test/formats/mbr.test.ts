import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { chsToLba, decodeChs, encodeChs, DEFAULT_GEOMETRY } from '../../formats/schemes/chs.js';
import { MBR_TYPES, mbrTypeByte, mbrTypeName } from '../../formats/schemes/mbr-types.js';
import {
  EXTENDED_TYPES,
  decodeMbrSector,
  walkEbrChain,
  encodeEbrChain,
  encodeMbrSector,
  encodeMbrTables,
  type MbrEntrySpec,
  type MbrTablesSpec,
} from '../../formats/schemes/mbr.js';
import { expectFormatError } from '../helpers/codec.js';

const U32 = 0xffffffff;

describe('CHS', () => {
  it('encodes like mkimg/sfdisk', () => {
    expect(encodeChs(0, DEFAULT_GEOMETRY)).toEqual([0, 1, 0]);
    expect(encodeChs(63, DEFAULT_GEOMETRY)).toEqual([1, 1, 0]);
    expect(encodeChs(16127, DEFAULT_GEOMETRY)).toEqual([0, 0x3f, 1]); // mkimg 63x255 golden end CHS
    expect(encodeChs(2048, DEFAULT_GEOMETRY)).toEqual([32, 33, 0]); // sfdisk's first 1 MiB partition
    expect(encodeChs(1024 * 255 * 63, DEFAULT_GEOMETRY)).toEqual([0xfe, 0xff, 0xff]); // clamped C1023 H254 S63
    expect(encodeChs(5, { heads: 1, sectorsPerTrack: 1 })).toEqual([0xff, 0xff, 0xff]);
    expect(encodeChs(5, { heads: 16, sectorsPerTrack: 1 })).toEqual([0xff, 0xff, 0xff]);
    expect(decodeChs([0xfe, 0xff, 0xff])).toEqual({ cylinder: 1023, head: 254, sector: 63 });
    expect(decodeChs(new Uint8Array([1, 0x41, 2]))).toEqual({ cylinder: 258, head: 1, sector: 1 });
    expectFormatError(() => encodeChs(0, { heads: 0, sectorsPerTrack: 63 }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeChs(0, { heads: 255, sectorsPerTrack: 64 }), 'INVALID_ARGUMENT');
  });

  it('decode(encode(lba)) names the same sector below cylinder 1024', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 255 }), fc.integer({ min: 2, max: 63 }), fc.nat(), (heads, spt, seed) => {
        const g = { heads, sectorsPerTrack: spt };
        const lba = seed % (1024 * heads * spt);
        expect(chsToLba(decodeChs(encodeChs(lba, g)), g)).toBe(lba);
      }),
    );
  });
});

describe('MBR type names', () => {
  it('maps names, aliases and raw forms', () => {
    expect(MBR_TYPES.freebsd).toBe(0xa5);
    expect(mbrTypeByte('FreeBSD')).toBe(0xa5);
    expect(mbrTypeByte('linux-data')).toBe(0x83);
    expect(mbrTypeByte('ebr')).toBe(0x05);
    expect(mbrTypeByte('fat32lba')).toBe(0x0c);
    expect(mbrTypeByte('efi')).toBe(0xef);
    expect(mbrTypeByte('protective')).toBe(0xee);
    expect(mbrTypeByte('0xa5')).toBe(0xa5);
    expect(mbrTypeByte('a5')).toBe(0xa5);
    expect(mbrTypeByte('83')).toBe(0x83);
    expect(mbrTypeByte('!165')).toBe(0xa5);
    expect(mbrTypeByte(165)).toBe(0xa5);
    expect(mbrTypeByte(256)).toBeUndefined();
    expect(mbrTypeByte('ms-basic-data')).toBeUndefined();
    expect(mbrTypeByte('0x1ff')).toBeUndefined();
    expect(mbrTypeName(0xa5)).toBe('freebsd');
    expect(mbrTypeName(0x0c)).toBe('fat32-lba');
    expect(mbrTypeName(0x05)).toBe('extended');
    expect(mbrTypeName(0x0f)).toBe('extended-lba');
    expect(mbrTypeName(0x99)).toBeUndefined();
    for (const [name, t] of Object.entries(MBR_TYPES)) expect(mbrTypeByte(name)).toBe(t);
    expect([...EXTENDED_TYPES].sort((a, b) => a - b)).toEqual([0x05, 0x0f, 0x85]);
  });
});

const entrySpec = fc.record({
  type: fc.integer({ min: 1, max: 255 }),
  startLba: fc.integer({ min: 0, max: U32 }),
  sectors: fc.integer({ min: 0, max: U32 }),
  active: fc.boolean(),
});

describe('MBR sector', () => {
  it('parse(write(x)) = x', () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(entrySpec, { nil: null }), { maxLength: 4 }),
        fc.option(fc.uint8Array({ maxLength: 512 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: U32 }), { nil: undefined }),
        fc.constantFrom({ heads: 255, sectorsPerTrack: 63 }, { heads: 16, sectorsPerTrack: 63 }, { heads: 1, sectorsPerTrack: 1 }),
        (entries, bootcode, diskSignature, geometry) => {
          const sector = encodeMbrSector({ entries, bootcode, diskSignature, geometry });
          expect(sector.length).toBe(512);
          const mbr = decodeMbrSector(sector);
          expect(mbr.hasBootSignature).toBe(true);
          const expectedBoot = new Uint8Array(446);
          if (bootcode) expectedBoot.set(bootcode.subarray(0, 446));
          expect(mbr.bootcode).toEqual(expectedBoot.subarray(0, 440));
          const bootSignature = expectedBoot[440] | (expectedBoot[441] << 8) | (expectedBoot[442] << 16) | (expectedBoot[443] << 24);
          expect(mbr.diskSignature).toBe(diskSignature ?? bootSignature >>> 0);
          for (let i = 0; i < 4; i++) {
            const e = entries[i];
            if (!e) {
              expect(mbr.entries[i]).toBeNull();
              continue;
            }
            const last = e.startLba + Math.max(0, e.sectors - 1);
            expect(mbr.entries[i]).toEqual({
              active: e.active,
              status: e.active ? 0x80 : 0,
              type: e.type,
              startLba: e.startLba,
              sectors: e.sectors,
              chsStart: encodeChs(e.startLba, geometry),
              chsEnd: encodeChs(last, geometry),
            });
          }
        },
      ),
    );
  });

  it('rejects what an MBR cannot hold', () => {
    const e = { type: 0x83, startLba: 1, sectors: 1 };
    expectFormatError(() => encodeMbrSector({ entries: [e, e, e, e, e] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrSector({ entries: [{ ...e, startLba: U32 + 1 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrSector({ entries: [{ ...e, sectors: -1 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrSector({ entries: [{ ...e, type: 256 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrSector({ entries: [], diskSignature: 2 ** 32 }), 'INVALID_ARGUMENT');
  });

  it('parser throws only FormatError TRUNCATED, and nothing on any 512 bytes', () => {
    expectFormatError(() => decodeMbrSector(new Uint8Array(511)), 'TRUNCATED');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        if (bytes.length < 512) expectFormatError(() => decodeMbrSector(bytes), 'TRUNCATED');
        else expect(decodeMbrSector(bytes).entries).toHaveLength(4);
      }),
    );
  });
});

/** A random valid layout: primaries first, then an extended partition holding the logicals. */
const tablesSpec: fc.Arbitrary<MbrTablesSpec> = fc
  .record({
    primaries: fc.array(
      fc.record({
        gap: fc.integer({ min: 1, max: 5000 }),
        size: fc.integer({ min: 1, max: 100000 }),
        type: fc.constantFrom(0x83, 0xa5, 0x0c, 0x07),
        active: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
    lead: fc.integer({ min: 0, max: 100 }),
    logicals: fc.array(
      fc.record({
        gap: fc.integer({ min: 1, max: 4096 }),
        size: fc.integer({ min: 1, max: 100000 }),
        after: fc.integer({ min: 0, max: 100 }),
        type: fc.constantFrom(0x83, 0x82, 0x07, 0xa5),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    tail: fc.integer({ min: 0, max: 100 }),
    slotFirst: fc.boolean(),
    signature: fc.integer({ min: 0, max: U32 }),
  })
  .map(({ primaries, lead, logicals, tail, slotFirst, signature }) => {
    let lba = 0;
    const prims: MbrEntrySpec[] = primaries.map((p) => {
      lba += p.gap;
      const spec = { type: p.type, startLba: lba, sectors: p.size, active: p.active };
      lba += p.size;
      return spec;
    });
    const extStart = lba + lead + 1;
    lba = extStart;
    const logs = logicals.map((l) => {
      const ebrLba = lba;
      const spec = { type: l.type, startLba: ebrLba + l.gap, sectors: l.size, ebrLba };
      lba = spec.startLba + l.size + l.after;
      return spec;
    });
    return {
      diskSignature: signature,
      primaries: prims,
      extended: { startLba: extStart, sectors: lba + tail - extStart, slot: slotFirst ? 1 : undefined },
      logicals: logs,
    };
  });

function sectorMap(sectors: Array<{ lba: number; bytes: Uint8Array }>): Map<number, Uint8Array> {
  return new Map(sectors.map((s) => [s.lba, s.bytes]));
}

describe('MBR with logical partitions', () => {
  it('walkEbrChain(encodeMbrTables(x)) gives back the logicals; the MBR the primaries and extended', () => {
    fc.assert(
      fc.property(tablesSpec, (spec) => {
        const written = encodeMbrTables(spec);
        expect(written[0].lba).toBe(0);
        expect(written).toHaveLength(1 + spec.logicals!.length);
        const map = sectorMap(written);
        const mbr = decodeMbrSector(map.get(0)!);
        const used = mbr.entries.filter((e) => e !== null);
        expect(used).toHaveLength(spec.primaries.length + 1);
        const ext = mbr.entries.find((e) => e && EXTENDED_TYPES.has(e.type))!;
        expect(ext).toMatchObject({ type: 0x05, startLba: spec.extended!.startLba, sectors: spec.extended!.sectors });
        if (spec.extended!.slot === 1) expect(mbr.entries[0]).toBe(ext);
        const prims = mbr.entries.filter((e) => e && !EXTENDED_TYPES.has(e.type));
        expect(prims.map((e) => [e!.type, e!.startLba, e!.sectors, e!.active])).toEqual(spec.primaries.map((p) => [p.type, p.startLba, p.sectors, !!p.active]));
        const chain = walkEbrChain((lba) => map.get(lba), spec.extended!.startLba);
        expect(chain.map((l) => [l.ebrLba, l.entry.type, l.entry.startLba, l.entry.sectors])).toEqual(
          spec.logicals!.map((l) => [l.ebrLba, l.type, l.startLba, l.sectors]),
        );
      }),
    );
  });

  it('walkEbrChain(encodeEbrChain(x)) from sector 0 gives back the logicals of a bare chain (mkimg -s ebr)', () => {
    fc.assert(
      fc.property(tablesSpec, (spec) => {
        // The same logicals moved so that their extended partition starts at sector 0.
        const shift = spec.extended!.startLba;
        const logicals = spec.logicals!.map((l) => ({ ...l, ebrLba: l.ebrLba - shift, startLba: l.startLba - shift }));
        const written = encodeEbrChain({ start: 0, sectors: spec.extended!.sectors, logicals });
        expect(written.map((w) => w.lba)).toEqual(logicals.map((l) => l.ebrLba));
        const map = sectorMap(written);
        const chain = walkEbrChain((lba) => map.get(lba), 0);
        expect(chain.map((l) => [l.ebrLba, l.entry.type, l.entry.startLba, l.entry.sectors])).toEqual(
          logicals.map((l) => [l.ebrLba, l.type, l.startLba, l.sectors]),
        );
        // encodeMbrTables stores the same relative starts and sizes (only the absolute CHS differ).
        const viaMbr = sectorMap(encodeMbrTables(spec));
        const stored = (sector: Uint8Array) => decodeMbrSector(sector).entries.map((e) => e && [e.type, e.startLba, e.sectors]);
        for (const [i, l] of spec.logicals!.entries()) expect(stored(viaMbr.get(l.ebrLba)!)).toEqual(stored(written[i].bytes));
      }),
    );
  });

  it('writes the link entry the way sfdisk does', () => {
    const out = encodeMbrTables({
      primaries: [{ type: 0x83, startLba: 2048, sectors: 2048 }],
      logicals: [
        { type: 0x83, startLba: 8192, sectors: 2048, ebrLba: 6144 },
        { type: 0x82, startLba: 12288, sectors: 4096, ebrLba: 10240 },
      ],
    });
    const ebr1 = decodeMbrSector(out[1].bytes);
    expect(out[1].lba).toBe(6144);
    expect(ebr1.entries[0]).toMatchObject({ type: 0x83, startLba: 2048, sectors: 2048 });
    expect(ebr1.entries[1]).toMatchObject({ type: 0x05, startLba: 10240 - 6144, sectors: 12288 + 4096 - 10240 });
    expect(decodeMbrSector(out[2].bytes).entries[1]).toBeNull();
    expect(decodeMbrSector(out[0].bytes).entries[1]).toMatchObject({ type: 0x05, startLba: 6144, sectors: 16384 - 6144 });
  });

  it('an extended partition without logicals gets an empty EBR', () => {
    const out = encodeMbrTables({ primaries: [], extended: { startLba: 2048, sectors: 4096, type: 0x0f } });
    expect(out.map((s) => s.lba)).toEqual([0, 2048]);
    expect(walkEbrChain((lba) => sectorMap(out).get(lba), 2048)).toEqual([]);
    expect(decodeMbrSector(out[0].bytes).entries[0]).toMatchObject({ type: 0x0f });
  });

  it('rejects layouts that do not fit', () => {
    const p = { type: 0x83, startLba: 100, sectors: 10 };
    const l = { type: 0x83, startLba: 2048, sectors: 10, ebrLba: 2000 };
    expectFormatError(() => encodeMbrTables({ primaries: [p, p, p, p, p] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [p, p, p, p], logicals: [l] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], extended: { startLba: 2000, sectors: 20 }, logicals: [l] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], extended: { startLba: 1000, sectors: 5000 }, logicals: [l] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], logicals: [{ ...l, ebrLba: 2048 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], logicals: [l, { ...l, startLba: 2100 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], logicals: [{ ...l, startLba: U32 + 5, ebrLba: U32 + 1 }] }), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeMbrTables({ primaries: [], extended: { startLba: 1, sectors: 10, type: 0x83 } }), 'INVALID_ARGUMENT');
  });
});

/** An EBR holding a logical at +rel and, if given, a link to extStart + link. */
function ebr(link: number | null, rel = 1, size = 10): Uint8Array {
  const entries: (MbrEntrySpec | null)[] = [{ type: 0x83, startLba: rel, sectors: size }];
  if (link !== null) entries.push({ type: 0x05, startLba: link, sectors: size + rel });
  return encodeMbrSector({ entries });
}

describe('EBR chain walking is bounded', () => {
  it('an EBR linking to itself -> LOOP', () => {
    expectFormatError(() => walkEbrChain((lba) => (lba === 100 ? ebr(0) : undefined), 100), 'LOOP');
  });

  it('an EBR linking back to an earlier one -> LOOP', () => {
    const map = new Map([
      [100, ebr(20)],
      [120, ebr(40)],
      [140, ebr(20)],
    ]);
    let reads = 0;
    expectFormatError(() => walkEbrChain((lba) => (reads++, map.get(lba)), 100), 'LOOP');
    expect(reads).toBe(3);
  });

  it('an endless chain stops at maxLogicals -> TOO_LARGE', () => {
    let reads = 0;
    expectFormatError(() => walkEbrChain((lba) => (reads++, ebr(lba - 100 + 20)), 100), 'TOO_LARGE');
    expect(reads).toBe(128);
    reads = 0;
    expectFormatError(() => walkEbrChain((lba) => (reads++, ebr(lba - 100 + 20)), 100, 5), 'TOO_LARGE');
    expect(reads).toBe(5);
  });

  it('a missing sector -> TRUNCATED; an EBR without 0x55AA ends the chain', () => {
    expectFormatError(() => walkEbrChain((lba) => (lba === 100 ? ebr(20) : undefined), 100), 'TRUNCATED');
    const noSig = ebr(null);
    noSig[510] = 0;
    expect(walkEbrChain((lba) => (lba === 100 ? ebr(20) : noSig), 100)).toHaveLength(1);
  });

  it('random sectors: walkEbrChain throws only FormatError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 512, maxLength: 512 }), { minLength: 1, maxLength: 8 }), fc.nat(1000), (sectors, start) => {
        for (const s of sectors) {
          s[510] = 0x55;
          s[511] = 0xaa;
        }
        expectFormatError(() => walkEbrChain((lba) => sectors[lba % sectors.length], start, 64));
      }),
    );
  });
});
