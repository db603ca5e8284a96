/**
 * The scheme registry and every registered SchemeHandler: each scheme's encode() read back by
 * its own probe() (through `readsAs` where a short table reads as another scheme), at 512- and
 * 4096-byte sectors, for random partition lists (fast-check); and the registry's shape.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { planLayout } from '../../src/layout/plan.js';
import type { Layout, PartitionSpec } from '../../src/layout/schema.js';
import { PROBE_ORDER, SCHEME_HANDLERS, SCHEME_NAMES, findScheme, schemeHandler } from '../../src/schemes/registry.js';
import { isContainerPartition, type SchemeHandler } from '../../src/schemes/handler.js';
import { listWords } from '../../src/schemes/sectors.js';
import type { TableReadResult } from '../../src/schemes/types.js';

/** A type name every scheme resolves, per scheme. */
const TYPE: Record<string, string> = { gpt: 'freebsd-ufs', mbr: 'freebsd', ebr: 'linux', bsd: '4.2BSD' };

function layoutFor(h: SchemeHandler, sectorSize: 512 | 4096, sizes: number[], logicalFrom: number): Layout {
  const partitions: PartitionSpec[] = sizes.map((s, i) => ({
    type: TYPE[h.name],
    size: `${s}s`,
    ...(h.capabilities.logicals === 'marked' && i >= logicalFrom ? { logical: true } : {}),
    ...(h.capabilities.activeFlag && i === 0 ? { active: true } : {}),
    ...(h.capabilities.labels ? { label: `p${i}` } : {}),
  }));
  return { scheme: h.name, sectorSize, align: '4K', partitions };
}

/** Encode the plan through the handler into a memory disk, probe it through the handler. */
async function roundTrip(layout: Layout): Promise<void> {
  const h = schemeHandler(layout.scheme);
  const plan = await planLayout(layout, { baseDir: '/', seed: 'registry-test', path: '' });
  const img = new Uint8Array(plan.totalSectors * plan.sectorSize);
  for (const t of h.encode(plan)) img.set(t.bytes, t.offset);
  const disk = memoryDiskReader(img);
  const opts = { sectorSize: plan.sectorSize };
  let read: TableReadResult | null = await h.probe(disk, opts);
  for (const other of h.capabilities.readsAs ?? []) read ??= await schemeHandler(other).probe(disk, opts);
  expect(read).not.toBeNull();
  const { table, findings } = read!;
  expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
  expect(table.sectorSize).toBe(plan.sectorSize);
  const found = table.partitions.filter((p) => !isContainerPartition(findScheme(table.scheme), p));
  expect(found.map((p) => [p.index, p.firstLba, p.lastLba, p.rawType.toLowerCase()])).toEqual(
    plan.partitions.map((p) => [p.index, p.startLba, p.startLba + p.sectors - 1, h.rawType(p)]),
  );
  if (h.capabilities.labels) expect(found.map((p) => p.label)).toEqual(plan.partitions.map((p) => p.label));
  if (h.capabilities.activeFlag) expect(found.map((p) => p.active === true)).toEqual(plan.partitions.map((p) => p.active));
  if (h.capabilities.guids) {
    expect(table.diskGuid).toBe(plan.diskGuid);
    expect(found.map((p) => p.guid)).toEqual(plan.partitions.map((p) => p.guid));
  }
}

describe('the registry', () => {
  it('lists each scheme once, in message order, and probes GPT first, then a bare EBR chain, MBR, BSD', () => {
    expect(SCHEME_NAMES).toEqual(['gpt', 'mbr', 'bsd', 'ebr']);
    expect(PROBE_ORDER.map((h) => h.name)).toEqual(['gpt', 'ebr', 'mbr', 'bsd']);
    expect(new Set(SCHEME_HANDLERS.map((h) => h.probeOrder)).size).toBe(SCHEME_HANDLERS.length);
    expect(listWords(SCHEME_NAMES, 'or')).toBe('gpt, mbr, bsd or ebr');
  });

  it('finds handlers by name and refuses unknown ones (prototype keys too)', () => {
    for (const name of SCHEME_NAMES) expect(schemeHandler(name).name).toBe(name);
    expect(findScheme('apm')).toBeUndefined();
    expect(findScheme('__proto__')).toBeUndefined();
    expect(() => schemeHandler('vtoc8' as never)).toThrow(/unknown partition scheme/);
  });

  it('capabilities hold together: slots only with a probe that finds them, GUIDs with attributes (GPT), a status byte with MBR types', () => {
    for (const h of SCHEME_HANDLERS) {
      if (h.slots?.oneTimeBoot) expect(h.slots.noOneTimeBoot).toBeUndefined();
      if (h.slots && !h.slots.oneTimeBoot) expect(h.slots.noOneTimeBoot).toBeDefined();
      expect(h.capabilities.bootcode.bytes).toBeGreaterThanOrEqual(0);
      for (const ss of [512, 4096]) {
        const g = h.geometry(ss);
        expect(g.firstUsable).toBeGreaterThanOrEqual(0);
        expect(g.trailerSectors).toBeGreaterThanOrEqual(0);
        expect(g.entries).toBeGreaterThan(0);
      }
    }
  });

  it('numbers partitions as the tables do: GPT 1.., MBR primaries 1-4 with the extended taking a slot and logicals 5.., EBR 1 then 5.., BSD a b d ...', () => {
    expect(schemeHandler('gpt').tableIndexes([false, false, false])).toEqual([1, 2, 3]);
    expect(schemeHandler('mbr').tableIndexes([false, true, true, false])).toEqual([1, 5, 6, 3]);
    expect(schemeHandler('ebr').tableIndexes([true, true, true])).toEqual([1, 5, 6]);
    expect(schemeHandler('bsd').tableIndexes([false, false, false])).toEqual([1, 2, 4]);
    expect(schemeHandler('bsd').partitionLetter!(2)).toBe('d');
  });

  it('resolves type names per scheme and says what is wrong otherwise', () => {
    expect(schemeHandler('gpt').resolveType('efi').value.gptType).toBe('c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
    expect(schemeHandler('mbr').resolveType('0xa5')).toEqual({ value: { mbrType: 0xa5 }, problem: undefined });
    expect(schemeHandler('bsd').resolveType('swap').value.bsdFstype).toBe(1);
    for (const h of SCHEME_HANDLERS) expect(h.resolveType('no-such-type').problem).toMatch(/^is not an? /);
  });
});

describe.each(SCHEME_HANDLERS.map((h) => [h.name, h] as const))('%s: encode -> probe through the handler', (_name, h) => {
  it.each([512, 4096] as const)('a fixed layout at %i-byte sectors', async (ss) => {
    await roundTrip(layoutFor(h, ss, [16, 40, 8, 24], 2));
  });

  it('random partition lists (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(512 as const, 4096 as const),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: h.capabilities.logicals === 'marked' ? 6 : 5 }),
        fc.integer({ min: 0, max: 3 }),
        // MBR: 0-3 primaries, then logicals (the extended partition takes a primary slot).
        async (ss, sizes, primaries) => roundTrip(layoutFor(h, ss, sizes, primaries)),
      ),
      { numRuns: 25 },
    );
  });
});
