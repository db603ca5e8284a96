/** Bounded, order-preserving concurrency for I/O and compression pipelines. */

/**
 * Apply `fn` to each item with up to `concurrency` calls in flight; yield results in input order.
 * Memory stays bounded: at most `concurrency` items are held.
 */
export async function* mapOrdered<T, R>(source: AsyncIterable<T> | Iterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const inFlight: Promise<R>[] = [];
  for await (const item of source) {
    const p = fn(item);
    p.catch(() => {}); // observed when awaited below; avoid an unhandled rejection meanwhile
    inFlight.push(p);
    if (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  while (inFlight.length) yield await inFlight.shift()!;
}
