// The batch-prediction loop shared by every "classify these image files" feature: decode a batch
// with sharp while the previous one is predicted, preprocess, predict, report top-k per file.
// Only two batches of decoded pixels exist at any time, so folders of any size stream through.
import * as tf from '@tensorflow/tfjs';
import { preprocess } from '../../models/preprocess';
import type { Preprocessing } from '../../models/types';
import { decodeBatch, type DecodedBatch } from './image-batches';

export interface LabelScore {
  label: string;
  /** Output index of the label in the model. */
  index: number;
  probability: number;
}

export interface ImagePrediction {
  file: string;
  /** Best first; empty when `error` is set. */
  top: LabelScore[];
  error?: string;
}

export interface PredictImagesOptions {
  /** Square side the model takes. */
  inputSize: number;
  preprocessing: Preprocessing;
  /** One per model output, in output order. */
  labels: readonly string[];
  topK?: number;
  /** Images per forward pass. */
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Called for each file as soon as it is done, in input order. */
  onResult?: (result: ImagePrediction) => void;
  /** Stops between batches; the returned promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Computes the model's output from n preprocessed NHWC images (e.g. an onnxruntime session, see
   * onnx-runtime.ts); used instead of model.predict when given.
   */
  forward?: (x: Float32Array, n: number) => Promise<Float32Array>;
}

export interface PredictSummary {
  /** Files with a prediction. */
  predicted: number;
  /** Files that yielded an error row. */
  failed: number;
  seconds: number;
}

export function topK(probabilities: Float32Array, labels: readonly string[], k: number): LabelScore[] {
  const indices = Array.from(probabilities.keys());
  indices.sort((a, b) => probabilities[b] - probabilities[a]);
  return indices.slice(0, k).map((index) => ({ label: labels[index], index, probability: probabilities[index] }));
}

async function takeBatch(files: AsyncIterator<string> | Iterator<string>, size: number): Promise<string[]> {
  const batch: string[] = [];
  while (batch.length < size) {
    const next = await files.next();
    if (next.done) break;
    batch.push(next.value);
  }
  return batch;
}

function iteratorOf(files: Iterable<string> | AsyncIterable<string>): AsyncIterator<string> | Iterator<string> {
  return Symbol.asyncIterator in files ? files[Symbol.asyncIterator]() : files[Symbol.iterator]();
}

function checkOptions(model: tf.LayersModel, o: PredictImagesOptions): void {
  const k = o.topK ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  const batchSize = o.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const [, h, w, c] = model.inputs[0].shape;
  if (h !== o.inputSize || w !== o.inputSize || c !== 3) {
    throw new Error(`model ${model.name} takes [${model.inputs[0].shape.join(', ')}] but inputSize is ${o.inputSize} (RGB)`);
  }
  const out = model.outputs[0].shape;
  if (out[out.length - 1] !== o.labels.length) {
    throw new Error(`model ${model.name} has ${out[out.length - 1]} outputs but ${o.labels.length} labels were given`);
  }
}

/**
 * Predicts every file of `files` (an array or a lazily produced sequence) with `model`, which maps
 * preprocessed [batch, size, size, 3] images to class probabilities. A file that cannot be decoded
 * yields a result with `error` instead of failing the run. Results go to `onResult`, in order.
 */
export async function predictImages(
  model: tf.LayersModel,
  files: Iterable<string> | AsyncIterable<string>,
  options: PredictImagesOptions,
): Promise<PredictSummary> {
  checkOptions(model, options);
  const { inputSize: size, preprocessing, labels, topK: k = 5, batchSize = 8, concurrency = 4, onResult, signal, forward } = options;
  const started = performance.now();
  const summary: PredictSummary = { predicted: 0, failed: 0, seconds: 0 };
  const iterator = iteratorOf(files);

  const decodeNext = async (): Promise<{ files: string[]; decoded: DecodedBatch<string> }> => {
    const files = await takeBatch(iterator, batchSize);
    return { files, decoded: await decodeBatch(files, (f) => f, size, concurrency) };
  };

  // Decoding runs on sharp's worker threads, so the next batch decodes while this one is predicted.
  let pending = decodeNext();
  try {
    for (;;) {
      const { files: batch, decoded } = await pending;
      if (batch.length === 0) break;
      try {
        signal?.throwIfAborted();
        pending = decodeNext();
        const probabilities = new Map<string, Float32Array>();
        if (decoded.pixels) {
          let values: Float32Array;
          if (forward) {
            const x = tf.tidy(() => preprocess(decoded.pixels!, preprocessing));
            const input = await x.data<'float32'>();
            x.dispose();
            values = await forward(input, decoded.items.length);
          } else {
            const probs = tf.tidy(() => model.predict(preprocess(decoded.pixels!, preprocessing)) as tf.Tensor2D);
            values = await probs.data<'float32'>();
            probs.dispose();
          }
          if (values.length !== decoded.items.length * labels.length) {
            throw new Error(`forward pass returned ${values.length} values for ${decoded.items.length} images × ${labels.length} labels`);
          }
          decoded.items.forEach((file, i) => probabilities.set(file, values.subarray(i * labels.length, (i + 1) * labels.length)));
        }
        const errors = new Map(decoded.failures.map((f) => [f.item, f.error]));
        for (const file of batch) {
          const error = errors.get(file);
          const result: ImagePrediction = error !== undefined ? { file, top: [], error } : { file, top: topK(probabilities.get(file)!, labels, k) };
          if (result.error) summary.failed++;
          else summary.predicted++;
          onResult?.(result);
        }
      } finally {
        decoded.pixels?.dispose();
      }
    }
  } finally {
    // A decode started ahead must not surface as an unhandled rejection after an abort or error;
    // its pixels are freed once it settles.
    pending.then((p) => p.decoded.pixels?.dispose(), () => undefined);
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
