import { watch } from 'node:fs';

/**
 * Resolves once `ready()` holds: checked now and at every change fs.watch reports in `dir`.
 * Rejects with `why()` if `ended` settles first (the process that should have made the change
 * exited): no wall-clock limit, so a busy machine only makes it slower.
 */
export function whenInFolder(dir: string, ready: () => boolean, ended: Promise<unknown>, why: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (ready()) finish();
    };
    const watcher = watch(dir, check);
    void ended.then(() => finish(new Error(why())));
    check(); // it may have happened before the watch began
  });
}
