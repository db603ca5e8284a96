/** The `diskmint boot` command group: diskmint's fallback boot-stage selector (bootcode/SELECTOR.md). */
import type { Command } from 'commander';
import { describeAttributes } from '../../formats/boot/gptboot.js';
import { bootConfirm, bootSimulate, bootStatus, bootUpdate, type BootSimulation, type BootStatus } from '../ops/boot/index.js';
import { parseOutcomes } from '../ops/slots/simulate.js';
import { formatBytes } from '../model/size.js';
import { printJson } from './json.js';
import { printOut } from './output.js';
import * as opts from './options.js';
import type { Values } from './options.js';

function formatStatus(s: BootStatus): string {
  const lines = [
    `${s.path}: ${s.format}, fallback selector ${s.selector.installed ? `installed (BIOS-boot partition ${s.selector.partition})` : 'NOT installed'}`,
  ];
  for (const m of s.selector.missing) lines.push(`  selector: ${m}`);
  for (const x of s.stages) {
    const record = x.record ? `table ${formatBytes(x.record.length)} crc ${x.record.crc32}` : 'no table record';
    lines.push(
      `  stage ${x.index} ${x.label.padEnd(9)} ${formatBytes(x.sizeBytes).padStart(9)}  [${x.attributes}]  ${x.check.padEnd(9)} ${record}${x.sha256 ? `  sha256 ${x.sha256.slice(0, 12)}` : ''}${x.isDefault ? '  (default)' : ''}`,
    );
  }
  lines.push(`  next boot: ${s.next.index !== undefined ? `stage ${s.next.index}${s.next.label ? ` (${s.next.label})` : ''}` : 'nothing'}: ${s.next.reason}`);
  for (const w of s.next.writes) lines.push(`    the selector first writes p${w.index}: ${w.before} -> ${w.after} (${w.why})`);
  return lines.join('\n');
}

function formatSimulation(r: BootSimulation): string {
  const table = (entries: Array<{ index: number; label: string; typeGuid: string; attributes: bigint }>) =>
    entries
      .filter((e) => r.checks.some((c) => c.index === e.index))
      .map((e) => `${e.label || e.index}=${describeAttributes(e.attributes)}`)
      .join(' ');
  const lines = [`stage checks: ${r.checks.map((c) => `p${c.index} ${c.check}`).join(', ')}`];
  for (const s of r.steps) {
    lines.push(`boot ${s.boot}: ${s.outcome ? `outcome ${s.outcome}` : 'the selector halts'}`);
    lines.push(`  on disk before: ${table(s.before)}`);
    for (const a of s.choice.attempts) lines.push(`  candidate p${a.index}: ${a.check} -> ${a.result}`);
    if (s.choice.chosen !== undefined) lines.push(`  boots p${s.choice.chosen}: ${s.choice.reason}`);
    for (const m of s.messages) lines.push(`  ${m}`);
    lines.push(`  on disk after:  ${table(s.after)}`);
  }
  return lines.join('\n');
}

const STATUS_OPTIONS = [opts.json, opts.flag('--no-hash', 'skip hashing the stages')] as const;
const UPDATE_OPTIONS = [
  opts.required(opts.described(opts.from, 'the new boot stage (gptboot, gptzfsboot), at most 558,080 bytes')),
  opts.flag('--bootonce', 'then mark it to be tried once (bootonce + bootme)'),
  opts.lockTimeout,
  opts.json,
] as const;
const CONFIRM_OPTIONS = [opts.lockTimeout, opts.json] as const;
const SIMULATE_OPTIONS = [
  opts.required(
    opts.text('--outcomes <list>', 'one per stage the selector jumps into: ok, fail (the stage does not work) or crash (the OS dies before a confirm)'),
  ),
  opts.flag('--no-confirm', 'do not run boot confirm after a good boot'),
  opts.json,
] as const;

export function addBootCommands(program: Command): void {
  const boot = program.command('boot').description("boot stages under diskmint's fallback selector: status, update, confirm, simulate");
  opts
    .addOptions(
      boot.command('status').argument('<image>').description('each freebsd-boot partition: attributes, size, hash, table check; what boots next and why'),
      STATUS_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof STATUS_OPTIONS>) => {
      const s = await bootStatus(path, { hash: o.hash });
      if (o.json) printJson(s);
      else printOut(`${formatStatus(s)}\n`);
    });
  opts
    .addOptions(
      boot
        .command('update')
        .argument('<image>')
        .description('write a new boot stage into the freebsd-boot partition that is not the default, record it, read it back'),
      UPDATE_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof UPDATE_OPTIONS>) => {
      const r = await bootUpdate(path, { from: o.from, bootonce: o.bootonce, lockTimeout: o.lockTimeout });
      if (o.json) printJson(r);
      else
        printOut(
          `stage ${r.stage}${r.label ? ` (${r.label})` : ''}: wrote ${formatBytes(r.bytes)}, recorded crc ${r.crc32}, read back sha256 ${r.sha256.slice(0, 12)} matches${r.bootonce ? '; bootonce set' : ''}\n`,
        );
    });
  opts
    .addOptions(
      boot.command('confirm').argument('<image>').description('after a good boot of a tried stage: make it the default, clear bootfailed'),
      CONFIRM_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof CONFIRM_OPTIONS>) => {
      const r = await bootConfirm(path, { lockTimeout: o.lockTimeout });
      if (o.json) printJson(r);
      else for (const m of r.messages) printOut(`${m}\n`);
    });
  opts
    .addOptions(
      boot.command('simulate').argument('<image>').description("apply the selector's rules to a copy in memory and show each power-up"),
      SIMULATE_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof SIMULATE_OPTIONS>) => {
      const r = await bootSimulate(path, parseOutcomes(o.outcomes), { confirm: o.confirm });
      if (o.json) printJson(r);
      else printOut(`${formatSimulation(r)}\n`);
    });
}
