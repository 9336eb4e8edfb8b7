// Top ImageNet labels for image files, with our ResNet-50 carrying the bundled ImageNet weights.
import type { ClassifyRow } from '../api/contract';
import { loadImagenetResNet50, type ImagenetResNet50 } from '../../models/imagenet';
import { listImageFiles } from './image-files';
import { createForwardPass, type ForwardPass, type ForwardRuntime } from './onnx-runtime';
import { predictImages } from './predict-images';

/** The ImageNet ResNet-50 with its forward pass (made once; see createForwardPass). */
export interface ImagenetClassifier {
  resnet: ImagenetResNet50;
  forward: ForwardPass;
}

export interface ClassifyOptions {
  topK?: number;
  /** Images per forward pass. */
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Called for each file as soon as it is done, in input order. */
  onResult?: (result: ClassifyRow) => void;
  /** Called once the inputs are listed, with the number of image files. */
  onTotal?: (files: number) => void;
  /** The classifier to use (see imagenetClassifier); default: one shared classifier, loaded on first use and kept. */
  classifier?: ImagenetClassifier;
}

/** `resnet` with its forward pass; dispose `classifier.forward` when done (the model stays the caller's). */
export async function imagenetClassifier(resnet: ImagenetResNet50, runtime: ForwardRuntime = 'auto'): Promise<ImagenetClassifier> {
  return { resnet, forward: await createForwardPass(resnet.classifier, { inputSize: resnet.classifier.inputs[0].shape[1] as number, runtime }) };
}

let shared: Promise<ImagenetClassifier> | undefined;

function sharedClassifier(): Promise<ImagenetClassifier> {
  shared ??= loadImagenetResNet50().then((resnet) => imagenetClassifier(resnet));
  shared.catch(() => (shared = undefined));
  return shared;
}

/**
 * Classifies the images in `paths` (files, or folders searched recursively). A file that cannot
 * be decoded yields a row with `error` instead of failing the whole run.
 */
export async function classifyImagenet(paths: readonly string[], options: ClassifyOptions = {}): Promise<ClassifyRow[]> {
  const { topK: k = 5, batchSize = 8, concurrency = 4, onResult } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  const files = await listImageFiles(paths);
  options.onTotal?.(files.length);
  if (files.length === 0) return [];
  const { resnet, forward } = options.classifier ?? (await sharedClassifier());
  const results: ClassifyRow[] = [];
  await predictImages(forward, files, {
    preprocessing: resnet.info.preprocessing,
    labels: resnet.labels,
    topK: k,
    batchSize,
    concurrency,
    onResult: (result) => {
      results.push(result);
      onResult?.(result);
    },
  });
  return results;
}
