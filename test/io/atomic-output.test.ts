/**
 * AtomicOutput, the one way outputs are written: temp files beside their targets, created
 * exclusively and tracked for the signal handlers; commit fsyncs, then renames siblings and the
 * main file; abort (and any error in writeAtomically) leaves nothing behind and the targets as
 * they were. writeAtomically names the target in operational errors only: a bug (RangeError,
 * TypeError) comes out unchanged, for the CLI's exit status 70.
 */
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AtomicOutput, writeAtomically, writeFileAtomically } from '../../src/io/atomic-output.js';
import { writeFully } from '../../src/io/write-fully.js';
import { removeTempFilesNow } from '../../src/io/temp-files.js';
import { writeImage } from '../../src/io/write-image.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError, FormatError } from '../../src/model/errors.js';
import { buildImage } from '../../src/ops/build.js';
import { signImage } from '../../src/ops/sign.js';
import { writeKeyPair } from '../../src/ops/sign-keys.js';
import { tempDir } from '../helpers/golden.js';

/** When set, the next temp name is this one (to make a clash); otherwise the real names. */
const forced = vi.hoisted(() => ({ name: undefined as string | undefined }));
vi.mock('../../src/io/temp-files.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/io/temp-files.js')>();
  return {
    ...real,
    tempPathBeside: (target: string, name?: string) => {
      const path = forced.name;
      forced.name = undefined;
      return path ?? real.tempPathBeside(target, name);
    },
  };
});

afterEach(() => {
  forced.name = undefined;
});

const bytes = (text: string) => Buffer.from(text, 'utf8');
const temps = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('AtomicOutput', () => {
  it('commit: the main file and its siblings appear complete at their targets, nothing else stays', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.vmdk');
    const extent = join(dir, 'disk-flat.vmdk');
    writeFileSync(target, 'old descriptor');
    const out = await AtomicOutput.create(target);
    await writeFully(out.handle, bytes('descriptor'), 0);
    await writeFully(await out.sibling(extent), bytes('extent data'), 0);
    const scratch = await out.scratch('disk.vmdk.payload');
    await writeFully(scratch.handle, bytes('scratch'), 0);
    // Before commit: the target is as it was, the extent is not there, three temp files are.
    expect(readFileSync(target, 'utf8')).toBe('old descriptor');
    expect(existsSync(extent)).toBe(false);
    expect(temps(dir)).toHaveLength(3);
    await out.commit();
    expect(readFileSync(target, 'utf8')).toBe('descriptor');
    expect(readFileSync(extent, 'utf8')).toBe('extent data');
    expect(readdirSync(dir).sort()).toEqual(['disk-flat.vmdk', 'disk.vmdk']);
  });

  it('commit fsyncs every file before the first rename, and renames siblings before the main file', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.vmdk');
    const extent = join(dir, 'disk-flat.vmdk');
    const out = await AtomicOutput.create(target);
    const sibling = await out.sibling(extent);
    const events: string[] = [];
    const seen = () => `${existsSync(extent) ? 'extent' : '-'}/${existsSync(target) ? 'main' : '-'}`;
    vi.spyOn(out.handle, 'sync').mockImplementation(async () => void events.push(`sync main ${seen()}`));
    vi.spyOn(sibling, 'sync').mockImplementation(async () => void events.push(`sync extent ${seen()}`));
    await out.commit();
    expect(events).toEqual(['sync main -/-', 'sync extent -/-']);
    expect(seen()).toBe('extent/main');
  });

  it('abort: every temp file is removed and the targets are untouched', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.img');
    writeFileSync(target, 'old');
    const out = await AtomicOutput.create(target);
    await writeFully(out.handle, bytes('new'), 0);
    await out.sibling(join(dir, 'disk-s001.vmdk'));
    await out.scratch('spool');
    expect(temps(dir)).toHaveLength(3);
    await out.abort();
    await out.abort(); // twice is harmless
    expect(readdirSync(dir)).toEqual(['disk.img']);
    expect(readFileSync(target, 'utf8')).toBe('old');
    await expect(out.commit()).rejects.toThrow(/aborted/);
  });

  it('creates temp files exclusively: a file already under the temp name is refused and left as it was', async () => {
    const dir = tempDir();
    const clash = join(dir, '.disk.img.clash.tmp');
    writeFileSync(clash, 'not ours');
    forced.name = clash;
    await expect(AtomicOutput.create(join(dir, 'disk.img'))).rejects.toMatchObject({ code: 'EEXIST' });
    removeTempFilesNow(); // a signal now must not delete it either: it was never tracked
    expect(readFileSync(clash, 'utf8')).toBe('not ours');

    const out = await AtomicOutput.create(join(dir, 'other.img'));
    forced.name = clash;
    await expect(out.sibling(join(dir, 'other-flat.img'))).rejects.toMatchObject({ code: 'EEXIST' });
    await out.abort();
    expect(readdirSync(dir)).toEqual(['.disk.img.clash.tmp']);
    expect(readFileSync(clash, 'utf8')).toBe('not ours');
  });

  it('tracks its temp files, so the signal handlers remove them', async () => {
    const dir = tempDir();
    const out = await AtomicOutput.create(join(dir, 'disk.img'));
    await out.sibling(join(dir, 'disk-flat.img'));
    await out.scratch('spool');
    expect(temps(dir)).toHaveLength(3);
    removeTempFilesNow();
    expect(readdirSync(dir)).toEqual([]);
    await out.abort();
  });
});

describe('writeAtomically', () => {
  it('a bug in the writer (RangeError) comes out unchanged, leaving nothing behind', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.img');
    const bug = new RangeError('Invalid array length');
    await expect(
      writeAtomically(target, async (handle, out) => {
        await writeFully(handle, bytes('partial'), 0);
        await out.sibling(join(dir, 'disk-flat.img'));
        throw bug;
      }),
    ).rejects.toBe(bug);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('operational errors name the target: system errors and FormatError; a DiskmintError comes out as it is', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.img');
    const systemError = await open(join(dir, 'no-such-folder', 'x'), 'r').catch((err: unknown) => err);
    for (const err of [systemError, new FormatError('BAD_VALUE', 'grain table out of range', 'vmdk')]) {
      const thrown = await writeAtomically(target, async () => {
        throw err;
      }).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(DiskmintError);
      expect(thrown).toMatchObject({ code: 'IO', message: `writing ${target} failed: ${(err as Error).message}` });
    }
    const refusal = new DiskmintError('BAD_ARGUMENT', 'no');
    await expect(
      writeAtomically(target, async () => {
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    const typeError = new TypeError("Cannot read properties of undefined (reading 'length')");
    await expect(
      writeAtomically(target, async () => {
        throw typeError;
      }),
    ).rejects.toBe(typeError);
    // Node's own argument errors have a code (ERR_...) but no errno: bugs too.
    const argumentError = await writeAtomically(target, async (handle) => void (await handle.write(Buffer.alloc(1), 0, 2, 0))).catch((e: unknown) => e);
    expect(argumentError).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    expect(argumentError).not.toBeInstanceOf(DiskmintError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writeImage: a reader that throws a RangeError reaches the caller as it, in every format, with no temp file left', async () => {
    const dir = tempDir();
    const bug = new RangeError('Invalid array length');
    const disk = new VirtualDisk(4 << 20);
    disk.place(1 << 20, 1 << 20, {
      kind: 'reader',
      offset: 0,
      reader: {
        size: 1 << 20,
        read: async () => {
          throw bug;
        },
        close: async () => {},
      },
    });
    for (const [name, format, options] of [
      ['a.img', 'raw', {}],
      ['a.qcow2', 'qcow2', {}],
      ['a.vmdk', 'vmdk', { subformat: 'monolithicFlat' }],
      ['a.vhdx', 'vhdx', {}],
    ] as const) {
      await expect(writeImage(disk, join(dir, name), { format, options }), format).rejects.toBe(bug);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('outputs that go through it', () => {
  it('sign: IMG.sig and the detached files are replaced by a rename, not rewritten in place (a hard link to the old one keeps it)', async () => {
    const dir = tempDir();
    const img = join(dir, 'disk.img');
    await buildImage({ scheme: 'gpt', size: '2M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '512K' }] }, { output: img, baseDir: dir });
    const { privatePath } = await writeKeyPair(join(dir, 'release'));
    const detachDir = join(dir, 'detached');
    mkdirSync(detachDir);
    const olds = [`${img}.sig`, join(detachDir, 'manifest.json'), join(detachDir, 'manifest.sig')];
    olds.forEach((path, i) => {
      writeFileSync(path, `old ${i}`);
      linkSync(path, join(dir, `kept-${i}`));
    });
    await signImage(img, privatePath, { detachDir });
    olds.forEach((path, i) => {
      expect(readFileSync(join(dir, `kept-${i}`), 'utf8'), path).toBe(`old ${i}`);
      expect(readFileSync(path, 'utf8'), path).not.toBe(`old ${i}`);
    });
    expect([...readdirSync(dir), ...readdirSync(detachDir)].filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('mode and replace (key generate: issue 17 item 5)', () => {
  it('mode: the temp file has it from its creation, the target keeps it', async () => {
    const dir = tempDir();
    const target = join(dir, 'k.pem');
    const out = await AtomicOutput.create(target, { mode: 0o600 });
    expect((await out.handle.stat()).mode & 0o777).toBe(0o600);
    await writeFully(out.handle, bytes('secret'), 0);
    await out.commit();
    expect(statSync(target).mode & 0o777).toBe(0o600);
  });

  it('replace: false never replaces a target, even one that appears while the file is written; nothing is left behind', async () => {
    const dir = tempDir();
    const target = join(dir, 'k.pem');
    await writeFileAtomically(target, bytes('new'), { replace: false });
    expect(readFileSync(target, 'utf8')).toBe('new');
    await expect(writeFileAtomically(target, bytes('newer'), { replace: false })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: `${target} exists; not overwriting it`,
    });
    const late = join(dir, 'late.pem');
    await expect(
      writeAtomically(
        late,
        async (handle) => {
          await writeFully(handle, bytes('mine'), 0);
          writeFileSync(late, 'theirs'); // another process got there first
        },
        { replace: false },
      ),
    ).rejects.toThrow(/late\.pem exists; not overwriting it/);
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readFileSync(late, 'utf8')).toBe('theirs');
    expect(temps(dir)).toEqual([]);
  });

  it('key generate: when KEY.pub cannot be written, no KEY.pem stays either (a retry is not refused), and no temp file', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'k.pub')); // the rename over it fails (EISDIR) after KEY.pem is in place
    await expect(writeKeyPair(join(dir, 'k'))).rejects.toMatchObject({ code: 'IO', message: expect.stringContaining(`writing ${join(dir, 'k.pub')} failed`) });
    expect(readdirSync(dir)).toEqual(['k.pub']);
    rmdirSync(join(dir, 'k.pub'));
    await writeKeyPair(join(dir, 'k'));
    expect(readdirSync(dir).sort()).toEqual(['k.pem', 'k.pub']);
    expect(statSync(join(dir, 'k.pem')).mode & 0o777).toBe(0o600);
    await expect(writeKeyPair(join(dir, 'k'))).rejects.toThrow(/k\.pem exists; not overwriting it/);
  });
});
