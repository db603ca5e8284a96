/**
 * FreeBSD's GPT boot choice as pure functions over entry lists (no I/O).
 *
 * Sources (read against freebsd-src, not paraphrased from memory):
 * - stand/libsa/gpt.c: gptread() runs gptbootconv() on every valid table copy, gptfind()
 *   picks the freebsd-ufs entry, gptbootfailed() marks a failed bootonce entry.
 * - stand/i386/gptboot/gptboot.c main(): load() loader, then kernel; on failure
 *   gptbootfailed() and gptfind(-1) again in the same power cycle; when gptfind() returns
 *   -1 it falls through to the interactive "boot:" prompt.
 * - libexec/rc/rc.d/gptboot: after a boot, logs and clears bootfailed / bootonce on
 *   freebsd-ufs entries that do not carry bootme.
 * - sys/geom/part/g_part_gpt.c g_part_gpt_setunset(): `gpart set -a bootonce` sets bootonce
 *   and bootme; unsetting bootonce clears only bootonce.
 *
 * What is deliberately not modelled: the primary/backup table pair (gptboot updates both
 * copies; here there is one list), explicit `boot: 0:ad(0p3)` partition selection, and one
 * quirk of gptbootconv(): it only walks whole 512-byte sectors of the entry array
 * (`slba < hdr_lba_table + hdr_entries / entries_per_sec`), so with an entry count that is
 * not a multiple of 4 the entries in the last, partial sector are never converted. Every
 * table FreeBSD tools write has 128 entries, where this does not arise.
 */
import { fail } from '../common/errors.js';
import { GPT_ATTRIBUTE_BITS, gptAttributeNames } from '../schemes/gpt-attributes.js';
import { FREEBSD_BOOT_TYPE, FREEBSD_UFS_TYPE } from '../schemes/gpt-types.js';
import type { GptPartitionEntry } from '../schemes/gpt.js';

export interface SlotEntry {
  /** 1-based slot in the GPT entry array (gptboot scans in this order). */
  index: number;
  typeGuid: string;
  label: string;
  /** Raw 64-bit attribute field. */
  attributes: bigint;
}

export type BootOutcome = 'ok' | 'fail' | 'crash';

/** One load attempt's outcome, optionally saying that rc.d/gptboot does not run after 'ok'. */
export interface BootAttemptSpec {
  outcome: BootOutcome;
  /** Only for 'ok': run rc.d/gptboot afterwards (default: the simulation's `confirm`). */
  confirm?: boolean;
}

export interface BootStep {
  /** 1-based power-cycle number. */
  boot: number;
  /** The outcome of the attempt that ended this power cycle ('fail' when nothing could load). */
  outcome: BootOutcome;
  /** On-disk entries when the power cycle started. */
  before: SlotEntry[];
  tried: Array<{ index: number; reason: string; result: 'booted' | 'failed' | 'crashed' }>;
  /** The entry whose OS came up (or crashed after loading). */
  booted?: number;
  /** On-disk entries at the end of the power cycle (after rc.d/gptboot when it ran). */
  after: SlotEntry[];
  /** gptboot console lines and rc.d/gptboot log lines, in order. */
  messages: string[];
}

// sys/sys/disk/gpt.h GPT_ENT_ATTR_BOOTME / BOOTONCE / BOOTFAILED
export const ATTR_BOOTME = 1n << BigInt(GPT_ATTRIBUTE_BITS.bootme);
export const ATTR_BOOTONCE = 1n << BigInt(GPT_ATTRIBUTE_BITS.bootonce);
export const ATTR_BOOTFAILED = 1n << BigInt(GPT_ATTRIBUTE_BITS.bootfailed);
const BOOT_BITS = ATTR_BOOTME | ATTR_BOOTONCE | ATTR_BOOTFAILED;
const U64_MASK = (1n << 64n) - 1n;

/** GptPartitionEntry (formats/schemes/gpt.ts) -> SlotEntry (name becomes label). */
export function slotEntriesFromGpt(entries: readonly GptPartitionEntry[]): SlotEntry[] {
  return entries.map((e) => ({ index: e.index, typeGuid: e.typeGuid, label: e.name, attributes: e.attributes }));
}

const isUfs = (e: SlotEntry) => e.typeGuid.toLowerCase() === FREEBSD_UFS_TYPE;
const isBootPart = (e: SlotEntry) => e.typeGuid.toLowerCase() === FREEBSD_BOOT_TYPE;
const has = (e: SlotEntry, bit: bigint) => (e.attributes & bit) !== 0n;

/** Copies the list, checking indexes are distinct positive integers and attributes are u64. */
function checked(entries: readonly SlotEntry[]): SlotEntry[] {
  if (!Array.isArray(entries)) throw fail('gptboot', 'INVALID_ARGUMENT', 'entries must be an array');
  const seen = new Set<number>();
  return entries.map((e) => {
    if (!Number.isSafeInteger(e.index) || e.index < 1) throw fail('gptboot', 'INVALID_ARGUMENT', `entry index ${String(e.index)} is not a positive integer`);
    if (seen.has(e.index)) throw fail('gptboot', 'INVALID_ARGUMENT', `entry index ${e.index} appears twice`);
    seen.add(e.index);
    if (typeof e.attributes !== 'bigint' || e.attributes < 0n || e.attributes > U64_MASK) {
      throw fail('gptboot', 'INVALID_ARGUMENT', `entry ${e.index}: attributes must be a 64-bit unsigned bigint`);
    }
    return { index: e.index, typeGuid: String(e.typeGuid), label: String(e.label ?? ''), attributes: e.attributes };
  });
}

/** Entries in the order gptboot scans them (ascending slot). */
function scanOrder(entries: readonly SlotEntry[]): SlotEntry[] {
  return [...entries].sort((a, b) => a.index - b.index);
}

function update(entries: readonly SlotEntry[], index: number, f: (attrs: bigint) => bigint): SlotEntry[] {
  return entries.map((e) => (e.index === index ? { ...e, attributes: f(e.attributes) } : e));
}

function find(entries: readonly SlotEntry[], index: number): SlotEntry {
  const e = entries.find((x) => x.index === index);
  if (!e) throw fail('gptboot', 'INVALID_ARGUMENT', `no entry with index ${index}`);
  return e;
}

function slotName(e: SlotEntry): string {
  return e.label ? `${e.label} (p${e.index})` : `p${e.index}`;
}

/**
 * gpt.c gptbootconv(), run by gptread() at every power cycle before anything is chosen:
 * an entry whose (bootme|bootonce|bootfailed) bits are exactly bootonce was tried by an
 * earlier gptboot (which cleared its bootme) but never confirmed by rc.d/gptboot, so it
 * becomes bootfailed with bootonce cleared. The partition type is NOT checked.
 */
export function markStaleBootonce(entries: readonly SlotEntry[]): { entries: SlotEntry[]; changed: number[] } {
  const changed: number[] = [];
  const out = checked(entries).map((e) => {
    if ((e.attributes & BOOT_BITS) !== ATTR_BOOTONCE) return e;
    changed.push(e.index);
    return { ...e, attributes: (e.attributes & ~ATTR_BOOTONCE) | ATTR_BOOTFAILED };
  });
  return { entries: out, changed };
}

/**
 * gpt.c gptfind(uuid, dsk, -1) for freebsd-ufs, with the cursor it keeps between calls
 * expressed as `exclude` (the entries already tried in this power cycle):
 * 1. the first entry with bootme and bootonce;
 * 2. else the first entry with bootme and without bootonce;
 * 3. else, on the first try of the power cycle only, the first freebsd-ufs entry whatever
 *    its attributes.
 * bootfailed is not looked at. This matches the stateful original because the only
 * attributes that change within a power cycle are those of entries already tried.
 */
export function chooseBootSlot(entries: readonly SlotEntry[], opts: { firstTry: boolean; exclude?: readonly number[] }): { index?: number; reason: string } {
  const skip = new Set(opts.exclude ?? []);
  const ufs = scanOrder(checked(entries)).filter((e) => isUfs(e) && !skip.has(e.index));
  const both = ufs.find((e) => has(e, ATTR_BOOTME) && has(e, ATTR_BOOTONCE));
  if (both) {
    return {
      index: both.index,
      reason: `${slotName(both)} is the first freebsd-ufs entry with bootme and bootonce (a one-time trial boot).`,
    };
  }
  const me = ufs.find((e) => has(e, ATTR_BOOTME) && !has(e, ATTR_BOOTONCE));
  if (me) return { index: me.index, reason: `${slotName(me)} is the first freebsd-ufs entry with bootme.` };
  if (opts.firstTry && ufs.length > 0) {
    return {
      index: ufs[0].index,
      reason: `No freebsd-ufs entry has bootme, so the first try takes the first freebsd-ufs entry, ${slotName(ufs[0])}.`,
    };
  }
  if (ufs.length === 0 && skip.size === 0) return { reason: 'There is no freebsd-ufs entry.' };
  return {
    reason: opts.firstTry
      ? 'No freebsd-ufs entry is left to try.'
      : 'No untried freebsd-ufs entry has bootme, and only the first try falls back to the first freebsd-ufs entry.',
  };
}

/**
 * gpt.c gptfind() "found:" — before loading an entry that has bootonce, gptboot clears its
 * bootme on disk (leaving bootonce), so a crash leaves a bootonce-only entry behind.
 */
export function beginBootAttempt(entries: readonly SlotEntry[], index: number): SlotEntry[] {
  const list = checked(entries);
  const e = find(list, index);
  return has(e, ATTR_BOOTONCE) ? update(list, index, (a) => a & ~ATTR_BOOTME) : list;
}

/**
 * gpt.c gptbootfailed() — called by gptboot.c when loader and kernel both failed to load:
 * a bootonce entry loses bootonce and gains bootfailed; any other entry is left as it is
 * (the search simply moves on).
 */
export function markBootFailed(entries: readonly SlotEntry[], index: number): SlotEntry[] {
  const list = checked(entries);
  const e = find(list, index);
  return has(e, ATTR_BOOTONCE) ? update(list, index, (a) => (a & ~ATTR_BOOTONCE) | ATTR_BOOTFAILED) : list;
}

/**
 * libexec/rc/rc.d/gptboot: for each freebsd-ufs entry with bootfailed or bootonce but not
 * bootme: bootfailed -> "Boot from X failed." and `gpart unset -a bootfailed`; otherwise
 * (bootonce) -> "Boot from X succeeded." and `gpart unset -a bootonce`. It is an if/elif, so
 * an entry with both bits only loses bootfailed. The script logs failures as it goes and
 * successes after the loop, so failures come first here too. It never sets bootme.
 * X is `${disk}p${index}` when `disk` is given (the script's form), else the label or pN.
 */
export function confirmBoot(entries: readonly SlotEntry[], opts: { disk?: string } = {}): { entries: SlotEntry[]; messages: string[] } {
  let list = checked(entries);
  const failed: string[] = [];
  const succeeded: string[] = [];
  for (const e of scanOrder(list)) {
    if (!isUfs(e) || has(e, ATTR_BOOTME)) continue;
    const name = opts.disk ? `${opts.disk}p${e.index}` : e.label || `p${e.index}`;
    if (has(e, ATTR_BOOTFAILED)) {
      failed.push(`Boot from ${name} failed.`);
      list = update(list, e.index, (a) => a & ~ATTR_BOOTFAILED);
    } else if (has(e, ATTR_BOOTONCE)) {
      succeeded.push(`Boot from ${name} succeeded.`);
      list = update(list, e.index, (a) => a & ~ATTR_BOOTONCE);
    }
  }
  return { entries: list, messages: [...failed, ...succeeded] };
}

/** `gpart set -a bootonce -i N` (g_part_gpt_setunset): sets bootonce AND bootme. */
export function setBootonce(entries: readonly SlotEntry[], index: number): SlotEntry[] {
  const list = checked(entries);
  find(list, index);
  return update(list, index, (a) => a | ATTR_BOOTONCE | ATTR_BOOTME);
}

/**
 * Make a slot the permanent default (what an upgrade script does after a confirmed trial
 * boot; FreeBSD itself never does this): bootme on `index` with its bootonce and bootfailed
 * cleared, bootme cleared on every other freebsd-ufs entry.
 */
export function activateSlot(entries: readonly SlotEntry[], index: number): SlotEntry[] {
  const list = checked(entries);
  const target = find(list, index);
  if (!isUfs(target)) throw fail('gptboot', 'INVALID_ARGUMENT', `entry ${index} is not freebsd-ufs; gptboot would never choose it`);
  return list.map((e) => {
    if (e.index === index) return { ...e, attributes: (e.attributes | ATTR_BOOTME) & ~(ATTR_BOOTONCE | ATTR_BOOTFAILED) };
    if (isUfs(e)) return { ...e, attributes: e.attributes & ~ATTR_BOOTME };
    return e;
  });
}

/** 'bootme,bootonce,bootfailed' order for FreeBSD's bits, then any other set bits; '-' if none. */
export function describeAttributes(bits: bigint): string {
  const v = bits & U64_MASK;
  const names: string[] = [];
  if (v & ATTR_BOOTME) names.push('bootme');
  if (v & ATTR_BOOTONCE) names.push('bootonce');
  if (v & ATTR_BOOTFAILED) names.push('bootfailed');
  names.push(...gptAttributeNames(v & ~BOOT_BITS));
  return names.length ? names.join(',') : '-';
}

/**
 * Repeated power cycles under gptboot.
 *
 * Outcome consumption rule: every load attempt consumes exactly one element of `outcomes`,
 * in order. Within a power cycle:
 *  - gptbootconv (markStaleBootonce) runs first;
 *  - the chosen entry gets beginBootAttempt (bootme cleared if it has bootonce);
 *  - 'fail' -> markBootFailed (only bootonce entries change) and the search continues in
 *    the SAME power cycle with the next candidate, which consumes the NEXT outcome;
 *  - 'ok' -> the OS is up; rc.d/gptboot (confirmBoot) runs unless `confirm` is false or the
 *    element is `{ outcome: 'ok', confirm: false }`; the power cycle ends;
 *  - 'crash' -> the OS loaded and died before rc.d/gptboot; the power cycle ends.
 * When no candidate is left after failures, gptboot stops at its "boot:" prompt; the step
 * ends with no `booted`, and the next power cycle (someone presses reset) starts afresh.
 * A power cycle that finds nothing to try at all consumes no outcome and ends the
 * simulation (every further cycle would be identical). The simulation also ends when an
 * attempt needs an outcome and none is left: a power cycle cut short that way after at
 * least one failed attempt is still reported (no `booted`, `after` = the state so far);
 * one cut short before any attempt is not. So every reported step consumed at least one
 * outcome, except a final nothing-to-try step, and the run always terminates after at most
 * outcomes.length + 1 steps.
 */
export function simulateBoots(
  entries: readonly SlotEntry[],
  outcomes: ReadonlyArray<BootOutcome | BootAttemptSpec>,
  opts: { confirm?: boolean; disk?: string } = {},
): BootStep[] {
  const confirmDefault = opts.confirm ?? true;
  const queue = outcomes.map((o) => (typeof o === 'string' ? { outcome: o } : o));
  for (const q of queue) {
    if (q.outcome !== 'ok' && q.outcome !== 'fail' && q.outcome !== 'crash') throw fail('gptboot', 'INVALID_ARGUMENT', `unknown outcome ${String(q.outcome)}`);
  }
  let state = checked(entries);
  let next = 0;
  const steps: BootStep[] = [];
  for (let boot = 1; ; boot++) {
    const before = state;
    const messages: string[] = [];
    const conv = markStaleBootonce(state);
    state = conv.entries;
    for (const i of conv.changed) {
      messages.push(`gptboot: p${i} still had bootonce without bootme (never confirmed): marked bootfailed.`);
    }
    const tried: BootStep['tried'] = [];
    const exclude: number[] = [];
    let booted: number | undefined;
    let outcome: BootOutcome = 'fail';
    let outOfOutcomes = false;
    for (;;) {
      const choice = chooseBootSlot(state, { firstTry: tried.length === 0, exclude });
      if (choice.index === undefined) {
        messages.push(
          tried.length === 0 ? `gptboot: no UFS partition was found (${choice.reason})` : `gptboot: ${choice.reason} gptboot waits at its boot: prompt.`,
        );
        break;
      }
      if (next >= queue.length) {
        outOfOutcomes = true;
        break;
      }
      const attempt = queue[next++];
      const index = choice.index;
      state = beginBootAttempt(state, index);
      exclude.push(index);
      outcome = attempt.outcome;
      if (attempt.outcome === 'fail') {
        tried.push({ index, reason: choice.reason, result: 'failed' });
        const wasOnce = has(find(state, index), ATTR_BOOTONCE);
        state = markBootFailed(state, index);
        messages.push(
          wasOnce ? `gptboot: loading p${index} failed; bootonce replaced by bootfailed.` : `gptboot: loading p${index} failed; trying the next candidate.`,
        );
        continue;
      }
      booted = index;
      if (attempt.outcome === 'crash') {
        tried.push({ index, reason: choice.reason, result: 'crashed' });
        messages.push(`p${index} loaded but the system went down before rc.d/gptboot ran.`);
        break;
      }
      tried.push({ index, reason: choice.reason, result: 'booted' });
      if (attempt.confirm ?? confirmDefault) {
        const c = confirmBoot(state, { disk: opts.disk });
        state = c.entries;
        messages.push(...c.messages);
      }
      break;
    }
    if (outOfOutcomes && tried.length === 0) break;
    if (outOfOutcomes) {
      // The cycle was cut short mid-search: report what happened so far, then stop.
      steps.push({ boot, outcome, before, tried, after: state, messages });
      break;
    }
    steps.push({ boot, outcome, before, tried, booted, after: state, messages });
    if (tried.length === 0) break;
    if (next >= queue.length) break;
  }
  return steps;
}

/**
 * A PROPOSED fallback for the boot stage itself. This is NOT what pmbr does today:
 * stand/i386/pmbr/pmbr.S loads the first freebsd-boot partition and ignores attributes.
 * Proposal: pmbr takes the first freebsd-boot partition without bootfailed; a boot stage
 * that fails gets bootfailed, so the next power cycle takes the next freebsd-boot
 * partition. `failures` is how many consecutive boot stages fail before one works.
 * Something on the OS side would have to clear bootfailed again; that is not modelled.
 */
export function simulateBootStageFallback(entries: readonly SlotEntry[], failures: number): Array<{ boot: number; stage?: number; reason: string }> {
  if (!Number.isSafeInteger(failures) || failures < 0) throw fail('gptboot', 'INVALID_ARGUMENT', 'failures must be a non-negative integer');
  let state = scanOrder(checked(entries));
  const out: Array<{ boot: number; stage?: number; reason: string }> = [];
  for (let boot = 1; ; boot++) {
    const stage = state.find((e) => isBootPart(e) && !has(e, ATTR_BOOTFAILED));
    if (!stage) {
      out.push({ boot, reason: 'No freebsd-boot partition without bootfailed is left: the machine cannot boot.' });
      return out;
    }
    if (boot <= failures) {
      out.push({
        boot,
        stage: stage.index,
        reason: `${slotName(stage)} is the first freebsd-boot partition without bootfailed; its boot stage fails and it is marked bootfailed.`,
      });
      state = update(state, stage.index, (a) => a | ATTR_BOOTFAILED);
      continue;
    }
    out.push({
      boot,
      stage: stage.index,
      reason: `${slotName(stage)} is the first freebsd-boot partition without bootfailed; its boot stage runs.`,
    });
    return out;
  }
}
