import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { crc32 } from '../../formats/common/crc32.js';
import {
  STAGE_MAX_BYTES,
  STAGE_TABLE_MAX_ENTRIES,
  STAGE_TABLE_SIZE,
  checkStage,
  decodeStageTable,
  encodeStageTable,
  type StageChecksum,
} from '../../formats/boot/stage-table.js';
import { expectFormatError } from '../helpers/codec.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const guidArb = fc.tuple(hex(8), hex(4), hex(4), hex(4), hex(12)).map((p) => p.join('-'));
const recordArb: fc.Arbitrary<StageChecksum> = fc.record({
  partitionGuid: guidArb,
  length: fc.integer({ min: 1, max: STAGE_MAX_BYTES }),
  crc32: fc.integer({ min: 0, max: 0xffffffff }),
});
const tableArb = fc.array(recordArb, { maxLength: STAGE_TABLE_MAX_ENTRIES });

describe('formats/boot/stage-table.ts', () => {
  it('round-trips any table of up to 14 records', () => {
    fc.assert(
      fc.property(tableArb, (records) => {
        const sector = encodeStageTable(records);
        expect(sector.length).toBe(STAGE_TABLE_SIZE);
        expect(decodeStageTable(sector)).toEqual(records);
      }),
    );
  });

  it('any changed byte makes the sector "no table" (the CRC covers all 512 bytes)', () => {
    fc.assert(
      fc.property(tableArb, fc.integer({ min: 0, max: STAGE_TABLE_SIZE - 1 }), fc.integer({ min: 1, max: 255 }), (records, at, x) => {
        const sector = encodeStageTable(records);
        sector[at] ^= x;
        expect(decodeStageTable(sector)).toBeUndefined();
      }),
    );
  });

  it('a zeroed or short sector is no table', () => {
    expect(decodeStageTable(new Uint8Array(512))).toBeUndefined();
    expect(decodeStageTable(encodeStageTable([]).subarray(0, 511))).toBeUndefined();
  });

  it('refuses too many records and lengths outside 1..558,080', () => {
    const r = { partitionGuid: '00000000-0000-0000-0000-000000000001', length: 1, crc32: 0 };
    expectFormatError(() => encodeStageTable(Array.from({ length: 15 }, () => r)), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeStageTable([{ ...r, length: 0 }]), 'INVALID_ARGUMENT');
    expectFormatError(() => encodeStageTable([{ ...r, length: STAGE_MAX_BYTES + 1 }]), 'INVALID_ARGUMENT');
  });

  it('checkStage: empty, unchecked, ok, mismatch', () => {
    const stage = new Uint8Array(2048).map((_, i) => (i * 7 + 1) & 0xff);
    const rec = { partitionGuid: '00000000-0000-0000-0000-000000000001', length: 1500, crc32: crc32(stage.subarray(0, 1500)) };
    expect(checkStage(new Uint8Array(2048), rec)).toBe('empty');
    expect(checkStage(new Uint8Array(0), undefined)).toBe('empty');
    expect(checkStage(stage, undefined)).toBe('unchecked');
    expect(checkStage(stage, rec)).toBe('ok');
    const bad = stage.slice();
    bad[1499] ^= 1;
    expect(checkStage(bad, rec)).toBe('mismatch');
    bad[1499] ^= 1;
    bad[1500] ^= 1; // past the recorded length: not covered
    expect(checkStage(bad, rec)).toBe('ok');
    expect(checkStage(stage.subarray(0, 1000), rec)).toBe('mismatch');
  });
});
