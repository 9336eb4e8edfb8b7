// Top ImageNet labels for image files, with our ResNet-50 carrying the bundled ImageNet weights.
import * as tf from '@tensorflow/tfjs';
import { loadImagenetResNet50, type ImagenetResNet50 } from '../../models/imagenet';
import { preprocess } from '../../models/preprocess';
import { decodeImage } from './image-decode';
import { listImageFiles } from './image-files';

export interface LabelScore {
  label: string;
  /** ImageNet class index (0..999); some labels occur twice (e.g. "crane"), the index does not. */
  index: number;
  probability: number;
}

export interface ClassifyResult {
  file: string;
  /** Best first; empty when `error` is set. */
  top: LabelScore[];
  error?: string;
}

export interface ClassifyOptions {
  topK?: number;
  /** Images per forward pass. */
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Called for each file as soon as it is done, in input order. */
  onResult?: (result: ClassifyResult) => void;
  /** A loaded model to reuse; loaded (and kept for later calls) when absent. */
  model?: ImagenetResNet50;
}

let shared: Promise<ImagenetResNet50> | undefined;

function sharedModel(): Promise<ImagenetResNet50> {
  shared ??= loadImagenetResNet50();
  shared.catch(() => (shared = undefined));
  return shared;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

type Decoded = { file: string; pixels: Float32Array } | { file: string; error: string };

export function topK(probabilities: Float32Array, labels: readonly string[], k: number): LabelScore[] {
  const indices = Array.from(probabilities.keys());
  indices.sort((a, b) => probabilities[b] - probabilities[a]);
  return indices.slice(0, k).map((index) => ({ label: labels[index], index, probability: probabilities[index] }));
}

/**
 * Classifies the images in `paths` (files, or folders searched recursively). A file that cannot
 * be decoded yields a result with `error` instead of failing the whole run.
 */
export async function classifyImagenet(paths: readonly string[], options: ClassifyOptions = {}): Promise<ClassifyResult[]> {
  const { topK: k = 5, batchSize = 8, concurrency = 4, onResult } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  const files = await listImageFiles(paths);
  if (files.length === 0) return [];
  const model = options.model ?? (await sharedModel());
  const { classifier, labels, info } = model;
  const size = classifier.inputs[0].shape[1] as number;

  const decode = (batch: string[]) =>
    mapLimit(batch, concurrency, async (file): Promise<Decoded> => {
      try {
        return { file, pixels: await decodeImage(file, size) };
      } catch (err) {
        return { file, error: err instanceof Error ? err.message : String(err) };
      }
    });

  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += batchSize) batches.push(files.slice(i, i + batchSize));

  const results: ClassifyResult[] = [];
  // Decoding runs on sharp's worker threads, so the next batch decodes while this one is predicted.
  let pending = decode(batches[0]);
  for (let b = 0; b < batches.length; b++) {
    const decoded = await pending;
    if (b + 1 < batches.length) pending = decode(batches[b + 1]);

    const ok = decoded.filter((d): d is { file: string; pixels: Float32Array } => 'pixels' in d);
    const probabilities = new Map<string, Float32Array>();
    if (ok.length > 0) {
      const pixels = new Float32Array(ok.length * size * size * 3);
      ok.forEach((d, i) => pixels.set(d.pixels, i * d.pixels.length));
      const probs = tf.tidy(() => {
        const x = preprocess(tf.tensor4d(pixels, [ok.length, size, size, 3]), info.preprocessing);
        return classifier.predict(x) as tf.Tensor2D;
      });
      const values = await probs.data<'float32'>();
      probs.dispose();
      ok.forEach((d, i) => probabilities.set(d.file, values.subarray(i * labels.length, (i + 1) * labels.length)));
    }
    for (const d of decoded) {
      const result: ClassifyResult =
        'error' in d ? { file: d.file, top: [], error: d.error } : { file: d.file, top: topK(probabilities.get(d.file)!, labels, k) };
      results.push(result);
      onResult?.(result);
    }
  }
  return results;
}
