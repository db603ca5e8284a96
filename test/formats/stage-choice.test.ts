import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { GPT_TYPES } from '../../formats/schemes/gpt-types.js';
import { ATTR_BOOTFAILED as F, ATTR_BOOTME as ME, ATTR_BOOTONCE as ONCE, describeAttributes, type SlotEntry } from '../../formats/boot/gptboot.js';
import { chooseBootStage, confirmBootStage, defaultBootStage, simulateBootStages, stageCandidates, type StageChecks } from '../../formats/boot/stage-choice.js';
import type { StageCheck } from '../../formats/boot/stage-table.js';
import { expectFormatError } from '../helpers/codec.js';

const BOOT = GPT_TYPES['freebsd-boot'];
const UFS = GPT_TYPES['freebsd-ufs'];

/** gptboot0 (p1), gptboot1 (p2), an OS slot (p3) and the selector's partition (p4). */
function disk(a: bigint, b: bigint, os = 0n): SlotEntry[] {
  return [
    { index: 1, typeGuid: BOOT, label: 'gptboot0', attributes: a },
    { index: 2, typeGuid: BOOT, label: 'gptboot1', attributes: b },
    { index: 3, typeGuid: UFS, label: 'os1', attributes: os },
    { index: 4, typeGuid: GPT_TYPES['bios-boot'], label: 'selector', attributes: 0n },
  ];
}
const checks = (a: StageCheck, b: StageCheck): StageChecks =>
  new Map([
    [1, a],
    [2, b],
  ]);
const attrs = (entries: SlotEntry[]) => entries.map((e) => describeAttributes(e.attributes)).join(' ');

describe('SELECTOR.md rules, one at a time', () => {
  it("step 2: exactly-bootonce freebsd-boot entries become bootfailed; a freebsd-ufs entry is not the selector's", () => {
    const c = chooseBootStage(disk(0n, ONCE, ONCE), checks('ok', 'ok'));
    expect(c.markedStale).toEqual([2]);
    expect(attrs(c.after)).toBe('- bootfailed bootonce -');
    expect(c.writes[0]).toEqual({ index: 2, before: ONCE, after: F, why: 'stale-bootonce' });
    expect(chooseBootStage(disk(0n, ONCE | F), checks('ok', 'ok')).markedStale).toEqual([]);
  });

  it('step 3: trial first, then bootme in table order, then the rest in table order', () => {
    expect(stageCandidates(disk(0n, 0n)).map((c) => c.index)).toEqual([1, 2]);
    expect(stageCandidates(disk(0n, ME)).map((c) => c.index)).toEqual([2, 1]);
    expect(stageCandidates(disk(ME, ME | ONCE)).map((c) => c.index)).toEqual([2, 1]);
    expect(stageCandidates(disk(ME, ME)).map((c) => c.index)).toEqual([1, 2]);
    expect(stageCandidates(disk(F, 0n)).map((c) => c.index)).toEqual([1, 2]); // bootfailed is not looked at
  });

  it('step 4: a failed candidate with bootonce is marked bootfailed, one without is skipped', () => {
    const c = chooseBootStage(disk(0n, ME | ONCE), checks('ok', 'mismatch'));
    expect(c.attempts).toEqual([
      { index: 2, check: 'mismatch', result: 'marked-failed' },
      { index: 1, check: 'ok', result: 'chosen' },
    ]);
    expect(attrs(c.after)).toBe('- bootme,bootfailed - -');
    const d = chooseBootStage(disk(ME, 0n), checks('empty', 'unchecked'));
    expect(d.attempts.map((a) => a.result)).toEqual(['skipped', 'chosen']);
    expect(d.chosen).toBe(2);
    expect(d.writes).toEqual([]);
  });

  it('step 5: a trial stage loses bootme before the jump; a plain one changes nothing', () => {
    const c = chooseBootStage(disk(0n, ME | ONCE), checks('ok', 'ok'));
    expect(c.chosen).toBe(2);
    expect(c.writes).toEqual([{ index: 2, before: ME | ONCE, after: ONCE, why: 'trial' }]);
    expect(chooseBootStage(disk(ME, 0n), checks('ok', 'ok')).writes).toEqual([]);
  });

  it('step 6: nothing passes, or no freebsd-boot entry: halt', () => {
    expect(chooseBootStage(disk(0n, 0n), checks('empty', 'mismatch')).chosen).toBeUndefined();
    expect(chooseBootStage(disk(0n, 0n).slice(2), new Map()).reason).toMatch(/no freebsd-boot/);
  });

  it('refuses checks that are not a Map', () => {
    expectFormatError(() => chooseBootStage(disk(0n, 0n), {} as StageChecks), 'INVALID_ARGUMENT');
  });

  it('the default stage ignores a pending trial', () => {
    expect(defaultBootStage(disk(0n, ME | ONCE), checks('ok', 'ok'))).toBe(1);
    expect(defaultBootStage(disk(0n, ME), checks('ok', 'ok'))).toBe(2);
    expect(defaultBootStage(disk(0n, ME), checks('ok', 'empty'))).toBe(1);
    expect(defaultBootStage(disk(0n, 0n), checks('empty', 'empty'))).toBeUndefined();
  });

  it('confirm: the tried stage becomes the default, bootfailed cleared, a pending trial kept', () => {
    const c = confirmBootStage(disk(ME | F, ONCE));
    expect(c.confirmed).toBe(2);
    expect(attrs(c.entries)).toBe('- bootme - -');
    expect(c.messages).toEqual(['Boot stage gptboot0 (p1) failed.', 'Boot stage gptboot1 (p2) succeeded; it is now the default.']);
    const pending = confirmBootStage(disk(ME, ME | ONCE));
    expect(pending.confirmed).toBeUndefined();
    expect(attrs(pending.entries)).toBe('bootme bootme,bootonce - -');
    expect(attrs(confirmBootStage(disk(0n, 0n, ONCE)).entries)).toBe('- - bootonce -'); // OS slots are slot confirm's
  });
});

describe("simulateBootStages: the issue's cycle", () => {
  it('update, fail, fall back; update, confirm, stay', () => {
    const fresh = disk(0n, 0n);
    const trial = disk(0n, ME | ONCE);
    const [b1, b2] = simulateBootStages(trial, checks('ok', 'ok'), ['fail', 'ok'], { confirm: false });
    expect(b1.choice.chosen).toBe(2);
    expect(b2.choice.markedStale).toEqual([2]);
    expect(b2.choice.chosen).toBe(1);
    expect(attrs(b2.after)).toBe('- bootfailed - -');
    const ok = simulateBootStages(trial, checks('ok', 'ok'), ['ok', 'ok', 'ok']);
    expect(ok.map((s) => s.choice.chosen)).toEqual([2, 2, 2]);
    expect(attrs(ok[2].after)).toBe('- bootme - -');
    expect(simulateBootStages(fresh, checks('mismatch', 'ok'), ['ok'])[0].choice.chosen).toBe(2);
  });

  it('stops when the selector halts', () => {
    const s = simulateBootStages(disk(0n, 0n), checks('empty', 'empty'), ['ok', 'ok']);
    expect(s).toHaveLength(1);
    expect(s[0].outcome).toBeUndefined();
  });
});

const bits = fc.constantFrom(0n, ME, ONCE, F, ME | ONCE, ME | F, ONCE | F, ME | ONCE | F);
const check = fc.constantFrom<StageCheck>('ok', 'empty', 'mismatch', 'unchecked');
const stagesArb = fc.array(fc.tuple(bits, check), { minLength: 1, maxLength: 5 }).map((list) => ({
  entries: list.map(([a], i): SlotEntry => ({ index: i + 1, typeGuid: BOOT, label: `s${i}`, attributes: a })),
  checks: new Map(list.map(([, c], i) => [i + 1, c])) as StageChecks,
}));
const outcomes = fc.array(fc.constantFrom('ok' as const, 'fail' as const, 'crash' as const), { maxLength: 8 });

describe('stage-choice properties', () => {
  it('never chooses a stage that fails its check, and chooses one whenever one passes', () => {
    fc.assert(
      fc.property(stagesArb, ({ entries, checks }) => {
        const c = chooseBootStage(entries, checks);
        const passing = entries.filter((e) => ['ok', 'unchecked'].includes(checks.get(e.index)!));
        if (c.chosen === undefined) expect(passing).toEqual([]);
        else expect(['ok', 'unchecked']).toContain(checks.get(c.chosen));
      }),
    );
  });

  it('the only bootme stage that checks ok is always chosen, with no trial pending', () => {
    fc.assert(
      fc.property(stagesArb, fc.nat(), ({ entries, checks }, pick) => {
        const i = (pick % entries.length) + 1;
        const list = entries.map((e) => ({ ...e, attributes: e.index === i ? ME : e.attributes & ~(ME | ONCE) }));
        const c = chooseBootStage(list, new Map([...checks, [i, 'ok']]));
        expect(c.chosen).toBe(i);
      }),
    );
  });

  it('without a confirm, a stage carrying bootonce is jumped into at most once', () => {
    // Attributes as diskmint and the selector leave them: bootonce never beside bootfailed
    // (`boot update --bootonce` clears bootfailed; gpart's `set -a bootonce` does not, and such an
    // entry is what gptboot, too, would take again in table order).
    const clean = stagesArb.map(({ entries, checks }) => ({
      entries: entries.map((e) => ((e.attributes & ONCE) !== 0n ? { ...e, attributes: e.attributes & ~F } : e)),
      checks,
    }));
    fc.assert(
      fc.property(clean, outcomes, ({ entries, checks }, outs) => {
        const steps = simulateBootStages(entries, checks, outs, { confirm: false });
        const onceJumps = steps
          .filter((s) => s.choice.chosen !== undefined)
          .filter((s) => !s.choice.markedStale.includes(s.choice.chosen!)) // step 2 took its bootonce away first
          .filter((s) => (s.before.find((e) => e.index === s.choice.chosen)!.attributes & ONCE) !== 0n)
          .map((s) => s.choice.chosen);
        expect(new Set(onceJumps).size).toBe(onceJumps.length);
      }),
    );
  });

  it('every write touches only boot bits of freebsd-boot entries', () => {
    fc.assert(
      fc.property(stagesArb, outcomes, ({ entries, checks }, outs) => {
        const withOs = [...entries, { index: 99, typeGuid: UFS, label: 'os', attributes: ONCE }];
        for (const s of simulateBootStages(withOs, checks, outs)) {
          for (const w of s.choice.writes) expect((w.before ^ w.after) & ~(ME | ONCE | F)).toBe(0n);
          expect(s.after.find((e) => e.index === 99)!.attributes).toBe(ONCE);
        }
      }),
    );
  });
});
