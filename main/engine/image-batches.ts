// Decoding images into batches of raw pixels, a bounded number at a time, with per-file errors.
import * as tf from '@tensorflow/tfjs';
import { mapLimit } from './concurrency';
import { decodeImage } from './image-decode';

export interface DecodedBatch<T> {
  /** Every item of the batch, decoded or not, in order. */
  batch: T[];
  /** The items that decoded, in order, with their pixels stacked as [n, size, size, 3] (0..255). */
  items: T[];
  pixels: tf.Tensor4D | null;
  failures: { item: T; error: string }[];
}

export async function decodeBatch<T>(items: readonly T[], fileOf: (item: T) => string, size: number, concurrency = 4): Promise<DecodedBatch<T>> {
  const decoded = await mapLimit(items, concurrency, async (item) => {
    try {
      return { item, pixels: await decodeImage(fileOf(item), size) };
    } catch (err) {
      return { item, error: err instanceof Error ? err.message : String(err) };
    }
  });
  const ok = decoded.filter((d): d is { item: T; pixels: Float32Array } => 'pixels' in d);
  const failures = decoded.filter((d): d is { item: T; error: string } => 'error' in d);
  let pixels: tf.Tensor4D | null = null;
  if (ok.length > 0) {
    const buffer = new Float32Array(ok.length * size * size * 3);
    ok.forEach((d, i) => buffer.set(d.pixels, i * size * size * 3));
    pixels = tf.tensor4d(buffer, [ok.length, size, size, 3]);
  }
  return { batch: [...items], items: ok.map((d) => d.item), pixels, failures };
}

async function takeBatch<T>(items: AsyncIterator<T> | Iterator<T>, size: number): Promise<T[]> {
  const batch: T[] = [];
  while (batch.length < size) {
    const next = await items.next();
    if (next.done) break;
    batch.push(next.value);
  }
  return batch;
}

/**
 * Batches of `items` (an array, or a sequence produced lazily, e.g. a folder walk), each decoded
 * while the previous one is being used: at most two batches of pixels exist at a time. A batch's
 * pixels are freed when the consumer asks for the next one or stops (break, throw, cancel).
 */
export async function* prefetchBatches<T>(
  items: Iterable<T> | AsyncIterable<T>,
  batchSize: number,
  decode: (batch: T[]) => Promise<DecodedBatch<T>>,
): AsyncGenerator<DecodedBatch<T>> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  const next = (): Promise<DecodedBatch<T> | null> => {
    const read = takeBatch(iterator, batchSize).then((batch) => (batch.length > 0 ? decode(batch) : null));
    read.catch(() => undefined); // a failed read-ahead surfaces when it is awaited, never as an unhandled rejection
    return read;
  };
  let pending = next();
  try {
    for (;;) {
      const current = await pending;
      if (!current) return;
      pending = next();
      try {
        yield current;
      } finally {
        current.pixels?.dispose();
      }
    }
  } finally {
    // The consumer stopped early (cancel, error): free the batch decoded ahead and close the source;
    // a failure of that read-ahead (or the one just thrown above) is not reported twice.
    await pending.then((b) => b?.pixels?.dispose(), () => undefined);
    await Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
