import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { GPT_TYPES } from '../../formats/schemes/gpt-types.js';
import {
  ATTR_BOOTFAILED as F,
  ATTR_BOOTME as ME,
  ATTR_BOOTONCE as ONCE,
  activateSlot,
  beginBootAttempt,
  chooseBootSlot,
  confirmBoot,
  describeAttributes,
  markBootFailed,
  markStaleBootonce,
  setBootonce,
  simulateBootStageFallback,
  simulateBoots,
  slotEntriesFromGpt,
  type BootOutcome,
  type SlotEntry,
} from '../../formats/boot/gptboot.js';

const UFS = GPT_TYPES['freebsd-ufs'];
const BOOT = GPT_TYPES['freebsd-boot'];
const EFI = GPT_TYPES.efi;

/** A poudriere-style firmware layout: ESP, freebsd-boot, os1, os2, cfg (ufs), data (ufs). */
function layout(os1: bigint, os2: bigint, extra: Partial<Record<number, bigint>> = {}): SlotEntry[] {
  return [
    { index: 1, typeGuid: EFI, label: 'efiboot0', attributes: extra[1] ?? 0n },
    { index: 2, typeGuid: BOOT, label: 'gptboot0', attributes: extra[2] ?? 0n },
    { index: 3, typeGuid: UFS, label: 'os1', attributes: os1 },
    { index: 4, typeGuid: UFS, label: 'os2', attributes: os2 },
  ];
}
const attrs = (entries: SlotEntry[]) => Object.fromEntries(entries.map((e) => [e.label, describeAttributes(e.attributes)]));

describe('gptboot building blocks (stand/libsa/gpt.c, rc.d/gptboot, g_part_gpt.c)', () => {
  it('describeAttributes', () => {
    expect(describeAttributes(0n)).toBe('-');
    expect(describeAttributes(ME | ONCE)).toBe('bootme,bootonce');
    expect(describeAttributes(F | ME | ONCE)).toBe('bootme,bootonce,bootfailed');
    expect(describeAttributes(F | 1n)).toBe('bootfailed,required');
    expect(describeAttributes(1n << 63n)).toBe('bit63');
  });

  it('setBootonce sets bootonce and bootme (gpart set -a bootonce)', () => {
    const e = setBootonce(layout(ME, 0n), 4);
    expect(attrs(e)).toMatchObject({ os1: 'bootme', os2: 'bootme,bootonce' });
    expect(() => setBootonce(layout(ME, 0n), 9)).toThrow(FormatError);
  });

  it('markStaleBootonce converts exactly-bootonce entries of any type, nothing else', () => {
    const entries = layout(ONCE | ME, ONCE, { 1: ONCE, 2: ONCE | F });
    const { entries: out, changed } = markStaleBootonce(entries);
    expect(changed).toEqual([1, 4]);
    expect(attrs(out)).toEqual({ efiboot0: 'bootfailed', gptboot0: 'bootonce,bootfailed', os1: 'bootme,bootonce', os2: 'bootfailed' });
    // other bits survive
    expect(markStaleBootonce([{ index: 1, typeGuid: UFS, label: '', attributes: ONCE | 4n }]).entries[0].attributes).toBe(F | 4n);
    // input not mutated
    expect(entries[3].attributes).toBe(ONCE);
  });

  it('chooseBootSlot: bootme+bootonce first, then bootme, then (first try only) first ufs', () => {
    expect(chooseBootSlot(layout(ME, ME | ONCE), { firstTry: true }).index).toBe(4);
    expect(chooseBootSlot(layout(ME, ME), { firstTry: true }).index).toBe(3);
    expect(chooseBootSlot(layout(ME, ME), { firstTry: false, exclude: [3] }).index).toBe(4);
    expect(chooseBootSlot(layout(0n, ME), { firstTry: true }).index).toBe(4);
    const none = layout(0n, F);
    const r = chooseBootSlot(none, { firstTry: true });
    expect(r.index).toBe(3);
    expect(r.reason).toMatch(/first try/);
    expect(chooseBootSlot(none, { firstTry: false, exclude: [3] }).index).toBeUndefined();
    // bootfailed is not consulted by gptfind
    expect(chooseBootSlot(layout(0n, ME | F), { firstTry: false }).index).toBe(4);
  });

  it('non-ufs entries are never chosen, whatever their attributes', () => {
    const e = layout(0n, 0n, { 1: ME | ONCE, 2: ME });
    expect(chooseBootSlot(e, { firstTry: true }).index).toBe(3);
    const noUfs = e.filter((x) => x.typeGuid !== UFS);
    const r = chooseBootSlot(noUfs, { firstTry: true });
    expect(r.index).toBeUndefined();
    expect(r.reason).toMatch(/no freebsd-ufs/i);
    const steps = simulateBoots(noUfs, ['ok', 'ok']);
    expect(steps).toHaveLength(1);
    expect(steps[0].booted).toBeUndefined();
    expect(steps[0].messages.join('\n')).toMatch(/no UFS partition was found/);
  });

  it('beginBootAttempt clears bootme only on a bootonce entry; markBootFailed only touches bootonce entries', () => {
    expect(attrs(beginBootAttempt(layout(ME, ME | ONCE), 4))).toMatchObject({ os1: 'bootme', os2: 'bootonce' });
    expect(attrs(beginBootAttempt(layout(ME, 0n), 3))).toMatchObject({ os1: 'bootme' });
    expect(attrs(markBootFailed(layout(ME, ONCE), 4))).toMatchObject({ os2: 'bootfailed' });
    expect(attrs(markBootFailed(layout(ME, ONCE), 3))).toMatchObject({ os1: 'bootme' });
  });

  it('confirmBoot follows rc.d/gptboot: ufs only, skips bootme, bootfailed before bootonce, failures logged first', () => {
    const e = [
      ...layout(ONCE, F, { 1: F }),
      { index: 5, typeGuid: UFS, label: 'cfg', attributes: F | ONCE },
      { index: 6, typeGuid: UFS, label: '', attributes: ME | F },
    ];
    const r = confirmBoot(e);
    expect(r.messages).toEqual(['Boot from os2 failed.', 'Boot from cfg failed.', 'Boot from os1 succeeded.']);
    expect(attrs(r.entries)).toEqual({ efiboot0: 'bootfailed', gptboot0: '-', os1: '-', os2: '-', cfg: 'bootonce', '': 'bootme,bootfailed' });
    expect(confirmBoot(layout(0n, ONCE), { disk: 'ada0' }).messages).toEqual(['Boot from ada0p4 succeeded.']);
  });

  it('activateSlot makes one ufs slot the permanent default', () => {
    const e = activateSlot(layout(ME, ONCE | F), 4);
    expect(attrs(e)).toMatchObject({ os1: '-', os2: 'bootme' });
    expect(() => activateSlot(e, 2)).toThrow(FormatError);
  });

  it('slotEntriesFromGpt maps names to labels', () => {
    const s = slotEntriesFromGpt([{ index: 3, typeGuid: UFS, guid: '0', firstLba: 1, lastLba: 2, attributes: ME, name: 'os1' }]);
    expect(s).toEqual([{ index: 3, typeGuid: UFS, label: 'os1', attributes: ME }]);
  });

  it('rejects duplicate indexes and bad attributes', () => {
    const e = layout(ME, 0n);
    expect(() => chooseBootSlot([...e, { ...e[2] }], { firstTry: true })).toThrow(FormatError);
    expect(() => markStaleBootonce([{ index: 1, typeGuid: UFS, label: '', attributes: -1n }])).toThrow(FormatError);
  });
});

describe('simulateBoots: the A/B upgrade transitions', () => {
  it('fresh image (os1 bootme) boots os1, every time', () => {
    const steps = simulateBoots(layout(ME, 0n), ['ok', 'ok']);
    expect(steps.map((s) => s.booted)).toEqual([3, 3]);
    expect(steps[1].after).toEqual(layout(ME, 0n));
    expect(steps[0].messages).toEqual([]);
  });

  it('upgrade: os2 bootonce+bootme boots once; bootme is cleared before booting; confirm clears bootonce; next boot is os1 again', () => {
    const start = setBootonce(layout(ME, 0n), 4);
    // the on-disk write gptboot does before loading
    expect(attrs(beginBootAttempt(start, 4))).toMatchObject({ os2: 'bootonce' });
    const steps = simulateBoots(start, ['ok', 'ok']);
    expect(steps[0].booted).toBe(4);
    expect(steps[0].tried[0].reason).toMatch(/bootme and bootonce/);
    expect(steps[0].messages).toEqual(['Boot from os2 succeeded.']);
    expect(attrs(steps[0].after)).toMatchObject({ os1: 'bootme', os2: '-' });
    // FreeBSD's real behaviour: rc.d/gptboot never sets bootme, so the next boot is os1
    expect(steps[1].booted).toBe(3);
  });

  it('without confirmation the good boot leaves bootonce-only, which the next power cycle turns into bootfailed', () => {
    const steps = simulateBoots(setBootonce(layout(ME, 0n), 4), ['ok', 'ok'], { confirm: false });
    expect(attrs(steps[0].after)).toMatchObject({ os2: 'bootonce' });
    expect(steps[1].booted).toBe(3);
    expect(attrs(steps[1].after)).toMatchObject({ os2: 'bootfailed' });
    // per-attempt override
    const s2 = simulateBoots(setBootonce(layout(ME, 0n), 4), [{ outcome: 'ok', confirm: false }, 'ok']);
    expect(s2[1].messages).toContain('Boot from os2 failed.');
  });

  it('activateSlot after a confirmed trial boot makes os2 stick', () => {
    const [first] = simulateBoots(setBootonce(layout(ME, 0n), 4), ['ok']);
    const activated = activateSlot(first.after, 4);
    const steps = simulateBoots(activated, ['ok', 'ok']);
    expect(steps.map((s) => s.booted)).toEqual([4, 4]);
    expect(attrs(steps[1].after)).toMatchObject({ os1: '-', os2: 'bootme' });
  });

  it('failed upgrade: fail -> bootfailed, falls back to os1 in the same power cycle; confirm logs "failed" and clears it', () => {
    const steps = simulateBoots(setBootonce(layout(ME, 0n), 4), ['fail', 'ok', 'ok']);
    expect(steps).toHaveLength(2);
    const [s] = steps;
    expect(s.tried.map((t) => [t.index, t.result])).toEqual([
      [4, 'failed'],
      [3, 'booted'],
    ]);
    expect(s.booted).toBe(3);
    expect(s.outcome).toBe('ok');
    expect(s.messages).toContain('Boot from os2 failed.');
    expect(attrs(s.after)).toMatchObject({ os1: 'bootme', os2: '-' });
    expect(steps[1].booted).toBe(3);
    // with no confirmation the bootfailed mark stays on disk
    const nc = simulateBoots(setBootonce(layout(ME, 0n), 4), ['fail', 'ok'], { confirm: false });
    expect(attrs(nc[0].after)).toMatchObject({ os2: 'bootfailed' });
  });

  it('crash after loading: next power cycle turns the stale bootonce into bootfailed and boots os1', () => {
    const steps = simulateBoots(setBootonce(layout(ME, 0n), 4), ['crash', 'ok']);
    expect(steps[0].booted).toBe(4);
    expect(steps[0].tried[0].result).toBe('crashed');
    expect(attrs(steps[0].after)).toMatchObject({ os1: 'bootme', os2: 'bootonce' });
    expect(steps[1].booted).toBe(3);
    expect(steps[1].messages[0]).toMatch(/p4 .*bootfailed/);
    expect(steps[1].messages).toContain('Boot from os2 failed.');
    expect(attrs(steps[1].after)).toMatchObject({ os1: 'bootme', os2: '-' });
  });

  it('a failing non-bootonce entry is not marked; the search moves on, then stops at the boot: prompt', () => {
    const steps = simulateBoots(layout(ME, ME), ['fail', 'fail', 'ok']);
    expect(steps[0].tried.map((t) => t.index)).toEqual([3, 4]);
    expect(steps[0].booted).toBeUndefined();
    expect(steps[0].after).toEqual(layout(ME, ME));
    expect(steps[0].messages.at(-1)).toMatch(/boot: prompt/);
    // someone resets the machine: the next cycle starts from the top again
    expect(steps[1].booted).toBe(3);
  });

  it('no bootme anywhere: the first try takes the first freebsd-ufs entry; later tries do not', () => {
    const steps = simulateBoots(layout(0n, 0n), ['fail', 'ok']);
    expect(steps[0].tried.map((t) => t.index)).toEqual([3]);
    expect(steps[0].booted).toBeUndefined();
    expect(steps[1].booted).toBe(3);
    expect(steps[1].tried[0].reason).toMatch(/first try/);
  });

  it('outcomes running out mid-cycle ends the simulation with that cycle reported', () => {
    const steps = simulateBoots(setBootonce(layout(ME, 0n), 4), ['fail']);
    expect(steps).toHaveLength(1);
    expect(steps[0].tried).toHaveLength(1);
    expect(steps[0].booted).toBeUndefined();
    expect(simulateBoots(layout(ME, 0n), [])).toEqual([]);
  });
});

describe('simulateBootStageFallback (a proposal, not pmbr)', () => {
  const two: SlotEntry[] = [
    { index: 1, typeGuid: BOOT, label: 'gptboot0', attributes: 0n },
    { index: 2, typeGuid: BOOT, label: 'gptboot1', attributes: 0n },
    { index: 3, typeGuid: UFS, label: 'os1', attributes: ME },
  ];
  it('takes the first freebsd-boot without bootfailed, moves on after a failure', () => {
    expect(simulateBootStageFallback(two, 0)).toEqual([{ boot: 1, stage: 1, reason: expect.stringMatching(/runs/) }]);
    const r = simulateBootStageFallback(two, 1);
    expect(r.map((x) => x.stage)).toEqual([1, 2]);
    const dead = simulateBootStageFallback(two, 5);
    expect(dead.map((x) => x.stage)).toEqual([1, 2, undefined]);
    expect(dead[2].reason).toMatch(/cannot boot/);
    const pre = simulateBootStageFallback([{ ...two[0], attributes: F }, two[1]], 0);
    expect(pre[0].stage).toBe(2);
    expect(() => simulateBootStageFallback(two, -1)).toThrow(FormatError);
  });
});

describe('properties', () => {
  const bitsArb = fc
    .tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.bigInt({ min: 0n, max: 7n }))
    .map(([me, once, failed, low]) => (me ? ME : 0n) | (once ? ONCE : 0n) | (failed ? F : 0n) | low);
  const entriesArb = fc
    .array(fc.record({ type: fc.constantFrom(UFS, BOOT, EFI, GPT_TYPES['freebsd-zfs']), attributes: bitsArb }), { maxLength: 8 })
    .chain((rows) =>
      fc
        .shuffledSubarray(
          Array.from({ length: 16 }, (_, i) => i + 1),
          { minLength: rows.length, maxLength: rows.length },
        )
        .map((idx) => rows.map((r, i) => ({ index: idx[i], typeGuid: r.type, label: `p${idx[i]}`, attributes: r.attributes }))),
    );
  const outcomeArb = fc.oneof(
    fc.constantFrom<BootOutcome>('ok', 'fail', 'crash'),
    fc.record({ outcome: fc.constantFrom<BootOutcome>('ok', 'fail', 'crash'), confirm: fc.boolean() }),
  );

  it('random attributes and outcomes: never throws, terminates, only ever tries freebsd-ufs entries', () => {
    fc.assert(
      fc.property(entriesArb, fc.array(outcomeArb, { maxLength: 20 }), fc.boolean(), (entries, outcomes, confirm) => {
        const steps = simulateBoots(entries, outcomes, { confirm });
        expect(steps.length).toBeLessThanOrEqual(outcomes.length + 1);
        const consumed = steps.reduce((n, s) => n + s.tried.length, 0);
        expect(consumed).toBeLessThanOrEqual(outcomes.length);
        const ufs = new Set(entries.filter((e) => e.typeGuid === UFS).map((e) => e.index));
        for (const [i, s] of steps.entries()) {
          expect(s.boot).toBe(i + 1);
          for (const t of s.tried) expect(ufs.has(t.index)).toBe(true);
          if (s.booted !== undefined) expect(ufs.has(s.booted)).toBe(true);
          // each entry tried at most once per power cycle
          expect(new Set(s.tried.map((t) => t.index)).size).toBe(s.tried.length);
          if (i > 0) expect(s.before).toEqual(steps[i - 1].after);
          // non-ufs entries only ever change by gptbootconv (bootonce -> bootfailed)
          for (const e of s.after) {
            if (ufs.has(e.index)) continue;
            const orig = entries.find((x) => x.index === e.index)!;
            expect([orig.attributes, markStaleBootonce([orig]).entries[0].attributes]).toContain(e.attributes);
          }
        }
        const choice = chooseBootSlot(entries, { firstTry: true });
        if (choice.index !== undefined) expect(ufs.has(choice.index)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
