/** `verify --expect`: every difference between an image's tables and the layout it should match. */
import { finding, type Finding } from '../../model/findings.js';
import { gptAttributeNames } from '../../../formats/schemes/gpt-attributes.js';
import type { PlannedImage, PlannedPartition } from '../../layout/plan.js';
import type { PartitionTable, TablePartition } from '../../schemes/types.js';
import type { SchemeHandler } from '../../schemes/handler.js';
import { schemeHandler } from '../../schemes/registry.js';

export function compareWithPlan(plan: PlannedImage, table: PartitionTable | null, imageBytes: number, where = 'expect'): Finding[] {
  const out: Finding[] = [];
  const diff = (code: string, message: string) => out.push(finding('error', `expect.${code}`, message, where));
  if (!table) {
    diff('scheme', `expected a ${plan.scheme.toUpperCase()} table, found none`);
    return out;
  }
  // A bare EBR chain of one or two partitions reads as an MBR (src/schemes/ebr/probe.ts).
  const scheme = schemeHandler(plan.scheme);
  const sameScheme = table.scheme === plan.scheme || scheme.capabilities.readsAs?.includes(table.scheme) === true;
  if (!sameScheme) {
    diff('scheme', `expected a ${plan.scheme.toUpperCase()} table, found ${table.scheme.toUpperCase()}`);
    return out;
  }
  if (table.sectorSize !== plan.sectorSize) diff('sector-size', `expected ${plan.sectorSize}-byte sectors, found ${table.sectorSize}`);
  const expectedBytes = plan.totalSectors * plan.sectorSize;
  if (imageBytes !== expectedBytes) diff('disk-size', `expected a disk of ${expectedBytes} bytes, found ${imageBytes}`);
  if (plan.diskGuidGiven && plan.diskGuid !== table.diskGuid) {
    diff('disk-guid', `expected disk GUID ${plan.diskGuid}, found ${table.diskGuid}`);
  }
  const found = new Map(table.partitions.filter((p) => p.typeName !== 'extended').map((p) => [p.index, p]));
  for (const want of plan.partitions) {
    const got = found.get(want.index);
    found.delete(want.index);
    const label = `partition ${want.index} (${want.jsonPath})`;
    if (!got) {
      diff('partition-missing', `${label} is missing`);
      continue;
    }
    for (const [code, message] of comparePartition(scheme, want, got)) diff(code, `${label}: ${message}`);
    if (want.contents.kind === 'image') {
      out.push(...compareWithPlan(want.contents.plan, got.nested ?? null, got.sizeBytes, `${where}.partition[${want.index}]`));
    }
  }
  for (const extra of found.values()) {
    const raw = scheme.capabilities.rawPartitionLabel;
    if (raw !== undefined && extra.label === raw) continue; // the raw partition is implied
    diff('partition-extra', `partition ${extra.index} (${extra.typeName}, sectors ${extra.firstLba}-${extra.lastLba}) is not in the layout`);
  }
  return out;
}

function comparePartition(scheme: SchemeHandler, want: PlannedPartition, got: TablePartition): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const caps = scheme.capabilities;
  const wantType = scheme.rawType(want);
  if (got.rawType.toLowerCase() !== wantType) out.push(['type', `type ${got.typeName} (${got.rawType}), expected ${want.type} (${wantType})`]);
  if (got.firstLba !== want.startLba) out.push(['start', `starts at sector ${got.firstLba}, expected ${want.startLba}`]);
  const gotSectors = got.lastLba - got.firstLba + 1;
  if (gotSectors !== want.sectors) out.push(['size', `has ${gotSectors} sectors, expected ${want.sectors}`]);
  if (caps.labels && (got.label ?? '') !== (want.label ?? ''))
    out.push(['label', `label ${JSON.stringify(got.label ?? '')}, expected ${JSON.stringify(want.label ?? '')}`]);
  if (caps.attributes) {
    const gotAttrs = BigInt(got.attributesRaw ?? '0');
    if (gotAttrs !== want.attributes) {
      out.push(['attributes', `attributes [${got.attributes?.join(', ') ?? ''}], expected [${gptAttributeNames(want.attributes).join(', ')}]`]);
    }
  }
  if (caps.guids && want.uuidGiven && want.guid !== got.guid) out.push(['guid', `GUID ${got.guid}, expected ${want.guid}`]);
  // Every MBR-style entry (an EBR chain's too) has a status byte.
  if (want.mbrType !== undefined && (got.active ?? false) !== want.active) {
    out.push(['active', want.active ? 'is not marked active' : 'is marked active but should not be']);
  }
  return out;
}
