/**
 * A process that holds an image's lock (the built src/io/image-lock.ts, from dist/), as another
 * diskmint would: it says "locked" once it holds it, and releases it when sent a line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { requireFreshBundle, ROOT } from './cli.js';

const HOLDER = `
const [path, signals] = process.argv.slice(1);
const { lockImage, configureLocks } = await import(${JSON.stringify(join(ROOT, 'dist/src/io/image-lock.js'))});
if (signals === 'signals') (await import(${JSON.stringify(join(ROOT, 'dist/src/cli/main.js'))})).removeTempFilesOnSignals();
configureLocks({ command: 'test holder' });
const lock = await lockImage(path);
process.stdout.write('locked\\n');
process.stdin.on('data', () => { lock.release(); process.stdout.write('released\\n'); });
`;

export interface Holder {
  child: ChildProcess;
  /** Resolves when the child's output holds `word`; rejects if it exits first. */
  said(word: string): Promise<void>;
  exited: Promise<number | null>;
}

/** Start a holder of the lock on `path`; with `withSignals`, the CLI's signal handlers too. */
export function holdLock(path: string, withSignals = false): Holder {
  requireFreshBundle();
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, path, withSignals ? 'signals' : ''], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const said = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => out.includes(word) && resolve();
      waiters.push(check);
      check();
      void exited.then(() => reject(new Error(`holder exited before saying ${word}: ${out}${err}`)));
    });
  return { child, said, exited };
}
