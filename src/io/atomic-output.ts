/**
 * Crash-safe outputs: every file is written under a temp name beside its target and renamed over
 * it only when complete, after an fsync, and the folder is fsynced after the rename. The target
 * is never touched before that: a crash, a signal or an error leaves it as it was.
 *
 * One AtomicOutput is one command's output: a main file, and sibling files written beside other
 * targets with it (a VMDK's -flat or -s001 extents beside its descriptor), all renamed at
 * commit (siblings first, so the main file never names an extent that is not there yet). Temp
 * files are opened with 'wx' (a clash fails instead of clobbering) and tracked in temp-files.ts,
 * so a signal removes them; those a killed process left beside the same target are removed first
 * (temp-files.ts: removeLeftoversBeside).
 */
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DiskmintError, FormatError, isSystemError } from '../model/errors.js';
import { removeLeftoversBeside, tempPathBeside, trackTempFile, untrackTempFile } from './temp-files.js';
import { writeFully } from './write-fully.js';

interface TempFile {
  temp: string;
  /** Where commit renames it; undefined for scratch files, which commit deletes. */
  final?: string;
  handle?: FileHandle;
  /** Commit links it to `final` (failing if that exists) instead of renaming over it. */
  noReplace?: boolean;
}

export interface AtomicFileOptions {
  /**
   * The file's permission bits from its creation on (less the umask), the temp file's too: 0o600
   * for a private key, which is never readable by others, not even for a moment. Default 0o666.
   */
  mode?: number;
  /**
   * false: never replace an existing target. At commit the temp file is hard-linked to the target,
   * which the kernel refuses (EEXIST) when the target exists, atomically, then unlinked; the
   * error is DiskmintError 'BAD_ARGUMENT' "TARGET exists; not overwriting it". Default true.
   */
  replace?: boolean;
  /**
   * The file's owner from its creation on, with exactly `mode` (no umask): a container rewritten
   * by an edit keeps the owner, group and mode of the file it replaces. A user who may not give
   * the file that owner gets a DiskmintError naming the target, and nothing changes.
   */
  owner?: { uid: number; gid: number };
  /**
   * Called with the main temp file once it is complete, before anything is renamed: a check
   * (a read-back) that throws leaves the target untouched and the temp files removed.
   */
  beforeCommit?: (tempPath: string) => Promise<void>;
}

export class AtomicOutput {
  private readonly files: TempFile[] = [];
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(
    /** The main file's target path. */
    readonly target: string,
    /** The main file's temp file, open for writing. */
    readonly handle: FileHandle,
  ) {}

  /** The main file's temp path (complete once `fill` has written it; renamed at commit). */
  get tempPath(): string {
    return this.files[0].temp;
  }

  /** Start writing `target`: its temp file is created beside it. */
  static async create(target: string, opts: AtomicFileOptions = {}): Promise<AtomicOutput> {
    await removeLeftoversBeside(target);
    const main = await openTemp(tempPathBeside(target), target, opts);
    const out = new AtomicOutput(target, main.handle!);
    out.files.push(main);
    return out;
  }

  /** A second file written with this one, renamed to `target` at commit (before the main file). */
  async sibling(target: string): Promise<FileHandle> {
    await removeLeftoversBeside(target);
    return this.add(tempPathBeside(target), target);
  }

  /**
   * A scratch file beside the main target (`.NAME.PID@HOST.N-RAND.tmp`, NAME from `name`), for data
   * the output is assembled from: deleted at commit and at abort, never renamed.
   */
  async scratch(name: string): Promise<{ path: string; handle: FileHandle }> {
    await removeLeftoversBeside(this.target, name);
    const path = tempPathBeside(this.target, name);
    return { path, handle: await this.add(path, undefined) };
  }

  /**
   * Make the output durable and visible: fsync and close every file, delete the scratch files,
   * rename the siblings and then the main file over their targets, fsync their folders.
   */
  async commit(): Promise<void> {
    this.expectOpen('commit');
    for (const f of this.files) {
      if (f.final !== undefined) await f.handle!.sync();
      await f.handle!.close();
      f.handle = undefined;
    }
    for (const f of this.files) if (f.final === undefined) await this.remove(f);
    const [main, ...others] = this.files;
    const folders = new Set<string>();
    for (const f of [...others.filter((o) => o.final !== undefined), main]) {
      if (f.noReplace) await linkNoReplace(f.temp, f.final!);
      else await rename(f.temp, f.final!);
      untrackTempFile(f.temp);
      folders.add(dirname(f.final!));
    }
    this.files.length = 0;
    this.state = 'committed';
    for (const folder of folders) await syncFolder(folder);
  }

  /** Close and delete every temp file (never throws; a no-op after commit or abort). */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    for (const f of this.files.splice(0)) {
      await f.handle?.close().catch(() => {});
      await this.remove(f);
    }
  }

  private async add(temp: string, final: string | undefined): Promise<FileHandle> {
    this.expectOpen('add a file to');
    const f = await openTemp(temp, final);
    this.files.push(f);
    return f.handle!;
  }

  private async remove(f: TempFile): Promise<void> {
    await unlink(f.temp).catch(() => {});
    untrackTempFile(f.temp);
  }

  private expectOpen(what: string): void {
    if (this.state !== 'open') throw new Error(`AtomicOutput: cannot ${what} an output already ${this.state}`);
  }
}

/** Track `temp`, then create it exclusively ('wx'): tracked first, so a signal between the two still removes it. */
async function openTemp(temp: string, final: string | undefined, opts: AtomicFileOptions = {}): Promise<TempFile> {
  trackTempFile(temp);
  let handle: FileHandle;
  try {
    handle = await open(temp, 'wx', opts.mode ?? 0o666);
  } catch (err) {
    untrackTempFile(temp); // not ours: it existed, or could not be made
    throw err;
  }
  const file: TempFile = { temp, final, noReplace: opts.replace === false, handle };
  if (opts.owner) {
    try {
      await handle.chown(opts.owner.uid, opts.owner.gid); // before chmod: chown clears set-id bits
      await handle.chmod(opts.mode ?? 0o666);
    } catch (err) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      untrackTempFile(temp);
      if (isSystemError(err) && err.code === 'EPERM') {
        throw new DiskmintError(
          'BAD_ARGUMENT',
          `${final ?? temp} belongs to uid ${opts.owner.uid}, gid ${opts.owner.gid}, which this user cannot give a new file; nothing was changed`,
        );
      }
      throw err;
    }
  }
  return file;
}

/**
 * Make complete `temp` visible as `final` unless `final` exists: link() fails with EEXIST
 * atomically (no window in which a second writer's file could be replaced), then the temp name
 * goes. On an error other than EEXIST the temp file stays, for abort() to remove.
 */
async function linkNoReplace(temp: string, final: string): Promise<void> {
  try {
    await link(temp, final);
  } catch (err) {
    if (isSystemError(err) && err.code === 'EEXIST') throw new DiskmintError('BAD_ARGUMENT', `${final} exists; not overwriting it`);
    throw err;
  }
  await unlink(temp);
}

/** fsync a folder, so that a rename into it survives a crash. Folders that cannot be opened for it (some file systems) are skipped. */
async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch (err) {
    if (!isSystemError(err) || !['EINVAL', 'ENOTSUP', 'EPERM', 'EISDIR', 'EBADF'].includes(err.code)) throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Write `target` through `fill`, atomically: `fill` writes the temp file (and may add siblings
 * through `output`), then everything is committed. On any error every temp file is removed and
 * the target is untouched. Operational errors (the system's: ENOSPC, EIO, EACCES...; a
 * FormatError) come out as DiskmintError 'IO' naming the target; a DiskmintError comes out as
 * it is; anything else (a TypeError, a RangeError: a bug) propagates unchanged.
 */
export async function writeAtomically<T>(
  target: string,
  fill: (handle: FileHandle, output: AtomicOutput) => Promise<T>,
  opts: AtomicFileOptions = {},
): Promise<T> {
  let output: AtomicOutput | undefined;
  try {
    output = await AtomicOutput.create(target, opts);
    const result = await fill(output.handle, output);
    await opts.beforeCommit?.(output.tempPath);
    await output.commit();
    return result;
  } catch (err) {
    await output?.abort();
    throw relabelWriteError(err, target);
  }
}

/** The error `writeAtomically` throws for `err`: see there. */
export function relabelWriteError(err: unknown, target: string): unknown {
  if (err instanceof DiskmintError) return err;
  if (isSystemError(err) || err instanceof FormatError) return new DiskmintError('IO', `writing ${target} failed: ${err.message}`);
  return err;
}

/** Write `bytes` as the whole of `target`, atomically (writeAtomically), with `opts`' mode and replace rule. */
export async function writeFileAtomically(target: string, bytes: Uint8Array, opts: AtomicFileOptions = {}): Promise<void> {
  await writeAtomically(target, (handle) => writeFully(handle, bytes, 0), opts);
}
