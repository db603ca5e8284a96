/** The `diskmint zfs` command group: labels, the boot environment, one-time boot requests. */
import { Command } from 'commander';
import { zfsBootenv, zfsLabels, type ZfsBootenvReport, type ZfsLabelsReport } from '../ops/zfs.js';
import { zfsSetBootonce } from '../ops/zfs-bootonce.js';
import { DiskmintError } from '../model/errors.js';
import { printOut, printErr } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';

function formatLabels(r: ZfsLabelsReport): string {
  const lines = [`${r.spec}: ZFS vdev of ${r.vdevSize} bytes`];
  for (const l of r.labels) {
    const s = l.summary;
    const head = `  label ${l.index} at ${l.offset}: checksum ${l.checksumValid ? 'ok' : 'BAD'}`;
    if (!s) {
      lines.push(`${head}, nvlist unreadable: ${l.error}`);
      continue;
    }
    lines.push(`${head}, pool '${s.name}' version ${s.version} state ${s.state} txg ${s.txg}`);
    lines.push(`    pool_guid ${s.poolGuid}  guid ${s.guid}  top_guid ${s.topGuid}  ${s.vdevType ?? '?'} ashift ${s.ashift} asize ${s.asize}`);
    const feats = l.config?.features_for_read;
    if (feats && typeof feats === 'object') lines.push(`    features_for_read: ${Object.keys(feats).join(', ') || '-'}`);
    lines.push(`    uberblocks: ${l.validUberblocks} valid of ${l.uberblocks}`);
  }
  lines.push(r.agree ? '  labels agree' : `  labels DISAGREE${r.disagreements.length ? `: ${r.disagreements.join('; ')}` : ''}`);
  const u = r.activeUberblock;
  lines.push(
    u
      ? `  active uberblock: txg ${u.txg}, guid_sum ${u.guidSum}, timestamp ${u.timestamp} (${new Date(Number(u.timestamp) * 1000).toISOString()}), version ${u.version}, slot ${u.slot}`
      : '  no valid uberblock',
  );
  return lines.join('\n');
}

function formatBootenv(r: ZfsBootenvReport): string {
  const old = r.oldBootHeader;
  if (old) {
    // A 2006-era pool: the block holds vdev_boot_header_t, not an environment (no version to show).
    return [
      `${r.spec}: no boot environment; label ${r.fromLabel} holds an old vdev_boot_header (version ${old.version}, boot area at byte ${old.offset}, ${old.size} bytes, ${old.endian}-endian)`,
      `  labels: ${r.labels.map((l) => `${l.index}:${l.checksumValid ? 'ok' : 'BAD'}`).join(' ')}${r.agree ? ', all agree' : ', DISAGREE'}`,
    ].join('\n');
  }
  const lines = [
    `${r.spec}: boot environment${r.fromLabel !== undefined ? ` (label ${r.fromLabel}), version ${r.version}` : ': no label with a valid checksum'}`,
  ];
  lines.push(`  freebsd:bootonce       ${r.bootonce ?? '-'}`);
  lines.push(`  freebsd:bootonce-used  ${r.bootonceUsed ?? '-'}`);
  for (const [k, v] of Object.entries(r.env ?? {})) {
    if (k !== 'freebsd:bootonce' && k !== 'freebsd:bootonce-used') lines.push(`  ${k.padEnd(22)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  lines.push(`  labels: ${r.labels.map((l) => `${l.index}:${l.checksumValid ? 'ok' : 'BAD'}`).join(' ')}${r.agree ? ', all agree' : ', DISAGREE'}`);
  return lines.join('\n');
}

export function addZfsCommands(program: Command): void {
  const zfs = program.command('zfs').description('ZFS vdev labels and boot environments, offline (IMG:N picks partition N)');

  zfs
    .command('label')
    .argument('<image>', 'IMG or IMG:N')
    .addOption(opts.json.make())
    .description('the four vdev labels as zdb -l reads them: checksums, agreement, active uberblock')
    .action(async (image: string, o: { json?: boolean }) => {
      const r = await zfsLabels(image);
      if (o.json) printJson(r);
      else printOut(`${formatLabels(r)}\n`);
    });

  zfs
    .command('bootenv')
    .argument('<image>', 'IMG or IMG:N')
    .addOption(opts.json.make())
    .description('the boot environment: freebsd:bootonce, freebsd:bootonce-used and the rest')
    .action(async (image: string, o: { json?: boolean }) => {
      const r = await zfsBootenv(image);
      if (o.json) printJson(r);
      else printOut(`${formatBootenv(r)}\n`);
    });

  zfs
    .command('bootonce')
    .argument('<image>', 'IMG or IMG:N')
    .argument('[dataset]', 'POOL/ROOT/BE (stored as zfs:POOL/ROOT/BE:) or a zfs:... descriptor')
    .addOption(opts.flag('--clear', 'remove the one-time boot request').make())
    .addOption(opts.json.make())
    .addOption(opts.lockTimeout.make())
    .description('request a one-time boot of a boot environment, as zfsbootcfg does (all four labels, crash-safe)')
    .action(async (image: string, dataset: string | undefined, o: { clear?: boolean; json?: boolean; lockTimeout?: number }) => {
      if (o.clear && dataset !== undefined) throw new DiskmintError('BAD_ARGUMENT', 'give a dataset or --clear, not both');
      if (!o.clear && dataset === undefined) throw new DiskmintError('BAD_ARGUMENT', 'give POOL/ROOT/BE, or --clear to remove the request');
      const r = await zfsSetBootonce(image, o.clear ? undefined : dataset, { lockTimeout: o.lockTimeout });
      for (const w of r.warnings) printErr(`diskmint: warning: ${w}\n`);
      if (o.json) printJson(r);
      else
        printOut(
          `${image}: pool '${r.pool}': freebsd:bootonce ${r.bootonce ? `= ${r.bootonce}` : 'removed'} (was ${r.previous ?? 'unset'}); labels ${r.labelsWritten.join(', ')} written\n`,
        );
    });
}
