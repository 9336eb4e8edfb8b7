// The batch-prediction loop shared by every "classify these image files" feature (refit predict,
// classify-imagenet, the Classify screen): decode a batch with sharp while the previous one is
// predicted, preprocess, run the model's forward pass, report the top-k labels per file.
// Only two batches of decoded pixels exist at any time, so folders of any size stream through.
import * as tf from '@tensorflow/tfjs';
import type { ClassifyRow } from '../api/contract';
import { preprocess } from '../../models/preprocess';
import type { Preprocessing } from '../../models/types';
import { decodeBatch, prefetchBatches } from './image-batches';
import type { ForwardPass } from './onnx-runtime';

export interface PredictImagesOptions {
  preprocessing: Preprocessing;
  /** One per model output, in output order. */
  labels: readonly string[];
  topK?: number;
  /** Images per forward pass. */
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Called for each file as soon as it is done, in input order. */
  onResult?: (result: ClassifyRow) => void;
  /** Stops between batches; the returned promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface PredictSummary {
  /** Files with a prediction. */
  predicted: number;
  /** Files that yielded an error row. */
  failed: number;
  seconds: number;
}

/** The k most probable labels, best first (ties: lower output index first). */
export function topK(probabilities: ArrayLike<number>, labels: readonly string[], k: number): ClassifyRow['top'] {
  const indices = Array.from({ length: probabilities.length }, (_, i) => i);
  indices.sort((a, b) => probabilities[b] - probabilities[a]);
  return indices.slice(0, k).map((index) => ({ label: labels[index], probability: probabilities[index] }));
}

function checkOptions(forward: ForwardPass, o: PredictImagesOptions): void {
  const k = o.topK ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  const batchSize = o.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const out = forward.outputShape;
  if (out.length !== 1 || out[0] !== o.labels.length) {
    throw new Error(`the model gives [${out.join(', ')}] outputs per image but ${o.labels.length} labels were given`);
  }
}

/**
 * Predicts every file of `files` (an array or a lazily produced sequence) with `forward`, a model's
 * forward pass mapping preprocessed [batch, size, size, 3] images to class probabilities. A file that
 * cannot be decoded yields a row with `error` instead of failing the run. Rows go to `onResult`, in
 * input order.
 */
export async function predictImages(
  forward: ForwardPass,
  files: Iterable<string> | AsyncIterable<string>,
  options: PredictImagesOptions,
): Promise<PredictSummary> {
  checkOptions(forward, options);
  const { preprocessing, labels, topK: k = 5, batchSize = 8, concurrency = 4, onResult, signal } = options;
  const started = performance.now();
  const summary: PredictSummary = { predicted: 0, failed: 0, seconds: 0 };
  // Decoding runs on sharp's worker threads, so the next batch decodes while this one is predicted.
  const batches = prefetchBatches(files, batchSize, (batch) => decodeBatch(batch, (f) => f, forward.inputSize, concurrency));
  for await (const decoded of batches) {
    signal?.throwIfAborted();
    const probabilities = new Map<string, Float32Array>();
    if (decoded.pixels) {
      const x = tf.tidy(() => preprocess(decoded.pixels!, preprocessing));
      const probs = await forward.run(x).finally(() => x.dispose());
      const values = await probs.data<'float32'>().finally(() => probs.dispose());
      if (values.length !== decoded.items.length * labels.length) {
        throw new Error(`forward pass returned ${values.length} values for ${decoded.items.length} images × ${labels.length} labels`);
      }
      decoded.items.forEach((file, i) => probabilities.set(file, values.subarray(i * labels.length, (i + 1) * labels.length)));
    }
    const errors = new Map(decoded.failures.map((f) => [f.item, f.error]));
    for (const file of decoded.batch) {
      const error = errors.get(file);
      const row: ClassifyRow = error !== undefined ? { file, top: [], error } : { file, top: topK(probabilities.get(file)!, labels, k) };
      if (row.error !== undefined) summary.failed++;
      else summary.predicted++;
      onResult?.(row);
    }
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
