// Top ImageNet labels for image files, with our ResNet-50 carrying the bundled ImageNet weights.
import { loadImagenetResNet50, type ImagenetResNet50 } from '../../models/imagenet';
import { listImageFiles } from './image-files';
import { createOnnxForward, type ForwardRuntime, type OnnxForward } from './onnx-runtime';
import { predictImages, type ImagePrediction } from './predict-images';

// `index` is the ImageNet class index (0..999); some labels occur twice (e.g. "crane"), the index does not.
export type { LabelScore } from './predict-images';
export type ClassifyResult = ImagePrediction;

export interface ClassifyOptions {
  topK?: number;
  /** Images per forward pass. */
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  /** Called for each file as soon as it is done, in input order. */
  onResult?: (result: ClassifyResult) => void;
  /** Called once the inputs are listed, with the number of image files. */
  onTotal?: (files: number) => void;
  /** A loaded model to reuse; loaded (and kept for later calls) when absent. */
  model?: ImagenetResNet50;
  /** 'auto' (default): onnxruntime when available, else TF.js; 'tfjs': always TF.js. */
  runtime?: ForwardRuntime;
}

let shared: Promise<ImagenetResNet50> | undefined;

function sharedModel(): Promise<ImagenetResNet50> {
  shared ??= loadImagenetResNet50();
  shared.catch(() => (shared = undefined));
  return shared;
}

// One onnxruntime session per classifier, made on first use and kept as long as the classifier
// (null: onnxruntime unavailable, TF.js serves it).
const forwards = new WeakMap<object, Promise<OnnxForward | null>>();

function forwardFor(classifier: ImagenetResNet50['classifier']): Promise<OnnxForward | null> {
  let forward = forwards.get(classifier);
  if (!forward) {
    forward = createOnnxForward(classifier, { inputSize: classifier.inputs[0].shape[1] as number }).catch(() => null);
    forwards.set(classifier, forward);
  }
  return forward;
}

/**
 * Classifies the images in `paths` (files, or folders searched recursively). A file that cannot
 * be decoded yields a result with `error` instead of failing the whole run.
 */
export async function classifyImagenet(paths: readonly string[], options: ClassifyOptions = {}): Promise<ClassifyResult[]> {
  const { topK: k = 5, batchSize = 8, concurrency = 4, onResult, runtime = 'auto' } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  const files = await listImageFiles(paths);
  options.onTotal?.(files.length);
  if (files.length === 0) return [];
  const { classifier, labels, info } = options.model ?? (await sharedModel());
  const onnx = runtime === 'tfjs' ? null : await forwardFor(classifier);
  const results: ClassifyResult[] = [];
  await predictImages(classifier, files, {
    inputSize: classifier.inputs[0].shape[1] as number,
    preprocessing: info.preprocessing,
    labels,
    topK: k,
    batchSize,
    concurrency,
    ...(onnx ? { forward: (x: Float32Array, n: number) => onnx.run(x, n) } : {}),
    onResult: (result) => {
      results.push(result);
      onResult?.(result);
    },
  });
  return results;
}
