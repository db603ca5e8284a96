import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { crc32 } from '../../formats/common/crc32.js';
import {
  GPT_MAX_ENTRIES,
  GPT_SIGNATURE,
  gptEntryArrayBytes,
  gptUsableRange,
  decodeGptEntries,
  decodeGptHeader,
  encodeGptTables,
  type GptPartitionEntry,
  type GptTablesSpec,
} from '../../formats/schemes/gpt.js';
import { GPT_ATTRIBUTE_BITS, encodeGptAttributes, gptAttributeNames } from '../../formats/schemes/gpt-attributes.js';
import { GPT_TYPES, gptTypeGuid, gptTypeName } from '../../formats/schemes/gpt-types.js';

const U64_MAX = (1n << 64n) - 1n;
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const guidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
});
const typeGuidArb = guidArb.filter((g) => g !== '00000000-0000-0000-0000-000000000000');
/** Any UTF-16 code unit but NUL (the name terminator): lone surrogates and non-ASCII included. */
const nameArb = fc.string({ unit: fc.integer({ min: 1, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 36 });

/** Random valid table specs: disjoint partitions laid out in order, random slots. */
const specArb: fc.Arbitrary<GptTablesSpec> = fc
  .record({
    sectorSize: fc.constantFrom(512, 4096),
    entryCount: fc.integer({ min: 4, max: 256 }),
    slack: fc.integer({ min: 1, max: 5000 }),
    diskGuid: guidArb,
    parts: fc.array(
      fc.record({
        gap: fc.integer({ min: 0, max: 100 }),
        length: fc.integer({ min: 1, max: 2000 }),
        typeGuid: typeGuidArb,
        guid: guidArb,
        attributes: fc.bigInt({ min: 0n, max: U64_MAX }),
        name: nameArb,
      }),
      { maxLength: 6 },
    ),
    explicitIndex: fc.boolean(),
    seed: fc.integer(),
  })
  .map(({ sectorSize, entryCount, slack, diskGuid, parts, explicitIndex, seed }) => {
    const { firstUsableLba, entrySectors } = gptUsableRange(sectorSize, 1_000_000, entryCount);
    let next = firstUsableLba;
    // Distinct slots chosen by a simple permutation of 1..entryCount.
    const slots = Array.from({ length: entryCount }, (_, i) => i + 1);
    let s = seed >>> 0;
    for (let i = slots.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) >>> 0;
      const j = s % (i + 1);
      [slots[i], slots[j]] = [slots[j], slots[i]];
    }
    const partitions = parts.slice(0, entryCount).map((p, i) => {
      const firstLba = next + p.gap;
      const lastLba = firstLba + p.length - 1;
      next = lastLba + 1;
      const { gap: _g, length: _l, ...rest } = p;
      return explicitIndex ? { ...rest, firstLba, lastLba, index: slots[i] } : { ...rest, firstLba, lastLba };
    });
    const totalSectors = next + slack + 1 + entrySectors;
    return { sectorSize, totalSectors, diskGuid, entryCount, partitions };
  });

function expectedEntries(spec: GptTablesSpec): GptPartitionEntry[] {
  return spec.partitions
    .map((p, i) => ({ ...p, index: p.index ?? i + 1 }))
    .sort((a, b) => a.index - b.index)
    .map((p) => ({ index: p.index, typeGuid: p.typeGuid, guid: p.guid, firstLba: p.firstLba, lastLba: p.lastLba, attributes: p.attributes, name: p.name }));
}

function expectOnlyFormatError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
  }
}

const ufs = GPT_TYPES['freebsd-ufs'];
const baseSpec = (): GptTablesSpec => ({
  sectorSize: 512,
  totalSectors: 4096,
  diskGuid: '01234567-89ab-cdef-0123-456789abcdef',
  partitions: [{ typeGuid: ufs, guid: 'aaaaaaaa-0000-0000-0000-000000000001', firstLba: 40, lastLba: 99, attributes: 0n, name: 'a' }],
});

describe('GPT codec round trip', () => {
  it('parse(write(x)) gives back x for random partition sets (512 and 4096 sectors)', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const t = encodeGptTables(spec);
        const ss = spec.sectorSize;
        const last = spec.totalSectors - 1;
        const primary = decodeGptHeader(t.primary.bytes.subarray(0, ss));
        expect(primary).toEqual({ ...t.header, headerCrcValid: true });
        expect(primary.myLba).toBe(1);
        expect(primary.alternateLba).toBe(last);
        expect(primary.entriesLba).toBe(2);
        expect(primary.diskGuid).toBe(spec.diskGuid);
        expect(primary.entryCount).toBe(spec.entryCount);
        const backupHeaderAt = t.backup.bytes.length - ss;
        const backup = decodeGptHeader(t.backup.bytes.subarray(backupHeaderAt));
        expect(backup.headerCrcValid).toBe(true);
        expect(backup.myLba).toBe(last);
        expect(backup.alternateLba).toBe(1);
        expect(backup.entriesLba).toBe(t.backup.lba);
        expect(t.backup.lba + backupHeaderAt / ss).toBe(last);
        const want = expectedEntries(spec);
        const p = decodeGptEntries(t.primary.bytes.subarray(ss), primary);
        const b = decodeGptEntries(t.backup.bytes.subarray(0, backupHeaderAt), backup);
        expect(p).toEqual({ entries: want, crcValid: true });
        expect(b).toEqual({ entries: want, crcValid: true });
      }),
      { numRuns: 150 },
    );
  });

  it('places the arrays as the spec says', () => {
    expect(gptUsableRange(512, 1000, 128)).toEqual({ firstUsableLba: 34, lastUsableLba: 966, entrySectors: 32 });
    expect(gptUsableRange(4096, 1000, 128)).toEqual({ firstUsableLba: 6, lastUsableLba: 994, entrySectors: 4 });
    expect(gptUsableRange(512, 1000, 4)).toEqual({ firstUsableLba: 3, lastUsableLba: 997, entrySectors: 1 });
    expect(gptUsableRange(512, 1000, 5).entrySectors).toBe(2);
    const t = encodeGptTables(baseSpec());
    expect(t.primary.lba).toBe(1);
    expect(t.primary.bytes.length).toBe(33 * 512);
    expect(t.backup.lba).toBe(4096 - 33);
    expect(t.backup.bytes.length).toBe(33 * 512);
    expect(new TextDecoder().decode(t.primary.bytes.subarray(0, 8))).toBe(GPT_SIGNATURE);
    expect(t.header.headerSize).toBe(92);
    expect(t.header.revision).toBe(0x10000);
    expect(gptEntryArrayBytes(t.header)).toBe(128 * 128);
  });

  it('writes the attribute field at entry byte 48 and the name at 56 (UTF-16LE)', () => {
    const spec = baseSpec();
    spec.partitions[0].attributes = 1n << 59n;
    spec.partitions[0].name = 'é';
    const t = encodeGptTables(spec);
    const entry = t.primary.bytes.subarray(512, 640);
    expect(new DataView(entry.buffer, entry.byteOffset).getBigUint64(48, true)).toBe(1n << 59n);
    expect([...entry.subarray(56, 60)]).toEqual([0xe9, 0, 0, 0]);
    expect([...entry.subarray(0, 4)]).toEqual([0xb6, 0x7c, 0x6e, 0x51]); // mixed-endian type GUID
  });
});

describe('GPT writer rejects what the format cannot hold', () => {
  const cases: Array<[string, (s: GptTablesSpec) => void]> = [
    ['before the usable area', (s) => (s.partitions[0].firstLba = 33)],
    ['after the usable area', (s) => (s.partitions[0].lastLba = 4096 - 33)],
    ['reversed range', (s) => ((s.partitions[0].firstLba = 90), (s.partitions[0].lastLba = 80))],
    ['overlap', (s) => s.partitions.push({ ...s.partitions[0], firstLba: 99, lastLba: 120 })],
    ['name longer than 36 code units', (s) => (s.partitions[0].name = 'x'.repeat(37))],
    ['duplicate index', (s) => s.partitions.push({ ...s.partitions[0], firstLba: 200, lastLba: 210, index: 1 })],
    ['index beyond entry count', (s) => ((s.entryCount = 4), (s.partitions[0].index = 5))],
    ['zero type GUID', (s) => (s.partitions[0].typeGuid = '00000000-0000-0000-0000-000000000000')],
    ['attributes wider than 64 bits', (s) => (s.partitions[0].attributes = 1n << 64n)],
    ['sector size not a power of two', (s) => (s.sectorSize = 1000)],
    ['disk too small', (s) => ((s.totalSectors = 60), (s.partitions = []))],
  ];
  for (const [what, mutate] of cases) {
    it(what, () => {
      const spec = baseSpec();
      mutate(spec);
      expect(() => encodeGptTables(spec)).toThrow(FormatError);
      try {
        encodeGptTables(spec);
      } catch (e) {
        expect((e as FormatError).code).toBe('INVALID_ARGUMENT');
      }
    });
  }
  it('accepts a name of exactly 36 code units including a surrogate pair', () => {
    const spec = baseSpec();
    spec.partitions[0].name = '😀'.repeat(18);
    const t = encodeGptTables(spec);
    const h = decodeGptHeader(t.primary.bytes.subarray(0, 512));
    expect(decodeGptEntries(t.primary.bytes.subarray(512), h).entries[0].name).toBe('😀'.repeat(18));
  });
});

describe('GPT parser on hostile bytes', () => {
  const t = encodeGptTables({
    ...baseSpec(),
    partitions: [
      { typeGuid: ufs, guid: 'aaaaaaaa-0000-0000-0000-000000000001', firstLba: 40, lastLba: 99, attributes: 5n, name: 'one' },
      { typeGuid: GPT_TYPES.efi, guid: 'aaaaaaaa-0000-0000-0000-000000000002', firstLba: 100, lastLba: 199, attributes: 0n, name: 'two' },
    ],
  });

  it('flipped bytes in header or entries give a result or a FormatError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 512 + 4 * 128 - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        (flips, fixCrc) => {
          const bytes = t.primary.bytes.slice();
          for (const f of flips) bytes[f.at] = f.value;
          const dv = new DataView(bytes.buffer);
          if (fixCrc) {
            // Make the header CRC right again so parsing goes past it into the fields.
            const size = dv.getUint32(12, true);
            if (size >= 92 && size <= 512) {
              const copy = bytes.slice(0, size);
              copy.fill(0, 16, 20);
              dv.setUint32(16, crc32(copy), true);
            }
          }
          expectOnlyFormatError(() => {
            const h = decodeGptHeader(bytes.subarray(0, 512));
            decodeGptEntries(bytes.subarray(512), h);
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hostile field values throw the documented codes', () => {
    /** The primary header sector with one field changed (CRC left as it was). */
    const withField = (write: (dv: DataView) => void) => {
      const b = t.primary.bytes.slice(0, 512);
      write(new DataView(b.buffer));
      return b;
    };
    const code = (b: Uint8Array) => {
      try {
        decodeGptHeader(b);
        return 'ok';
      } catch (e) {
        return (e as FormatError).code;
      }
    };
    expect(code(t.primary.bytes.subarray(0, 91))).toBe('TRUNCATED');
    expect(code(new Uint8Array(512))).toBe('BAD_MAGIC');
    expect(code(withField((dv) => dv.setUint32(12, 91, true)))).toBe('BAD_VALUE');
    expect(code(withField((dv) => dv.setUint32(12, 513, true)))).toBe('BAD_VALUE');
    expect(code(withField((dv) => dv.setUint32(84, 130, true)))).toBe('BAD_VALUE');
    expect(code(withField((dv) => dv.setUint32(84, 64, true)))).toBe('BAD_VALUE');
    expect(code(withField((dv) => dv.setUint32(80, 0xffffffff, true)))).toBe('TOO_LARGE');
    expect(code(withField((dv) => dv.setUint32(80, GPT_MAX_ENTRIES + 1, true)))).toBe('TOO_LARGE');
    expect(code(withField((dv) => dv.setUint32(84, 0xfffffff8, true)))).toBe('TOO_LARGE');
    expect(code(withField((dv) => dv.setBigUint64(32, 1n << 60n, true)))).toBe('BAD_VALUE');
    // A changed field without a fixed CRC parses but reports the CRC as bad.
    const b = withField((dv) => dv.setUint8(56, 0x99));
    expect(decodeGptHeader(b).headerCrcValid).toBe(false);
    // Entry array shorter than entryCount * entrySize.
    const h = decodeGptHeader(t.primary.bytes.subarray(0, 512));
    expect(() => decodeGptEntries(t.primary.bytes.subarray(512, 1000), h)).toThrow(FormatError);
  });
});

describe('GPT attributes', () => {
  it('names the FreeBSD and UEFI bits with the right numbers', () => {
    expect(GPT_ATTRIBUTE_BITS).toMatchObject({ required: 0, 'no-block-io': 1, 'legacy-bios-bootable': 2, bootfailed: 57, bootonce: 58, bootme: 59 });
    expect(encodeGptAttributes(['bootme'])).toBe(1n << 59n);
    expect(encodeGptAttributes(['bootonce'])).toBe(1n << 58n);
    expect(encodeGptAttributes(['bootfailed'])).toBe(1n << 57n);
    expect(encodeGptAttributes(['required', 'no-block-io', 'legacy-bios-bootable'])).toBe(7n);
    expect(encodeGptAttributes([59, 'bit63', '0x10', 'BootMe'])).toBe((1n << 59n) | (1n << 63n) | 0x10n);
    expect(encodeGptAttributes([])).toBe(0n);
    expect(gptAttributeNames((1n << 59n) | (1n << 58n) | 4n | (1n << 48n))).toEqual(['legacy-bios-bootable', 'bit48', 'bootonce', 'bootme']);
    expect(gptAttributeNames(0n)).toEqual([]);
  });

  it('names the bad item when it throws', () => {
    for (const bad of ['bootmee', 'bit64', 64, -1, 1.5, '0x10000000000000000', '']) {
      expect(() => encodeGptAttributes([bad])).toThrow(FormatError);
      try {
        encodeGptAttributes(['bootme', bad]);
      } catch (e) {
        expect((e as FormatError).code).toBe('INVALID_ARGUMENT');
        expect((e as FormatError).message).toContain(JSON.stringify(bad));
      }
    }
  });

  it('names round-trip for any 64-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (bits) => {
        expect(encodeGptAttributes(gptAttributeNames(bits))).toBe(bits);
      }),
    );
  });
});

describe('GPT type names', () => {
  it('maps gpart names to the GUIDs in FreeBSD sys/sys/disk/gpt.h', () => {
    expect(gptTypeGuid('freebsd-boot')).toBe('83bd6b9d-7f41-11dc-be0b-001560b84f0f');
    expect(gptTypeGuid('freebsd')).toBe('516e7cb4-6ecf-11d6-8ff8-00022d09712b');
    expect(gptTypeGuid('freebsd-swap')).toBe('516e7cb5-6ecf-11d6-8ff8-00022d09712b');
    expect(gptTypeGuid('FreeBSD-UFS')).toBe('516e7cb6-6ecf-11d6-8ff8-00022d09712b');
    expect(gptTypeGuid('freebsd-zfs')).toBe('516e7cba-6ecf-11d6-8ff8-00022d09712b');
    expect(gptTypeGuid('efi')).toBe('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
    expect(gptTypeGuid('mbr')).toBe('024dee41-33e7-11d3-9d69-0008c781f39f');
    expect(gptTypeGuid('bios-boot')).toBe('21686148-6449-6e6f-744e-656564454649');
    expect(gptTypeGuid('linux-data')).toBe('0fc63daf-8483-4772-8e79-3d69d8477de4');
    expect(gptTypeGuid('ms-basic-data')).toBe('ebd0a0a2-b9e5-4433-87c0-68b6b72699c7');
    expect(gptTypeGuid('C12A7328-F81F-11D2-BA4B-00A0C93EC93B')).toBe('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
    expect(gptTypeGuid('no-such-type')).toBeUndefined();
    expect(gptTypeGuid('toString')).toBeUndefined();
    expect(gptTypeName('516E7CB6-6ECF-11D6-8FF8-00022D09712B')).toBe('freebsd-ufs');
    expect(gptTypeName('11111111-2222-3333-4444-555555555555')).toBeUndefined();
  });

  it('every name maps back to itself (no two names share a GUID)', () => {
    for (const [name, guid] of Object.entries(GPT_TYPES)) {
      expect(guid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(gptTypeName(guid)).toBe(name);
      expect(gptTypeGuid(name)).toBe(guid);
    }
  });
});
