/**
 * A qcow2 overlay on a backing file, as qemu-img makes it: `info`, `verify` and `compare` refuse
 * the chain unless `--allow-backing`, and with it read what qemu-img reads (qemu-img compare
 * is the judge of the verdict and the first differing byte).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';
import { requirePeer } from '../helpers/peer.js';

describe('--allow-backing on info, verify and compare', () => {
  it('refuses a backing chain without it; with it reads the chain as qemu-img does', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils') || !requirePeer('qemu-io', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    const layout = join(dir, 'layout.json');
    writeFileSync(layout, JSON.stringify({ scheme: 'gpt', size: '16M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '8M' }] }));
    const raw = join(dir, 'base.img');
    expect(diskmint(['build', layout, '-o', raw, '-q']).status).toBe(0);
    const base = join(dir, 'base.qcow2');
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, base]);
    mkdirSync(join(dir, 'sub'));
    const top = join(dir, 'sub', 'top.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '../base.qcow2', '-F', 'qcow2', top]); // relative to top's folder

    for (const args of [
      ['info', top],
      ['verify', top],
      ['compare', top, base],
    ]) {
      const r = diskmint(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/backing file .*--allow-backing/);
    }
    const info = diskmint(['info', top, '--allow-backing', '--json']);
    expect(info.status).toBe(0);
    expect(JSON.parse(info.stdout.toString()).table.partitions.map((p: { label: string }) => p.label)).toEqual(['os1']);
    expect(diskmint(['verify', top, '--allow-backing']).status).toBe(0);
    expect(diskmint(['compare', top, base, '--allow-backing']).status).toBe(0);

    execFileSync('qemu-io', ['-c', 'write -P 0x5a 9M 4k', top]);
    const ours = diskmint(['compare', top, base, '--allow-backing', '--json']);
    const theirs = spawnSync('qemu-img', ['compare', top, base], { encoding: 'utf8' });
    expect(theirs.status).toBe(1);
    expect(ours.status).toBe(1);
    const at = Number(/offset (\d+)/.exec(theirs.stdout)![1]);
    expect(JSON.parse(ours.stdout.toString()).firstDifference).toBe(at);
  });
});
