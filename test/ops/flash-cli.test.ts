/**
 * `diskmint flash` as a user runs it: Ctrl-C (SIGINT) mid-write stops cleanly, saying how far
 * it got and that the target is incomplete; `bmap` writes a map that `flash --bmap` takes.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE, diskmint, requireFreshBundle } from '../helpers/cli.js';
import { parseBmap } from '../../formats/bmap/bmap.js';
import { requirePeer } from '../helpers/peer.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'diskmint-flash-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('diskmint flash and bmap', () => {
  it('Ctrl-C during the write stops it: exit 130, how many bytes were written, the target is incomplete', async () => {
    requireFreshBundle();
    const size = 96 * MiB;
    const image = join(dir, 'big.img');
    writeFileSync(image, Buffer.alloc(size, 0x11));
    const dev = join(dir, 'big.dev');
    writeFileSync(dev, Buffer.alloc(size, 0xaa));
    const child = spawn(process.execPath, [BUNDLE, 'flash', image, dev, '--yes', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    // Progress events are JSON lines on stderr: interrupt after the first write lands.
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr += `${line}\n`;
      if (!sent && line.startsWith('{') && JSON.parse(line).phase === 'write' && JSON.parse(line).doneBytes > 0) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    // The CLI's own signal handler (bin.ts) re-raises SIGINT after removing temp files; should
    // that second signal land after flash has stopped, the process ends by it: the shell's 130 too.
    expect(code === 130 || signal === 'SIGINT').toBe(true);
    const m = /interrupted after writing (\d+) of (\d+) bytes: (.*) is incomplete/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(Number(m![2])).toBe(size);
    expect(Number(m![1])).toBeLessThan(size);
    expect(m![3]).toBe(dev);
    // What the message says was written is there; the end of the target is untouched.
    const got = readFileSync(dev);
    expect(got.subarray(0, Number(m![1])).every((b) => b === 0x11)).toBe(true);
    expect(got.subarray(size - MiB).every((b) => b === 0xaa)).toBe(true);
  });

  it('on a terminal asks, naming the target and its current table; only a yes writes', (ctx) => {
    if (!requirePeer('script', 'bsdutils') || !requirePeer('sgdisk', 'gdisk')) return ctx.skip();
    requireFreshBundle();
    const image = join(dir, 'asked.img');
    writeFileSync(image, Buffer.alloc(8 * MiB));
    execFileSync('sgdisk', ['-n', '1:2048:+2M', image], { stdio: 'ignore' });
    const dev = join(dir, 'asked.dev');
    const old = Buffer.alloc(16 * MiB);
    old.set(readFileSync(image)); // the target holds a GPT of its own, for the question to show
    old.fill(0xaa, 20_000, 24_000); // and old bytes in the first MiB, which a write zeroes
    writeFileSync(dev, old);
    // script(1) gives diskmint a terminal; what is piped to script is typed into it.
    const ask = (answer: string) =>
      spawnSync(
        'script',
        ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BUNDLE)} flash ${JSON.stringify(image)} ${JSON.stringify(dev)}`, '/dev/null'],
        {
          input: `${answer}\n`,
          encoding: 'utf8',
        },
      );
    const no = ask('n');
    expect(no.status).toBe(1);
    expect(no.stdout).toContain(`about to write ${image} (8 MiB) to ${dev} (a regular file of 16 MiB)`);
    expect(no.stdout).toMatch(/It now holds:[\s\S]*GPT, 512-byte sectors[\s\S]*linux-data/);
    expect(no.stdout).toContain(`Everything on ${dev} will be lost. Write it? [y/N]`);
    expect(no.stdout).toContain(`not confirmed: nothing was written to ${dev}`);
    expect(readFileSync(dev).equals(old)).toBe(true);
    const yes = ask('y');
    expect(yes.status, yes.stdout).toBe(0);
    expect(yes.stdout).toContain('verified (every written range');
    expect(
      readFileSync(dev)
        .subarray(0, 8 * MiB)
        .equals(readFileSync(image)),
    ).toBe(true);
  });

  it('bmap writes a 2.0 map of the image that flash --bmap takes', () => {
    const image = join(dir, 'small.img');
    const bytes = Buffer.alloc(2 * MiB);
    bytes.fill(7, 0, 4096);
    bytes.fill(9, MiB, MiB + 100_000);
    writeFileSync(image, bytes);
    const map = join(dir, 'small.bmap');
    const made = diskmint(['bmap', image, '-o', map, '--json']);
    expect(made.status, made.stderr).toBe(0);
    const parsed = parseBmap(readFileSync(map, 'utf8'));
    expect(parsed).toMatchObject({ version: '2.0', imageSize: 2 * MiB, blockSize: 4096, checksumType: 'sha256' });
    // Every non-zero byte of the image lies in a mapped block.
    const mapped = new Set(parsed.ranges.flatMap((r) => Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i)));
    for (let b = 0; b < 512; b++) if (bytes.subarray(b * 4096, (b + 1) * 4096).some((x) => x !== 0)) expect(mapped.has(b)).toBe(true);
    const dev = join(dir, 'small.dev');
    writeFileSync(dev, Buffer.alloc(2 * MiB, 0xaa));
    const r = diskmint(['flash', '--bmap', map, image, dev, '--yes']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(dev).equals(bytes)).toBe(true); // a 2 MiB image is all table area: data, or zeroed
  });
});
