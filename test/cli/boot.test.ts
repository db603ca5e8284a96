/** `diskmint boot status|update|confirm|simulate` through the bundle: text and --json, exit statuses. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { diskmint } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { buildFallbackImage, stageFile } from '../helpers/boot-commands-image.js';

let dir = '';
let img = '';
let stageB = '';

beforeAll(async () => {
  dir = tempDir('diskmint-boot-cli-');
  img = await buildFallbackImage(dir, stageFile(dir, 'a.bin', 30_000, 1), 'cli.img');
  stageB = stageFile(dir, 'b.bin', 35_000, 2);
});

const json = (args: string[]) => {
  const r = diskmint(args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
};

describe('diskmint boot', () => {
  it('status, update --bootonce, simulate, confirm: --json and text', () => {
    const s = json(['boot', 'status', img, '--json']) as { next: { index: number }; selector: { installed: boolean } };
    expect(s.next.index).toBe(1);
    expect(s.selector.installed).toBe(true);
    expect(diskmint(['boot', 'status', img]).stdout.toString()).toMatch(/next boot: stage 1 \(gptboot0\)/);
    const u = json(['boot', 'update', img, '--from', stageB, '--bootonce', '--json']);
    expect(u).toMatchObject({ stage: 2, bytes: 35_000, bootonce: true });
    const sim = json(['boot', 'simulate', img, '--outcomes', 'ok', '--json']) as { steps: Array<{ after: Array<{ index: number; attributes: string }> }> };
    expect(sim.steps[0].after.find((e) => e.index === 2)!.attributes).toBe(String((1n << 59n) | 0n)); // bigints as decimal strings
    expect(diskmint(['boot', 'simulate', img, '--outcomes', 'fail,ok']).stdout.toString()).toMatch(/boot 2: outcome ok[\s\S]*marked bootfailed/);
    expect(json(['boot', 'confirm', img, '--json'])).toEqual({ messages: ['Boot stage gptboot1 (p2) has not been tried yet; left as it is.'] });
  });

  it('a refusal exits 1 with one sentence and changes nothing', () => {
    const before = readFileSync(img);
    writeFileSync(join(dir, 'empty.bin'), '');
    const r = diskmint(['boot', 'update', img, '--from', join(dir, 'empty.bin')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/empty; nothing was written/);
    expect(Buffer.compare(readFileSync(img), before)).toBe(0);
    expect(diskmint(['boot', 'simulate', img, '--outcomes', 'maybe']).status).toBe(1);
  });
});
