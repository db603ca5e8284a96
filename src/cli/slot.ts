/** The `diskmint slot` and `diskmint preset` command groups. */
import { Command } from 'commander';
import type { SlotStatus } from '../ops/slots/slots.js';
import { parseOutcomes, slotSimulate, type SimulationReport } from '../ops/slots/simulate.js';
import { describeAttributes } from '../../formats/boot/gptboot.js';
import { formatBytes } from '../model/size.js';
import { PRESETS, presetTemplate, type PresetName } from '../layout/presets.js';
import { printJson } from './json.js';
import { printOut } from './output.js';
import * as opts from './options.js';
import type { Values } from './options.js';
import { withImage } from './with-image.js';

function formatStatus(s: SlotStatus): string {
  const lines = [`${s.path}: ${s.format}, ${s.scheme.toUpperCase()} slots`];
  for (const b of s.bootStages) lines.push(`  boot stage ${b.index} ${b.label || ''} ${formatBytes(b.sizeBytes)} sha256 ${b.sha256}`);
  for (const x of s.slots) {
    const fs = x.filesystem.label ? `${x.filesystem.kind} "${x.filesystem.label}"` : x.filesystem.kind;
    lines.push(
      `  slot ${x.index} ${x.label.padEnd(6)} ${formatBytes(x.sizeBytes).padStart(9)}  [${x.attributes.join(',') || '-'}]  ${fs.padEnd(16)} sha256 ${x.sha256}${x.isDefault ? '  (default)' : ''}`,
    );
  }
  lines.push(`  next boot: ${s.next.index !== undefined ? `slot ${s.next.index}${s.next.label ? ` (${s.next.label})` : ''}` : 'nothing'}: ${s.next.reason}`);
  return lines.join('\n');
}

function formatSimulation(r: SimulationReport): string {
  const lines: string[] = [];
  const table = (entries: Array<{ index: number; label: string; attributes: bigint }>) =>
    entries.map((e) => `${e.label || e.index}=${describeAttributes(e.attributes)}`).join(' ');
  for (const s of r.steps) {
    lines.push(`boot ${s.boot}: outcome ${s.outcome}`);
    lines.push(`  on disk before: ${table(s.before)}`);
    for (const t of s.tried) lines.push(`  tries slot ${t.index}: ${t.reason} -> ${t.result}`);
    for (const m of s.messages) lines.push(`  ${m}`);
    lines.push(`  on disk after:  ${table(s.after)}${s.booted !== undefined ? `   (running slot ${s.booted})` : '   (nothing booted)'}`);
  }
  for (const b of r.bootStages ?? [])
    lines.push(`boot stage, power cycle ${b.boot}: ${b.stage !== undefined ? `freebsd-boot partition ${b.stage}` : 'none'}: ${b.reason}`);
  return lines.join('\n');
}

const STATUS_OPTIONS = [opts.json, opts.flag('--no-hash', 'skip hashing slot contents')] as const;
const WRITE_OPTIONS = [
  opts.required(opts.described(opts.from, 'filesystem image, or a signed update bundle (.dmb), to write')),
  opts.flag('--bootonce', 'then request a one-time boot of the slot (bootonce + bootme)'),
  opts.flag('--force', 'allow writing the slot that boots by default'),
  opts.described(opts.pubkey, 'bundles: the Ed25519 public key the bundle must be signed with'),
  opts.requireSignature,
  opts.lockTimeout,
  opts.json,
] as const;
const EDIT_OPTIONS = [opts.lockTimeout] as const;
const SIMULATE_OPTIONS = [
  opts.required(opts.text('--outcomes <list>', 'one per load attempt: ok, fail (gptboot cannot load it) or crash (the OS dies before rc.d/gptboot)')),
  opts.flag('--no-confirm', 'do not run rc.d/gptboot after a good boot'),
  opts.integer('--boot-stage-fails <n>', 'also show the proposed boot-stage fallback with the first N stages failing', 0, 128),
  opts.json,
] as const;

export function addSlotCommands(program: Command): void {
  const slot = program.command('slot').description('A/B OS slots: status, write, bootonce, confirm, activate, simulate (SLOT = index or GPT label)');
  opts
    .addOptions(
      slot.command('status').argument('<image>').description('every slot with attributes, size, hash and filesystem, and what boots next'),
      STATUS_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof STATUS_OPTIONS>) => {
      const s = await withImage(path, (image) => image.slots({ hash: o.hash }));
      if (o.json) printJson(s);
      else printOut(`${formatStatus(s)}\n`);
    });
  opts
    .addOptions(
      slot
        .command('write')
        .argument('<image>')
        .argument('<slot>')
        .description('write an OS image or update bundle into a slot, read it back and compare hashes'),
      WRITE_OPTIONS,
    )
    .action(async (path: string, ref: string, o: Values<typeof WRITE_OPTIONS>) => {
      const r = await withImage(path, (image) => image.slotWrite(ref, o.from, o), { lockTimeout: o.lockTimeout });
      if (o.json) printJson(r);
      else
        printOut(
          `slot ${r.slot}${r.label ? ` (${r.label})` : ''}: wrote ${formatBytes(r.bytes)}, read back sha256 ${r.sha256.slice(0, 12)} matches${r.bootonce ? '; bootonce set' : ''}\n`,
        );
    });
  opts
    .addOptions(slot.command('bootonce'), EDIT_OPTIONS)
    .argument('<image>')
    .argument('<slot>')
    .description('request a one-time boot (as gpart set -a bootonce)')
    .action(async (path: string, ref: string, o: Values<typeof EDIT_OPTIONS>) => {
      await withImage(path, (image) => image.bootonce(ref), { lockTimeout: o.lockTimeout });
    });
  opts
    .addOptions(slot.command('confirm'), EDIT_OPTIONS)
    .argument('<image>')
    .description("what FreeBSD's rc.d/gptboot does after a good boot")
    .action(async (path: string, o: Values<typeof EDIT_OPTIONS>) => {
      for (const m of await withImage(path, (image) => image.confirm(), { lockTimeout: o.lockTimeout })) printOut(`${m}\n`);
    });
  opts
    .addOptions(slot.command('activate'), EDIT_OPTIONS)
    .argument('<image>')
    .argument('<slot>')
    .description('make a slot the permanent default (GPT bootme, or the MBR active flag)')
    .action(async (path: string, ref: string, o: Values<typeof EDIT_OPTIONS>) => {
      await withImage(path, (image) => image.activate(ref), { lockTimeout: o.lockTimeout });
    });
  opts
    .addOptions(
      slot.command('simulate').argument('<image>').description("apply FreeBSD gptboot's rules to a copy in memory and show each boot"),
      SIMULATE_OPTIONS,
    )
    .action(async (image: string, o: Values<typeof SIMULATE_OPTIONS>) => {
      const r = await slotSimulate(image, parseOutcomes(o.outcomes), { confirm: o.confirm, bootStageFails: o.bootStageFails });
      if (o.json) printJson(r);
      else printOut(`${formatSimulation(r)}\n`);
    });

  const preset = program.command('preset').description('ready-made layouts: nanobsd (GPT), nanobsd-mbr');
  preset
    .command('show')
    .addArgument(new Command().createArgument('<name>', 'preset name').choices([...PRESETS]))
    .description('print the preset as a layout file to copy and edit')
    .action((name: PresetName) => {
      printJson(presetTemplate(name));
    });
}
