import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DiskmintError } from '../../src/model/errors.js';
import { sourceDateEpoch } from '../../src/model/source-date.js';

describe('SOURCE_DATE_EPOCH', () => {
  it('unset or empty is undefined: the caller chooses its default', () => {
    expect(sourceDateEpoch({})).toBeUndefined();
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '' })).toBeUndefined();
  });

  it('a whole number of seconds is that number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: String(n) })).toBe(n);
      }),
    );
    expect(sourceDateEpoch({ SOURCE_DATE_EPOCH: '0001700000000' })).toBe(1700000000);
  });

  it('anything else set is a BAD_ARGUMENT naming the variable and the value', () => {
    for (const bad of [' 1700000000', '1700000000 ', '-1', '1.5', '17e8', 'now', '0x10', '9007199254740992']) {
      let err: unknown;
      try {
        sourceDateEpoch({ SOURCE_DATE_EPOCH: bad });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DiskmintError);
      expect((err as DiskmintError).code).toBe('BAD_ARGUMENT');
      expect((err as DiskmintError).message).toBe(`SOURCE_DATE_EPOCH=${bad} is not a whole number of seconds`);
    }
  });

  it('reads process.env by default', () => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = '1234';
      expect(sourceDateEpoch()).toBe(1234);
      delete process.env.SOURCE_DATE_EPOCH;
      expect(sourceDateEpoch()).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });
});
