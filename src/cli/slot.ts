/** The `diskmint slot` and `diskmint preset` command groups. */
import { Command, Option } from 'commander';
import { slotActivate, slotBootonce, slotConfirm, slotStatus, slotWrite, type SlotStatus } from '../ops/slots/slots.js';
import { parseOutcomes, slotSimulate, type SimulationReport } from '../ops/slots/simulate.js';
import { describeAttributes } from '../../formats/boot/gptboot.js';
import { formatBytes } from '../model/size.js';
import { PRESETS, presetTemplate, type PresetName } from '../layout/presets.js';
import { printJson } from './report.js';
import { printOut } from './output.js';



function formatStatus(s: SlotStatus): string {
  const lines = [`${s.path}: ${s.format}, ${s.scheme.toUpperCase()} slots`];
  for (const b of s.bootStages) lines.push(`  boot stage ${b.index} ${b.label || ''} ${formatBytes(b.sizeBytes)} sha256 ${b.sha256}`);
  for (const x of s.slots) {
    const fs = x.filesystem.label ? `${x.filesystem.kind} "${x.filesystem.label}"` : x.filesystem.kind;
    lines.push(`  slot ${x.index} ${x.label.padEnd(6)} ${formatBytes(x.sizeBytes).padStart(9)}  [${x.attributes.join(',') || '-'}]  ${fs.padEnd(16)} sha256 ${x.sha256}${x.isDefault ? '  (default)' : ''}`);
  }
  lines.push(`  next boot: ${s.next.index !== undefined ? `slot ${s.next.index}${s.next.label ? ` (${s.next.label})` : ''}` : 'nothing'}: ${s.next.reason}`);
  return lines.join('\n');
}

function formatSimulation(r: SimulationReport): string {
  const lines: string[] = [];
  const table = (entries: Array<{ index: number; label: string; attributes: bigint }>) => entries.map((e) => `${e.label || e.index}=${describeAttributes(e.attributes)}`).join(' ');
  for (const s of r.steps) {
    lines.push(`boot ${s.boot}: outcome ${s.outcome}`);
    lines.push(`  on disk before: ${table(s.before)}`);
    for (const t of s.tried) lines.push(`  tries slot ${t.index}: ${t.reason} -> ${t.result}`);
    for (const m of s.messages) lines.push(`  ${m}`);
    lines.push(`  on disk after:  ${table(s.after)}${s.booted !== undefined ? `   (running slot ${s.booted})` : '   (nothing booted)'}`);
  }
  for (const b of r.bootStages ?? []) lines.push(`boot stage, power cycle ${b.boot}: ${b.stage !== undefined ? `freebsd-boot partition ${b.stage}` : 'none'}: ${b.reason}`);
  return lines.join('\n');
}

export function addSlotCommands(program: Command): void {
  const slot = program.command('slot').description('A/B OS slots: status, write, bootonce, confirm, activate, simulate (SLOT = index or GPT label)');
  slot.command('status').argument('<image>').option('--json').option('--no-hash', 'skip hashing slot contents')
    .description('every slot with attributes, size, hash and filesystem, and what boots next')
    .action(async (image: string, o: { json?: boolean; hash: boolean }) => {
      const s = await slotStatus(image, { hash: o.hash });
      if (o.json) printJson(s);
      else printOut(`${formatStatus(s)}\n`);
    });
  slot.command('write').argument('<image>').argument('<slot>').requiredOption('--from <file>', 'filesystem image, or a signed update bundle (.dmb), to write')
    .option('--bootonce', 'then request a one-time boot of the slot (bootonce + bootme)')
    .option('--force', 'allow writing the slot that boots by default')
    .option('--pubkey <file>', 'bundles: the Ed25519 public key the bundle must be signed with')
    .option('--require-signature', 'refuse anything but a bundle signed by --pubkey').option('--json')
    .description('write an OS image or update bundle into a slot, read it back and compare hashes')
    .action(async (image: string, ref: string, o: { from: string; bootonce?: boolean; force?: boolean; json?: boolean; pubkey?: string; requireSignature?: boolean }) => {
      const r = await slotWrite(image, ref, o.from, o);
      if (o.json) printJson(r);
      else printOut(`slot ${r.slot}${r.label ? ` (${r.label})` : ''}: wrote ${formatBytes(r.bytes)}, read back sha256 ${r.sha256.slice(0, 12)} matches${r.bootonce ? '; bootonce set' : ''}\n`);
    });
  slot.command('bootonce').argument('<image>').argument('<slot>').description('request a one-time boot (as gpart set -a bootonce)')
    .action(async (image: string, ref: string) => {
      await slotBootonce(image, ref);
    });
  slot.command('confirm').argument('<image>').description("what FreeBSD's rc.d/gptboot does after a good boot")
    .action(async (image: string) => {
      for (const m of await slotConfirm(image)) printOut(`${m}\n`);
    });
  slot.command('activate').argument('<image>').argument('<slot>').description('make a slot the permanent default (GPT bootme, or the MBR active flag)')
    .action(async (image: string, ref: string) => {
      await slotActivate(image, ref);
    });
  slot.command('simulate').argument('<image>').requiredOption('--outcomes <list>', 'one per load attempt: ok, fail (gptboot cannot load it) or crash (the OS dies before rc.d/gptboot)')
    .option('--no-confirm', 'do not run rc.d/gptboot after a good boot')
    .addOption(new Option('--boot-stage-fails <n>', 'also show the proposed boot-stage fallback with the first N stages failing').argParser(Number))
    .option('--json').description("apply FreeBSD gptboot's rules to a copy in memory and show each boot")
    .action(async (image: string, o: { outcomes: string; confirm: boolean; bootStageFails?: number; json?: boolean }) => {
      const r = await slotSimulate(image, parseOutcomes(o.outcomes), { confirm: o.confirm, bootStageFails: o.bootStageFails });
      if (o.json) printJson(r);
      else printOut(`${formatSimulation(r)}\n`);
    });

  const preset = program.command('preset').description('ready-made layouts: nanobsd (GPT), nanobsd-mbr');
  preset.command('show').addArgument(new Command().createArgument('<name>', 'preset name').choices([...PRESETS]))
    .description('print the preset as a layout file to copy and edit')
    .action((name: PresetName) => {
      printJson(presetTemplate(name));
    });
}
