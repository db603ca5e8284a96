/**
 * Inputs for bench/convert-bench.ts (not a test). Both are raw images:
 *
 * - makeScatteredRaw: SIZE bytes, a quarter of it pseudo-random data in 4 MiB pieces, the rest
 *   holes (or written zeros with `dense`). The data is the AES-256-CTR keystream of a fixed key
 *   (so no data block is zero and nothing compresses); which 4 MiB slots hold data is fixed too:
 *   the slots whose SHA-256 of `diskmint-convert-bench:slot:N` sorts lowest.
 * - makeFfsImage: an FFS (UFS2, little-endian) file system made by Debian's `makefs` from a copy
 *   of /usr/bin and /usr/lib/x86_64-linux-gnu cut at DATA bytes (files in sorted path order):
 *   realistic, compressible system binaries. Without `makefs`, a raw image holding a tar of the
 *   same files (the caller is told, and says so).
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join, relative, dirname } from 'node:path';

const MiB = 1 << 20;
export const PIECE = 4 * MiB;

export interface InputImage {
  path: string;
  /** Virtual size of the image (bytes), the numerator of MB/s. */
  size: number;
  /** Bytes of data (non-hole) in it, for the notes. */
  dataBytes: number;
  description: string;
  notes: string[];
}

function writeAll(fd: number, buf: Uint8Array, pos: number): void {
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off, pos + off);
}

/** The data slots of a scattered image: `count` of `slots`, fixed by a hash, in disk order. */
export function dataSlots(slots: number, count: number): number[] {
  const keyed = Array.from({ length: slots }, (_, i) => ({ i, k: createHash('sha256').update(`diskmint-convert-bench:slot:${i}`).digest('hex') }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed
    .slice(0, count)
    .map((x) => x.i)
    .sort((a, b) => a - b);
}

export function makeScatteredRaw(path: string, size: number, opts: { dense?: boolean; fraction?: number } = {}): InputImage {
  const slots = Math.floor(size / PIECE);
  const chosen = dataSlots(slots, Math.round(slots * (opts.fraction ?? 0.25)));
  const key = createHash('sha256').update('diskmint-bench:convert-scattered').digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(PIECE);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    const isData = new Set(chosen);
    for (let s = 0; s < slots; s++) {
      if (isData.has(s)) writeAll(fd, cipher.update(zeros), s * PIECE);
      else if (opts.dense) writeAll(fd, zeros, s * PIECE);
    }
  } finally {
    closeSync(fd);
  }
  const dataBytes = chosen.length * PIECE;
  return {
    path,
    size,
    dataBytes,
    description: `raw ${fmtSize(size)}, 25% random in 4 MiB pieces${opts.dense ? ' (dense)' : ''}`,
    notes: [
      `scattered raw: ${chosen.length} of ${slots} 4 MiB slots hold AES-CTR data (${fmtSize(dataBytes)}); the rest are ${opts.dense ? 'written zeros (fully allocated file)' : 'holes (sparse file)'}`,
    ],
  };
}

/** Regular files under `roots`, in sorted path order, until `limit` bytes (symlinks and others skipped). */
function pickFiles(roots: string[], limit: number): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  const walk = (dir: string): boolean => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return true;
    }
    for (const name of names) {
      const p = join(dir, name);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (!walk(p)) return false;
      } else if (st.isFile()) {
        if (bytes + st.size > limit) return false;
        files.push(p);
        bytes += st.size;
      }
    }
    return true;
  };
  for (const r of roots) if (!walk(r)) break;
  return { files, bytes };
}

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * An FFS image of SIZE bytes holding up to DATA bytes of system files; staging folder `work`
 * is removed before returning. Falls back to a raw image holding a tar when makefs is missing.
 */
export function makeFfsImage(path: string, work: string, size: number, data: number): InputImage {
  const roots = ['/usr/bin', '/usr/lib/x86_64-linux-gnu'];
  const { files, bytes } = pickFiles(roots, data);
  const stage = join(work, 'ffs-stage');
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const notes: string[] = [];
  try {
    for (const f of files) {
      const to = join(stage, relative('/usr', f));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(f, to);
    }
    const copied = `${files.length} files, ${fmtSize(bytes)} from ${roots.join(' + ')} (sorted path order, cut at ${fmtSize(data)})`;
    const makefs = which('makefs');
    rmSync(path, { force: true });
    if (makefs) {
      const r = spawnSync(makefs, ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', String(size), path, stage], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`makefs failed (${r.status}): ${r.stderr}`);
      const st = statSync(path);
      if (st.size !== size) throw new Error(`makefs wrote ${st.size} bytes, expected ${size}`);
      notes.push(`FFS input: makefs -t ffs -B little -o version=2 -s ${size}: ${copied}; ${fmtSize(st.blocks * 512)} allocated on disk`);
      return { path, size, dataBytes: st.blocks * 512, description: `FFS ${fmtSize(size)}, ${fmtSize(bytes)} of /usr`, notes };
    }
    const r = spawnSync('tar', ['-cf', path, '-C', stage, '.'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar failed (${r.status}): ${r.stderr}`);
    const tarBytes = statSync(path).size;
    if (tarBytes > size) throw new Error(`tar of ${fmtSize(tarBytes)} does not fit in ${fmtSize(size)}`);
    truncateSync(path, size);
    notes.push(`FALLBACK: makefs not found (Debian package "makefs"), so the second input is a raw image holding a tar of ${copied}, not an FFS file system`);
    return { path, size, dataBytes: tarBytes, description: `raw+tar ${fmtSize(size)}, ${fmtSize(bytes)} of /usr (no makefs)`, notes };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export function fmtSize(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n >= MiB) return `${Number.isInteger(n / MiB) ? n / MiB : (n / MiB).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

/** Regular files under `roots`, in sorted path order (symbolic links and others skipped), lazily. */
function* filesUnder(roots: string[]): Generator<string> {
  const walk = function* (dir: string): Generator<string> {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) yield* walk(p);
      else if (st.isFile() && st.size > 0) yield p;
    }
  };
  for (const r of roots) yield* walk(r);
}

/** File contents are placed at 4 KiB boundaries, as a file system's blocks are. */
const FILE_ALIGN = 4096;

/**
 * A raw image of `size` bytes whose `data` bytes of system files (/usr/bin, /usr/lib, /usr/share
 * in sorted path order, each file starting at a 4 KiB boundary, the last one cut) lie in `runs`
 * equal runs spread evenly across the disk, each starting 1 MiB into its share (as a partition
 * does); the rest are holes. Real binaries and libraries: compressible, with some all-zero
 * clusters (ELF padding), so the writers' zero checks see realistic data.
 */
export function makeSystemRunsRaw(path: string, size: number, data: number, runs: number): InputImage {
  const share = Math.floor(size / runs / MiB) * MiB;
  const perRun = Math.floor(data / runs / FILE_ALIGN) * FILE_ALIGN;
  if (perRun + MiB > share) throw new Error(`makeSystemRunsRaw: ${runs} runs of ${fmtSize(perRun)} do not fit in ${fmtSize(size)}`);
  const fd = openSync(path, 'w');
  let files = 0;
  let run = 0;
  let used = 0; // bytes of the current run filled
  try {
    ftruncateSync(fd, size);
    for (const f of filesUnder(['/usr/bin', '/usr/lib', '/usr/share'])) {
      if (run === runs) break;
      let bytes: Buffer;
      try {
        bytes = readFileSync(f);
      } catch {
        continue;
      }
      files++;
      // A file larger than what is left of a run goes on in the next run.
      for (let off = 0; off < bytes.length && run < runs;) {
        const n = Math.min(bytes.length - off, perRun - used);
        writeAll(fd, bytes.subarray(off, off + n), run * share + MiB + used);
        off += n;
        used += n;
        if (off === bytes.length) used = Math.min(perRun, Math.ceil(used / FILE_ALIGN) * FILE_ALIGN);
        if (used === perRun) {
          run++;
          used = 0;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  if (run < runs) throw new Error(`makeSystemRunsRaw: /usr holds less than ${fmtSize(data)} of files`);
  const st = statSync(path);
  return {
    path,
    size,
    dataBytes: runs * perRun,
    description: `raw ${fmtSize(size)}, ${fmtSize(runs * perRun)} of /usr in ${runs} runs`,
    notes: [
      `system-runs raw: ${files} files from /usr/bin, /usr/lib, /usr/share (sorted path order, 4 KiB aligned) filling ${runs} runs of ${fmtSize(perRun)}, one at 1 MiB into each ${fmtSize(share)} share of the disk; ${fmtSize(st.blocks * 512)} allocated`,
    ],
  };
}
