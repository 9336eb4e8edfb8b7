// The batch-prediction loop shared by every "classify these image files" feature (refit predict,
// classify-imagenet, the Classify screen): decode with sharp straight to the model's input size,
// preprocess into the batch buffer, run the model's forward pass, report the top-k labels per file.
// No TF.js: pixels stay plain arrays (forward.runFloat32).
//
// Decoding overlaps inference: the decodes of the next images are dispatched before a batch runs, so
// sharp's threads work while onnxruntime (which holds the JS thread during a run) computes. At most
// two batches' worth of images are decoded ahead, so folders of any size stream through.
import type { ClassifyRow } from '../api/contract';
import type { Preprocessing } from '../../models/types';
import { decodeImageRgb } from './image-decode';
import type { ForwardPass } from './onnx-runtime';
import { preprocessInto } from './preprocess-float';

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
  return indices.slice(0, k).map((index) => ({ label: labels[index], probability: probabilities[index], index }));
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

type Decoded = { file: string; rgb: Uint8Array } | { file: string; error: string };

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
  const size = forward.inputSize;
  const perImage = size * size * 3;
  const ahead = Math.max(concurrency, 2 * batchSize);
  const iterator = Symbol.asyncIterator in files ? files[Symbol.asyncIterator]() : files[Symbol.iterator]();
  const window: Promise<Decoded>[] = [];
  let exhausted = false;
  const decode = (file: string): Promise<Decoded> =>
    decodeImageRgb(file, size).then(
      (rgb) => ({ file, rgb }),
      (err: unknown) => ({ file, error: err instanceof Error ? err.message : String(err) }),
    );
  /** Dispatches decodes until `ahead` images are in flight or decoded (or the input ends). */
  const fill = async (): Promise<void> => {
    while (!exhausted && window.length < ahead) {
      const next = await iterator.next();
      if (next.done) exhausted = true;
      else window.push(decode(next.value));
    }
  };
  let buffer = new Float32Array(batchSize * perImage);
  try {
    await fill();
    while (window.length > 0) {
      signal?.throwIfAborted();
      const decoded = await Promise.all(window.splice(0, batchSize));
      await fill(); // the next images decode while this batch runs
      const ok = decoded.filter((d): d is { file: string; rgb: Uint8Array } => 'rgb' in d);
      let values: Float32Array | undefined;
      if (ok.length > 0) {
        if (buffer.length !== ok.length * perImage) buffer = new Float32Array(ok.length * perImage);
        ok.forEach((d, i) => preprocessInto(buffer, i * perImage, d.rgb, preprocessing));
        values = await forward.runFloat32(buffer, ok.length);
        if (values.length !== ok.length * labels.length) {
          throw new Error(`forward pass returned ${values.length} values for ${ok.length} images × ${labels.length} labels`);
        }
      }
      let j = 0;
      for (const d of decoded) {
        const row: ClassifyRow = 'error' in d ? { file: d.file, top: [], error: d.error } : { file: d.file, top: topK(values!.subarray(j * labels.length, ++j * labels.length), labels, k) };
        if (row.error !== undefined) summary.failed++;
        else summary.predicted++;
        onResult?.(row);
      }
    }
  } finally {
    if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => undefined);
    await Promise.allSettled(window);
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
