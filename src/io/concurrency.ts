/** Bounded, order-preserving concurrency for I/O and compression pipelines. */

/**
 * A pipeline that finds nothing to wait for (reads that resolve at once, blocks of zeros that are
 * not written) runs on microtasks alone, and the event loop does not turn until it ends: Ctrl-C
 * and SIGTERM (handled on the event loop) waited minutes for a VMDK that claimed 2 TiB. Both
 * helpers below let the loop turn when this much time has passed since they last did.
 */
const TURN_EVERY_MS = 50;
let lastTurn = Date.now();

/** The turn every caller waits for once one is due: shared, so N workers cost one turn, not N. */
let pendingTurn: Promise<void> | undefined;

function letEventLoopTurn(): Promise<void> | undefined {
  if (pendingTurn) return pendingTurn;
  if (Date.now() - lastTurn < TURN_EVERY_MS) return undefined;
  // Each worker awaiting its own setImmediate would resume in turn within one check phase and
  // run its own 50 ms first (4 workers: 200 ms without a turn); waiting on one shared turn
  // keeps every worker behind it.
  pendingTurn = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
    lastTurn = Date.now();
    pendingTurn = undefined;
  });
  return pendingTurn;
}

/**
 * Apply `fn` to each item with up to `concurrency` calls in flight; yield results in input order.
 * Memory stays bounded: at most `concurrency` items are held.
 */
export async function* mapOrdered<T, R>(source: AsyncIterable<T> | Iterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const inFlight: Promise<R>[] = [];
  for await (const item of source) {
    await letEventLoopTurn();
    const p = fn(item);
    p.catch(() => {}); // observed when awaited below; avoid an unhandled rejection meanwhile
    inFlight.push(p);
    if (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  while (inFlight.length) yield await inFlight.shift()!;
}

/**
 * Run `fn` on every item with `workers` loops pulling from one shared iterator (order of
 * completion is not kept). `fn` gets its loop's index, so each loop can own a buffer. After the
 * first failure no new item starts; every running call settles before the error is thrown.
 */
export async function forEachConcurrent<T>(items: Iterable<T>, workers: number, fn: (item: T, worker: number) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const loop = async (worker: number): Promise<void> => {
    for (let next = iterator.next(); !next.done && !failure; next = iterator.next()) {
      try {
        await letEventLoopTurn();
        await fn(next.value, worker);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, workers) }, (_, i) => loop(i)));
  if (failure) throw failure.error;
}

/**
 * A gate that lets at most `n` calls run at once, the rest waiting in the order they came: a
 * pipeline can queue more work than that (so a freed slot is taken at once, not when its
 * consumer next asks) without running more than `n`.
 */
export function concurrencyLimit(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next)
        next(); // the slot passes straight to the next caller
      else running--;
    }
  };
}
