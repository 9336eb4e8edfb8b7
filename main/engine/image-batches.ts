// Decoding images into batches of raw pixels, a bounded number at a time, with per-file errors.
import * as tf from '@tensorflow/tfjs';
import { mapLimit } from './concurrency';
import { decodeImage } from './image-decode';

export interface DecodedBatch<T> {
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
  return { items: ok.map((d) => d.item), pixels, failures };
}

/** Batches of `items`, each decoded while the previous one is being used. */
export async function* prefetchBatches<T>(
  items: readonly T[],
  batchSize: number,
  decode: (batch: T[]) => Promise<DecodedBatch<T>>,
): AsyncGenerator<DecodedBatch<T>> {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += batchSize) chunks.push(items.slice(i, i + batchSize));
  let pending = chunks.length > 0 ? decode(chunks[0]) : undefined;
  try {
    for (let i = 0; i < chunks.length; i++) {
      const current = await pending!;
      pending = i + 1 < chunks.length ? decode(chunks[i + 1]) : undefined;
      try {
        yield current;
      } finally {
        current.pixels?.dispose();
      }
    }
  } finally {
    // The consumer stopped early (cancel): free the batch decoded ahead.
    if (pending) (await pending).pixels?.dispose();
  }
}
