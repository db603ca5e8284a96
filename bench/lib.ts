/** What every benchmark shares: timing a child command with its peak RSS, medians, a temp dir. */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 1 << 20;
export const GiB = 1 << 30;
/** GNU time: `-f %M` prints the peak resident set size in KiB. */
export const TIME = '/usr/bin/time';

/**
 * `qemu-img convert` writes its output with cache=unsafe unless told otherwise (qemu-img --help:
 * "'unsafe' (default for convert)"): it never flushes, and a 342 MiB output was left as 349 MB of
 * dirty pages. With `-t writeback` it fdatasyncs the output before exiting, as diskmint makes its
 * own durable (fsync of the file and its folder): the benches compare durable with durable.
 */
export const QEMU_CONVERT_DURABLE = ['convert', '-t', 'writeback'];

export interface Measurement {
  wallMs: number;
  maxRssKiB?: number;
}

/**
 * The environment every measured command gets: this one without NODE_EXTRA_CA_CERTS. When it is
 * set (as on the benchmark machine), Node parses that CA bundle at every start, before any of
 * diskmint's code runs (~60 ms here, longer than all of `node -e 1` without it), although
 * diskmint opens no TLS connection; the peers are C programs it does not touch.
 */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** A note for the report when the machine sets NODE_EXTRA_CA_CERTS (cleared for measured runs). */
export function caCertsNote(): string[] {
  return process.env.NODE_EXTRA_CA_CERTS
    ? ['NODE_EXTRA_CA_CERTS is set on this machine; measured commands run without it (Node would parse that CA bundle at every start, ~60 ms here)']
    : [];
}

/**
 * Run a command to completion, timing it and taking its peak RSS; throws when it fails. Before
 * the clock starts, `sync` (untimed) writes back what earlier runs left dirty, so no run pays
 * for its predecessor's writeback (each run here writes hundreds of MiB).
 */
export function measure(argv: string[], timeFile: string, env?: NodeJS.ProcessEnv): { m: Measurement; stdout: string } {
  spawnSync('sync');
  const useTime = existsSync(TIME);
  const cmd = useTime ? [TIME, '-f', '%M', '-o', timeFile, ...argv] : argv;
  const start = performance.now();
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', maxBuffer: 16 * MiB, env: env ?? benchEnv(), input: '' });
  const wallMs = performance.now() - start;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  const m: Measurement = { wallMs };
  if (useTime) {
    const kib = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
    if (Number.isFinite(kib)) m.maxRssKiB = kib;
  }
  return { m, stdout: r.stdout };
}

/** Small seeded PRNG (mulberry32): file sizes and names are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const maxOf = (xs: Array<number | undefined>): number | undefined => {
  const ok = xs.filter((x): x is number => x !== undefined);
  return ok.length ? Math.max(...ok) : undefined;
};

/**
 * A temp folder with at least `neededBytes` free, removed at exit and on Ctrl-C; exits with a
 * message when the disk is too full.
 */
export function benchTempDir(name: string, neededBytes: number, opts: { keep?: boolean } = {}): string {
  const base = tmpdir();
  const fs = statfsSync(base);
  const free = fs.bavail * fs.bsize;
  if (free < neededBytes) {
    process.stderr.write(`${name}: ${base} has ${(free / GiB).toFixed(1)} GiB free; needs ${(neededBytes / GiB).toFixed(1)} GiB\n`);
    process.exit(1);
  }
  const dir = mkdtempSync(join(base, `diskmint-${name}-`));
  const cleanup = () => {
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  return dir;
}

/** Deterministic pseudo-random bytes (no zero blocks): the AES-256-CTR keystream of a key made from `label`. */
export function writeRandomFile(path: string, bytes: number, label: string): void {
  const key = createHash('sha256').update(`diskmint-bench:${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(4 * MiB, Math.max(bytes, 1)));
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(zeros.length, bytes - done);
      const chunk = cipher.update(zeros.subarray(0, n));
      for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}
