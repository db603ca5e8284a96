/**
 * Start-up loads only what the command needs (never timed here: bench/startup-bench.ts times it).
 * The bundled CLI is a core (commander, the command line) and an engine loaded when a command
 * runs (scripts/bundle.mjs); in the sources, main.ts imports each command's modules in its
 * action and adds a command group only when the command line names it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandGroupsFor, makeProgram } from '../../src/cli/main.js';
import { addFatCommands } from '../../src/cli/fat.js';
import { addSignCommands } from '../../src/cli/sign.js';
import { addSlotCommands } from '../../src/cli/slot.js';
import { addZfsCommands } from '../../src/cli/zfs.js';
import { addFlashCommands } from '../../src/cli/flash.js';
import { addBmapCommand } from '../../src/cli/bmap.js';
import { addBootCommands } from '../../src/cli/boot.js';
import { addUfsCommands } from '../../src/cli/ufs.js';
import { BUNDLE, requireFreshBundle, ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';

const ALL_GROUPS = [addFatCommands, addSlotCommands, addSignCommands, addZfsCommands, addFlashCommands, addBmapCommand, addBootCommands, addUfsCommands];
const names = (program: Command) => program.commands.map((c) => c.name());

describe('commandGroupsFor', () => {
  it('adds no group for --version or a command of main.ts, every group for help or an unknown command', async () => {
    for (const args of [['--version'], ['-V'], ['build', 'x.json'], ['convert', '-c', 'a', 'b'], ['schema'], ['info', '--json', 'fat']])
      expect(await commandGroupsFor(['node', 'diskmint', ...args])).toEqual([]);
    for (const args of [[], ['--help'], ['-h'], ['help', 'fat'], ['frobnicate'], ['--version', '--help']])
      expect(await commandGroupsFor(['node', 'diskmint', ...args])).toEqual(ALL_GROUPS);
  });

  it('adds exactly the group that holds the command named, and that group defines it', async () => {
    const everyCommand = names(makeProgram(ALL_GROUPS));
    const own = names(makeProgram([]));
    for (const command of everyCommand.filter((c) => !own.includes(c))) {
      const groups = await commandGroupsFor(['node', 'diskmint', '--help', command, 'sub']);
      expect(groups, command).toHaveLength(1);
      expect(names(makeProgram(groups)), command).toContain(command);
    }
  });
});

describe('the bundled CLI at start-up', () => {
  beforeAll(requireFreshBundle);

  /** The bundle files a command line loaded, and the built-in modules the engine uses that it loaded. */
  function loads(args: string[]): { files: string[]; builtins: string[]; stdout: string } {
    const dir = tempDir();
    const probe = join(dir, 'probe.cjs'); // a file: `node -e` itself loads crypto for its globals
    writeFileSync(
      probe,
      `const { loadCli, scripts } = require(${JSON.stringify(join(ROOT, 'dist', 'cli-loader.cjs'))});
      process.on('exit', () => {
        const files = [...scripts.keys()].map((f) => require('node:path').basename(f));
        const builtins = process.moduleLoadList.filter((m) => /^NativeModule (zlib|crypto|worker_threads|os|stream|net|tty|fs\\/promises)$/.test(m));
        require('node:fs').writeSync(2, JSON.stringify({ files, builtins }));
      });
      loadCli().cli.main(['node', 'diskmint', ...process.argv.slice(2)]);`,
    );
    const r = spawnSync(process.execPath, [probe, ...args], { encoding: 'utf8' });
    return { ...(JSON.parse(r.stderr.slice(r.stderr.lastIndexOf('{"files"'))) as { files: string[]; builtins: string[] }), stdout: r.stdout };
  }

  it('--version reads the core only; --help the engine too (the groups define their commands there), neither compression, threads nor hashing', () => {
    const version = loads(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(version).toMatchObject({ files: ['diskmint-cli.cjs'], builtins: [] });
    const help = loads(['--help']);
    expect(help.stdout).toMatch(/^Usage: diskmint/);
    for (const command of ['build', 'convert', 'fat', 'slot', 'bundle', 'zfs', 'schema']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(help.files).toEqual(['diskmint-cli.cjs', 'diskmint-engine.cjs']);
    // commander asks process.stdout for the help's width, which loads streams (and tty or net).
    expect(help.builtins.filter((m) => !/^NativeModule (stream|tty|net)$/.test(m))).toEqual([]);
  });

  it('a command loads the engine, and zod only when it reads a layout', () => {
    const dir = tempDir();
    const esp = join(dir, 'esp.img');
    expect(loads(['fat', 'create', esp, '--from', join(ROOT, 'fixtures', 'demo', 'esp')]).files).toEqual(['diskmint-cli.cjs', 'diskmint-engine.cjs']);
    expect(loads(['info', esp]).files).toEqual(['diskmint-cli.cjs', 'diskmint-engine.cjs']);
    expect(loads(['schema']).files).toEqual(['diskmint-cli.cjs', 'diskmint-engine.cjs', 'diskmint-zod.cjs']);
  });

  it("the command answers a bare --version before it loads the CLI, with the version the program gives (package.json's)", () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(makeProgram([]).version()).toBe(version);
    const probe = join(tempDir(), 'probe.cjs');
    writeFileSync(
      probe,
      `process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').basename(f)))));`,
    );
    const loaded = (args: string[]) => {
      const r = spawnSync(process.execPath, ['--require', probe, BUNDLE, ...args], { encoding: 'utf8' });
      const files = JSON.parse(r.stderr.slice(r.stderr.lastIndexOf('['))) as string[];
      return { stdout: r.stdout, status: r.status, files: files.filter((f) => f.startsWith('diskmint') || f === 'cli-loader.cjs') };
    };
    for (const flag of ['--version', '-V']) expect(loaded([flag])).toEqual({ stdout: `${version}\n`, status: 0, files: ['diskmint.cjs'] });
    // Anything else on the line goes to the program.
    expect(loaded(['-V', 'x'])).toEqual({ stdout: `${version}\n`, status: 0, files: ['diskmint.cjs', 'cli-loader.cjs'] });
  });
});
