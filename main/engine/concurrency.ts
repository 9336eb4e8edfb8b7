// Bounded concurrency for I/O-heavy work on many files (decoding, hashing, checking): at most `limit`
// calls in flight, started in order (p-limit's queue).
import pLimit from 'p-limit';

/** `fn` on each item, at most `limit` at once; the results in the items' order. */
export function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return pLimit(limit).map(items, fn);
}

/**
 * `work` on each item, at most `limit` at once. Once `signal` aborts, no further item is started; the
 * calls in flight are awaited (nothing runs after this returns), then it throws the abort reason.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  await mapLimit(items, limit, async (item, index) => {
    if (!signal?.aborted) await work(item, index);
  });
  signal?.throwIfAborted();
}
