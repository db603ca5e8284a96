/** Human-readable text for `info`, `build` and `verify` (the CLI's --json prints the objects). */
import type { Finding } from '../model/findings.js';
import type { ImageInspection } from '../ops/inspect.js';
import type { VerifyReport } from '../ops/verify/verify.js';
import type { BuildResult, BuildSummary } from '../ops/build.js';
import type { CompareResult } from '../ops/compare.js';
import type { PartitionTable } from '../schemes/types.js';
import { findScheme } from '../schemes/registry.js';
import { formatBytes } from '../model/size.js';

function table(rows: string[][], indent: string): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
  );
}

export function formatTable(t: PartitionTable, indent = ''): string[] {
  const head = [`${t.scheme.toUpperCase()}`, `${t.sectorSize}-byte sectors`];
  if (t.offset) head.push(`at byte ${t.offset}`);
  head.push(formatBytes(t.diskBytes));
  if (t.diskGuid) head.push(`disk GUID ${t.diskGuid}`);
  if (t.diskSignature) head.push(`disk signature ${t.diskSignature}`);
  if (t.firstUsableLba !== undefined) head.push(`usable sectors ${t.firstUsableLba}-${t.lastUsableLba}`);
  head.push(...(findScheme(t.scheme)?.describe?.(t) ?? []));
  const lines = [indent + head.join(', ')];
  if (!t.partitions.length) return [...lines, `${indent}  (no partitions)`];
  const rows = [['#', 'type', 'raw type', 'label', 'first', 'last', 'size', 'flags', 'holds', 'GUID']];
  for (const p of t.partitions) {
    const flags = [...(p.attributes ?? []), ...(p.active ? ['active'] : []), ...(p.logical ? ['logical'] : [])];
    const holds = p.nested ? p.nested.scheme : p.filesystem ? `${p.filesystem.kind}${p.filesystem.label ? ` "${p.filesystem.label}"` : ''}` : '';
    rows.push([
      String(p.index),
      p.typeName,
      p.rawType,
      p.label ?? '',
      String(p.firstLba),
      String(p.lastLba),
      formatBytes(p.sizeBytes),
      flags.join(',') || '-',
      holds,
      p.guid ?? '',
    ]);
  }
  lines.push(...table(rows, `${indent}  `));
  for (const p of t.partitions) {
    if (p.nested) lines.push(`${indent}  partition ${p.index} holds:`, ...formatTable(p.nested, `${indent}    `));
  }
  if (t.hybridMbr) lines.push(`${indent}  hybrid MBR in sector 0 (what MBR-only tools and BIOS boot code see):`, ...formatTable(t.hybridMbr, `${indent}    `));
  return lines;
}

export function formatInspection(r: ImageInspection): string {
  const format = r.subformat ? `${r.format} (${r.subformat})` : r.format;
  const lines = [`${r.path}: ${format}, virtual size ${formatBytes(r.sizeBytes)} (${r.sizeBytes} bytes)`];
  const details = Object.entries(r.details);
  if (details.length) lines.push(details.map(([k, v]) => `${k} ${v}`).join(', '));
  const whole = r.filesystem ? `; the whole image is a file system: ${r.filesystem.kind}${r.filesystem.label ? ` "${r.filesystem.label}"` : ''}` : '';
  lines.push(...(r.table ? formatTable(r.table, '') : [`no partition table found${whole}`]));
  // What the probes found wrong (a GPT whose headers cannot be read shows no partitions: this says why).
  const problems = r.findings.filter((f) => f.severity !== 'info');
  if (problems.length) lines.push(`problems found (verify checks more):`, ...problems.map(formatFinding));
  return lines.join('\n');
}

export function formatFinding(f: Finding): string {
  return `  ${f.severity.padEnd(7)} ${f.code}${f.where ? ` [${f.where}]` : ''}: ${f.message}`;
}

export function formatVerify(r: VerifyReport): string {
  const verdict = r.ok ? 'OK' : 'PROBLEMS FOUND';
  const lines = [`${r.path}: ${verdict} (${r.errors} error${r.errors === 1 ? '' : 's'}, ${r.warnings} warning${r.warnings === 1 ? '' : 's'})`];
  lines.push(...r.findings.map(formatFinding));
  return lines.join('\n');
}

export function formatBuild(r: BuildResult): string {
  const lines = [`${r.output}: ${r.format}, ${r.scheme.toUpperCase()}, ${formatBytes(r.sizeBytes)}, ${formatBytes(r.dataBytes)} of data, seed ${r.seed}`];
  lines.push(...formatSummary(r, '  '));
  if (r.bmap) lines.push(`  block map: ${r.bmap}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

function formatSummary(s: BuildSummary, indent: string): string[] {
  const out: string[] = [];
  for (const p of s.partitions) {
    out.push(
      `${indent}${p.index} ${p.type}${p.label ? ` "${p.label}"` : ''} sectors ${p.startLba}+${p.sectors} (${formatBytes(p.sectors * s.sectorSize)}) ${p.contents}`,
    );
    if (p.nested) out.push(...formatSummary(p.nested, `${indent}  `));
  }
  return out;
}

export function formatCompare(r: CompareResult): string {
  const name = (d: CompareResult['a']) => `${d.path} (${d.format}, ${formatBytes(d.size)})`;
  const head = `${name(r.a)} and ${name(r.b)}`;
  if (r.identical) return `${head}: the same disk${r.a.size !== r.b.size ? ' (the larger one adds only zeros)' : ''}`;
  if (r.reason === 'size') return `${head}: sizes differ (${r.a.size} and ${r.b.size} bytes; --strict)`;
  return `${head}: differ from byte ${r.firstDifference} (sector at byte ${r.firstDifferenceSector}, where qemu-img compare reports it)`;
}
