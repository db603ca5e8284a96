/**
 * The fallback selector's choice among boot stages, as pure functions (no I/O): the rules of
 * bootcode/SELECTOR.md ("What the selector does", steps 2-5) over freebsd-boot GPT entries,
 * with each stage's checksum result (formats/boot/stage-table.ts `checkStage`). `boot status`
 * and `boot simulate` use this model, and the emulator tests hold the boot code to it.
 *
 * The attribute bits and their one-entry updates are gptboot's (formats/boot/gptboot.ts): the
 * selector applies the same rules to freebsd-boot entries that gptboot applies to freebsd-ufs.
 */
import { fail } from '../common/errors.js';
import { FREEBSD_BOOT_TYPE } from '../schemes/gpt-types.js';
import {
  ATTR_BOOTFAILED,
  ATTR_BOOTME,
  ATTR_BOOTONCE,
  beginBootAttempt,
  markBootFailed,
  markStaleBootonce,
  type BootAttemptSpec,
  type BootOutcome,
  type SlotEntry,
} from './gptboot.js';
import type { StageCheck } from './stage-table.js';

/** Each freebsd-boot entry's check result by GPT index; a missing index counts as 'unchecked'. */
export type StageChecks = ReadonlyMap<number, StageCheck>;

export interface StageCandidate {
  index: number;
  /** Why it is in the list at this place (SELECTOR.md step 3). */
  reason: string;
}

export interface StageAttempt {
  index: number;
  check: StageCheck;
  /** 'marked-failed': failed its check and had bootonce (step 4); 'skipped': failed without bootonce; 'chosen': passed (step 5). */
  result: 'chosen' | 'marked-failed' | 'skipped';
}

/** One attribute write the selector makes on disk (both GPT copies), in order. */
export interface StageWrite {
  index: number;
  before: bigint;
  after: bigint;
  /** 'stale-bootonce' (step 2), 'failed-check' (step 4), 'trial' (step 5: bootme cleared before the jump). */
  why: 'stale-bootonce' | 'failed-check' | 'trial';
}

export interface StageChoice {
  /** Step 2: the entries that were exactly bootonce and became bootfailed. */
  markedStale: number[];
  /** Step 3, over the entries after step 2. */
  candidates: StageCandidate[];
  /** Step 4, in order, up to the chosen one. */
  attempts: StageAttempt[];
  /** Step 5: the stage the selector jumps into; undefined = the selector halts (step 6). */
  chosen?: number;
  reason: string;
  /** Every attribute change of this power-up, in the order the selector writes them. */
  writes: StageWrite[];
  /** The entries after the selector's writes (all entries, in the order given). */
  after: SlotEntry[];
}

const isStage = (e: SlotEntry) => e.typeGuid.toLowerCase() === FREEBSD_BOOT_TYPE;
const has = (e: SlotEntry, bit: bigint) => (e.attributes & bit) !== 0n;
const passes = (c: StageCheck) => c === 'ok' || c === 'unchecked';

/** How messages name a freebsd-boot entry: its label and slot ("bootA (p2)"), or the slot alone. */
export function stageName(e: Pick<SlotEntry, 'index' | 'label'>): string {
  return e.label ? `${e.label} (p${e.index})` : `p${e.index}`;
}

function checkOf(checks: StageChecks, index: number): StageCheck {
  return checks.get(index) ?? 'unchecked';
}

/** The freebsd-boot entries in table order (SELECTOR.md: "in table order"). */
export function bootStageEntries(entries: readonly SlotEntry[]): SlotEntry[] {
  return entries.filter(isStage).sort((a, b) => a.index - b.index);
}

/**
 * Step 2: every freebsd-boot entry whose boot bits are exactly bootonce becomes bootfailed
 * (gptboot's gptbootconv, but only over freebsd-boot entries). Other entries are untouched.
 */
export function markStaleStages(entries: readonly SlotEntry[]): { entries: SlotEntry[]; changed: number[] } {
  const stages = markStaleBootonce(entries.filter(isStage));
  const byIndex = new Map(stages.entries.map((e) => [e.index, e]));
  return { entries: entries.map((e) => byIndex.get(e.index) ?? e), changed: stages.changed };
}

/**
 * Step 3: the first entry with bootme+bootonce; then the entries with bootme, in table order;
 * then every other freebsd-boot entry, in table order; each at most once. bootfailed is not
 * looked at (as gptboot).
 */
export function stageCandidates(entries: readonly SlotEntry[]): StageCandidate[] {
  const stages = bootStageEntries(entries);
  const out: StageCandidate[] = [];
  const taken = new Set<number>();
  const add = (e: SlotEntry, reason: string) => {
    if (taken.has(e.index)) return;
    taken.add(e.index);
    out.push({ index: e.index, reason });
  };
  const trial = stages.find((e) => has(e, ATTR_BOOTME) && has(e, ATTR_BOOTONCE));
  if (trial) add(trial, `${stageName(trial)} is the first freebsd-boot entry with bootme and bootonce (a one-time trial).`);
  for (const e of stages) if (has(e, ATTR_BOOTME)) add(e, `${stageName(e)} has bootme.`);
  for (const e of stages) add(e, `${stageName(e)} is a freebsd-boot entry without bootme, taken in table order.`);
  return out;
}

function setAttributes(entries: readonly SlotEntry[], next: readonly SlotEntry[], why: StageWrite['why'], writes: StageWrite[]): SlotEntry[] {
  for (const n of next) {
    const b = entries.find((e) => e.index === n.index);
    if (b && b.attributes !== n.attributes) writes.push({ index: n.index, before: b.attributes, after: n.attributes, why });
  }
  return [...next];
}

/** One power-up of the selector (steps 2-5): what it writes, what it tries, what it jumps into. */
export function chooseBootStage(entries: readonly SlotEntry[], checks: StageChecks): StageChoice {
  if (!(checks instanceof Map)) throw fail('stage-choice', 'INVALID_ARGUMENT', 'checks must be a Map from GPT index to a stage check');
  const writes: StageWrite[] = [];
  const stale = markStaleStages(entries);
  let state = setAttributes(entries, stale.entries, 'stale-bootonce', writes);
  const candidates = stageCandidates(state);
  const attempts: StageAttempt[] = [];
  for (const c of candidates) {
    const check = checkOf(checks, c.index);
    const entry = state.find((e) => e.index === c.index)!;
    if (!passes(check)) {
      const once = has(entry, ATTR_BOOTONCE);
      attempts.push({ index: c.index, check, result: once ? 'marked-failed' : 'skipped' });
      if (once) state = setAttributes(state, markBootFailed(state, c.index), 'failed-check', writes);
      continue;
    }
    attempts.push({ index: c.index, check, result: 'chosen' });
    state = setAttributes(state, beginBootAttempt(state, c.index), 'trial', writes);
    const failedBefore = attempts.length - 1;
    const why = check === 'ok' ? 'its checksum matches the table' : 'it is not empty and the table has no record of it';
    return {
      markedStale: stale.changed,
      candidates,
      attempts,
      chosen: c.index,
      reason: `${c.reason} It boots: ${why}${failedBefore ? ` (${failedBefore} earlier candidate${failedBefore > 1 ? 's' : ''} failed the check)` : ''}.`,
      writes,
      after: state,
    };
  }
  return {
    markedStale: stale.changed,
    candidates,
    attempts,
    reason:
      candidates.length === 0 ? 'There is no freebsd-boot partition: the selector halts.' : 'No freebsd-boot partition passes its check: the selector halts.',
    writes,
    after: state,
  };
}

/**
 * The stage `boot update` must not touch: the first candidate of step 3 that passes its check,
 * with a pending trial (bootonce) not counted, since its bootme lasts one boot.
 */
export function defaultBootStage(entries: readonly SlotEntry[], checks: StageChecks): number | undefined {
  const settled = entries.map((e) => (isStage(e) && has(e, ATTR_BOOTONCE) ? { ...e, attributes: e.attributes & ~(ATTR_BOOTONCE | ATTR_BOOTME) } : e));
  return stageCandidates(settled).find((c) => passes(checkOf(checks, c.index)))?.index;
}

/**
 * `boot confirm` (SELECTOR.md "What the commands do"): after a good boot of a tried stage
 * (bootonce without bootme, after step 5), it gets bootme and loses bootonce, and every other
 * freebsd-boot entry loses bootme; bootfailed is cleared on every freebsd-boot entry (logged
 * as rc.d/gptboot logs it). Other entries are untouched.
 */
export function confirmBootStage(entries: readonly SlotEntry[]): { entries: SlotEntry[]; confirmed?: number; messages: string[] } {
  const stages = bootStageEntries(entries);
  const tried = stages.find((e) => has(e, ATTR_BOOTONCE) && !has(e, ATTR_BOOTME) && !has(e, ATTR_BOOTFAILED));
  const messages: string[] = [];
  for (const e of stages) if (has(e, ATTR_BOOTFAILED)) messages.push(`Boot stage ${stageName(e)} failed.`);
  if (tried) messages.push(`Boot stage ${stageName(tried)} succeeded; it is now the default.`);
  for (const e of stages) {
    if (has(e, ATTR_BOOTME) && has(e, ATTR_BOOTONCE)) messages.push(`Boot stage ${stageName(e)} has not been tried yet; left as it is.`);
  }
  const out = entries.map((e) => {
    if (!isStage(e)) return e;
    if (tried && e.index === tried.index) return { ...e, attributes: (e.attributes | ATTR_BOOTME) & ~(ATTR_BOOTONCE | ATTR_BOOTFAILED) };
    const pendingTrial = has(e, ATTR_BOOTME) && has(e, ATTR_BOOTONCE);
    let a = e.attributes & ~ATTR_BOOTFAILED;
    if (tried && !pendingTrial) a &= ~ATTR_BOOTME;
    return { ...e, attributes: a };
  });
  return { entries: out, confirmed: tried?.index, messages };
}

export interface StageBootStep {
  /** 1-based power-up number. */
  boot: number;
  before: SlotEntry[];
  choice: StageChoice;
  /** The outcome of the chosen stage (none when the selector halted). */
  outcome?: BootOutcome;
  /** Whether `boot confirm` ran after an 'ok'. */
  confirmed: boolean;
  after: SlotEntry[];
  messages: string[];
}

/**
 * Repeated power-ups under the selector. The checks stay as given (the stages' bytes do not
 * change between boots). Each power-up whose selector jumps into a stage consumes one outcome:
 * 'ok' the stage and the OS came up (then `boot confirm` runs, unless `confirm` is false);
 * 'fail' the stage did not work (hung, reset) and 'crash' the OS died before a confirm: both
 * end the power-up with nothing confirmed. Candidates that fail their check consume nothing
 * (the selector itself rejects them). A power-up where the selector halts ends the simulation
 * (every later one would be the same); so does running out of outcomes.
 */
export function simulateBootStages(
  entries: readonly SlotEntry[],
  checks: StageChecks,
  outcomes: ReadonlyArray<BootOutcome | BootAttemptSpec>,
  opts: { confirm?: boolean } = {},
): StageBootStep[] {
  const queue = outcomes.map((o) => (typeof o === 'string' ? { outcome: o } : o));
  for (const q of queue) {
    if (q.outcome !== 'ok' && q.outcome !== 'fail' && q.outcome !== 'crash')
      throw fail('stage-choice', 'INVALID_ARGUMENT', `unknown outcome ${String(q.outcome)}`);
  }
  const steps: StageBootStep[] = [];
  let state = [...entries];
  for (const [i, attempt] of queue.entries()) {
    const before = state;
    const choice = chooseBootStage(state, checks);
    state = choice.after;
    const messages = choice.markedStale.map((i) => `selector: p${i} still had bootonce without bootme (never confirmed): marked bootfailed.`);
    for (const a of choice.attempts) if (a.result !== 'chosen') messages.push(`selector: p${a.index} is ${a.check}: not loaded.`);
    if (choice.chosen === undefined) {
      messages.push(`selector: ${choice.reason}`);
      steps.push({ boot: i + 1, before, choice, confirmed: false, after: state, messages });
      break;
    }
    let confirmed = false;
    if (attempt.outcome === 'ok' && (attempt.confirm ?? opts.confirm ?? true)) {
      const c = confirmBootStage(state);
      state = c.entries;
      messages.push(...c.messages);
      confirmed = true;
    } else if (attempt.outcome !== 'ok') {
      messages.push(attempt.outcome === 'fail' ? `p${choice.chosen} did not boot.` : `p${choice.chosen} booted, and the system went down before a confirm.`);
    }
    steps.push({ boot: i + 1, before, choice, outcome: attempt.outcome, confirmed, after: state, messages });
  }
  return steps;
}
