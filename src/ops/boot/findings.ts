/**
 * `verify --boot` on boot-stage fallback (bootcode/SELECTOR.md): whether a failed boot-stage
 * update can fall back. Warnings: one freebsd-boot partition only; the selector not installed
 * (pmbr loads only the first); a backup stage empty, in a partition larger than pmbr's
 * 558,080-byte limit, or failing its table check. Error: the selector finds no stage to load.
 */
import { chooseBootStage, defaultBootStage } from '../../../formats/boot/stage-choice.js';
import { STAGE_MAX_BYTES } from '../../../formats/boot/stage-table.js';
import { DiskmintError } from '../../model/errors.js';
import { finding, type Finding } from '../../model/findings.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { checksOf, readBootStages, type BootStagesView } from './read.js';

export interface StageFallbackReport {
  findings: Finding[];
  /** The selector is installed: per-stage emptiness and size are these findings' to judge. */
  selectorInstalled: boolean;
}

async function viewOf(disk: DiskReader): Promise<BootStagesView | undefined> {
  try {
    return await readBootStages(disk);
  } catch (err) {
    if (err instanceof DiskmintError) return undefined; // no valid GPT: the table findings say so
    throw err;
  }
}

export async function stageFallbackFindings(disk: DiskReader): Promise<StageFallbackReport> {
  const view = await viewOf(disk);
  const out: Finding[] = [];
  if (!view || view.stages.length === 0) return { findings: out, selectorInstalled: false };
  const where = (i: number) => `gpt.partition[${i}]`;
  const installed = view.selector.installed;
  if (view.stages.length === 1) {
    out.push(
      finding(
        'warning',
        'boot.stage-single',
        'only one freebsd-boot partition: a boot-stage update that does not boot cannot fall back (two, and "bootcode": "diskmint-fallback", can)',
        where(view.stages[0].index),
      ),
    );
  } else if (!installed) {
    out.push(
      finding(
        'warning',
        'boot.selector-missing',
        `diskmint's fallback selector is not installed (${view.selector.missing.join('; ')}): pmbr loads only the first freebsd-boot partition, so the others are no fallback`,
        'boot',
      ),
    );
  }
  if (!installed) return { findings: out, selectorInstalled: false };
  const checks = checksOf(view);
  const choice = chooseBootStage(view.entries, checks);
  if (choice.chosen === undefined) {
    out.push(
      finding(
        'error',
        'boot.no-loadable-stage',
        `no freebsd-boot partition passes its check (${view.stages.map((s) => `p${s.index} ${s.check}`).join(', ')}): the selector halts`,
        'boot',
      ),
    );
    return { findings: out, selectorInstalled: true };
  }
  out.push(finding('info', 'boot.selector', `the fallback selector boots freebsd-boot partition ${choice.chosen} next: ${choice.reason}`, 'boot'));
  const byDefault = defaultBootStage(view.entries, checks);
  for (const s of view.stages) {
    if (s.index === byDefault) continue;
    const name = `backup boot stage ${s.index}${s.label ? ` "${s.label}"` : ''}`;
    if (s.check === 'empty') out.push(finding('warning', 'boot.backup-empty', `${name} is empty: there is nothing to fall back to`, where(s.index)));
    if (s.check === 'mismatch')
      out.push(finding('warning', 'boot.backup-mismatch', `${name} does not match its stage-table record: the selector will not load it`, where(s.index)));
    if (s.sizeBytes > STAGE_MAX_BYTES)
      out.push(
        finding(
          'warning',
          'boot.backup-too-large',
          `${name} is a ${s.sizeBytes}-byte partition; the selector, like pmbr, loads at most ${STAGE_MAX_BYTES} bytes of it`,
          where(s.index),
        ),
      );
  }
  return { findings: out, selectorInstalled: true };
}
