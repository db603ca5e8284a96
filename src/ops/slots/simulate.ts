/** `slot simulate`: FreeBSD gptboot's choice applied to a copy of the image's table, in memory. */
import { DiskmintError } from '../../model/errors.js';
import { openDisk } from '../../io/open-disk.js';
import { simulateBoots, simulateBootStageFallback, type BootOutcome, type BootStep } from '../../../formats/boot/gptboot.js';
import { slotTable } from './slots.js';

export interface SimulationReport {
  steps: BootStep[];
  /** With --boot-stage-fails: which freebsd-boot partition each power cycle would start (a proposal; pmbr does not do this today). */
  bootStages?: Array<{ boot: number; stage?: number; reason: string }>;
}

export function parseOutcomes(text: string): BootOutcome[] {
  const out = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of out) if (o !== 'ok' && o !== 'fail' && o !== 'crash') throw new DiskmintError('BAD_ARGUMENT', `--outcomes: "${o}" is not ok, fail or crash`);
  if (!out.length) throw new DiskmintError('BAD_ARGUMENT', '--outcomes needs at least one of ok, fail, crash');
  return out as BootOutcome[];
}

export async function slotSimulate(
  path: string,
  outcomes: BootOutcome[],
  opts: { bootStageFails?: number; confirm?: boolean } = {},
): Promise<SimulationReport> {
  const { reader } = await openDisk(path);
  try {
    const { slots } = await slotTable(reader);
    if (!slots.oneTimeBoot)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `slot simulate plays FreeBSD gptboot's choice: ${slots.noOneTimeBoot?.bootonce ?? 'this image has no one-time boot'}`,
      );
    const entries = await slots.oneTimeBoot.entries(reader);
    const report: SimulationReport = { steps: simulateBoots(entries, outcomes, { confirm: opts.confirm ?? true }) };
    if (opts.bootStageFails !== undefined) report.bootStages = simulateBootStageFallback(entries, opts.bootStageFails);
    return report;
  } finally {
    await reader.close();
  }
}
