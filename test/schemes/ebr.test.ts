/**
 * Bare EBR chains ("scheme": "ebr", mkimg -s ebr): the contents of an extended partition. Built
 * by diskmint, read back by diskmint (as an EBR chain from three partitions on, as an MBR below
 * that), checked by verify --expect, and judged by util-linux sfdisk once the image is placed as
 * the extended partition of an MBR disk (the only place a bare chain means anything to a peer).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, DiskmintError, inspectImage, verifyImage, type Layout } from '../../src/index.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { tempDir } from '../helpers/golden.js';

/** Sectors: 1 MiB, so verify finds nothing misaligned (mkimg aligns to tracks instead). */
const ALIGN = 2048;

/** `count` partitions of assorted types and sizes, the first two with contents. */
function ebrLayout(count: number): Layout {
  const types = ['freebsd', 'fat32-lba', 'linux', 'linux-swap', '0x83'];
  return {
    scheme: 'ebr',
    align: `${ALIGN}s`,
    geometry: { heads: 255, sectors: 63 },
    partitions: Array.from({ length: count }, (_, i) => ({
      type: types[i % types.length],
      size: `${(i + 1) * 100}s`,
      ...(i < 2 ? { contents: { file: `part${i}.bin` } } : {}),
    })),
  };
}

function writeContents(dir: string): void {
  writeFileSync(join(dir, 'part0.bin'), Buffer.alloc(100 * 512, 0x11));
  writeFileSync(join(dir, 'part1.bin'), Buffer.alloc(150 * 512, 0x22));
}

describe('scheme ebr: a bare EBR chain', () => {
  for (const count of [1, 2, 3, 5]) {
    it(`${count} partition(s): diskmint reads back what it built, and verify --expect holds`, async () => {
      const dir = tempDir();
      writeContents(dir);
      const layout = ebrLayout(count);
      const out = join(dir, 'ebr.img');
      await buildImage(layout, { output: out, baseDir: dir });
      const t = (await inspectImage(out)).table!;
      expect(t.scheme).toBe(count >= 3 ? 'ebr' : 'mbr');
      // Each partition one alignment unit after its EBR, the next EBR at the next boundary.
      const starts: number[] = [];
      let ebr = 0;
      for (let i = 0; i < count; i++) {
        starts.push(ebr + ALIGN);
        ebr = Math.ceil((ebr + ALIGN + (i + 1) * 100) / ALIGN) * ALIGN;
      }
      const parts = t.partitions.filter((p) => p.typeName !== 'extended');
      expect(parts.map((p) => [p.index, p.firstLba, p.lastLba - p.firstLba + 1])).toEqual(starts.map((s, i) => [i === 0 ? 1 : 4 + i, s, (i + 1) * 100]));
      const image = readFileSync(out);
      expect(image.subarray(starts[1 % count] * 512, starts[1 % count] * 512 + 4)).toEqual(Buffer.alloc(4, count === 1 ? 0x11 : 0x22));
      const report = await verifyImage(out, { expect: layout, baseDir: dir });
      expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
      expect(report.ok).toBe(true);
    });
  }

  it('sfdisk reads the chain as the logical partitions of an MBR whose extended partition holds it', async (ctx) => {
    if (!requirePeer('sfdisk', 'fdisk')) return ctx.skip();
    const dir = tempDir();
    writeContents(dir);
    const chain = join(dir, 'chain.img');
    await buildImage(ebrLayout(5), { output: chain, baseDir: dir });
    const disk = join(dir, 'disk.img');
    const extendedAt = 2048;
    await buildImage(
      { scheme: 'mbr', align: '1M', partitions: [{ type: 'extended', offset: `${extendedAt}s`, contents: { file: chain } }] },
      { output: disk, baseDir: dir },
    );
    const ours = (await inspectImage(chain)).table!.partitions;
    const sfdisk: Array<{ node: string; start: number; size: number; type: string }> = JSON.parse(runPeerOk('sfdisk', ['--json', disk])).partitiontable
      .partitions;
    const logicals = sfdisk.filter((p) => !/\D1$/.test(p.node)); // partition 1 is the extended entry
    expect(logicals.map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p.start, p.size, Number.parseInt(p.type, 16)])).toEqual(
      ours.map((p, i) => [5 + i, extendedAt + p.firstLba, p.lastLba - p.firstLba + 1, Number.parseInt(p.rawType, 16)]),
    );
    // diskmint reads the same disk the same way.
    const whole = (await inspectImage(disk)).table!.partitions.filter((p) => p.typeName !== 'extended');
    expect(whole.map((p) => [p.index, p.firstLba])).toEqual(logicals.map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p.start]));
  });

  it('refuses what a chain cannot hold, naming each JSON path: active or logical flags, boot code, a disk signature', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'boot.bin'), Buffer.alloc(446));
    const problemsOf = async (layout: Layout) => {
      const err = await buildImage(layout, { output: join(dir, 'x.img'), baseDir: dir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DiskmintError);
      return (err as DiskmintError).problems.join('\n');
    };
    const flags = await problemsOf({
      scheme: 'ebr',
      partitions: [
        { type: 'freebsd', size: '1M', active: true },
        { type: 'freebsd', size: '1M', logical: true },
      ],
    });
    expect(flags).toMatch(/partitions\[0\]\.active/);
    expect(flags).toMatch(/partitions\[1\]\.logical/);
    const tables = await problemsOf({ scheme: 'ebr', bootcode: 'boot.bin', diskSignature: 1, partitions: [{ type: 'freebsd', size: '1M' }] });
    expect(tables).toMatch(/bootcode: an EBR chain \(it has no boot area\)/);
    expect(tables).toMatch(/diskSignature: an EBR chain has no disk signature/);
    expect(readdirSync(dir)).toEqual(['boot.bin']);
  });
});
