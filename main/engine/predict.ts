// Prediction with an exported Refit model folder (see export.ts): load and check it, then classify
// image files and folders, streaming.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Preprocessing } from '../../models/types';
import type { ClassifyRow } from '../api/contract';
import { listImageFiles } from './image-files';
import { createForwardPass, createOnnxForwardPass, type ForwardPass, type ForwardRuntime } from './onnx-runtime';
import { predictImages, type PredictSummary } from './predict-images';
import { MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, ONNX_FILE, manifestSchema, toPreprocessing, type RefitManifest } from './refit-manifest';
import { readVersionedJson } from './versioned-json';
import { contentDigests } from './onnx-cache';
import { fsErrorMessage } from './errors';

export interface ExportedModel {
  dir: string;
  manifest: RefitManifest;
  /** The TF.js model, when TF.js was loaded (the folder has no model.onnx, or onnxruntime cannot serve it); undefined when model.onnx serves prediction. */
  model?: tf.LayersModel;
  labels: string[];
  inputSize: number;
  preprocessing: Preprocessing;
  /** The model's forward pass, made once at load: `forward.runtime` serves predictFiles, `forward.reason` says why not onnxruntime. */
  forward: ForwardPass;
  /** Frees the forward pass and the model. */
  dispose(): void;
}

export interface LoadModelOptions {
  /** 'auto' (default): forward passes through onnxruntime when available, else TF.js; 'tfjs': always TF.js. */
  runtime?: ForwardRuntime;
  /** Called once before TF.js is used (to start the chosen TF.js backend); default: the best backend. Not called when model.onnx serves prediction. */
  prepareTfjs?: () => Promise<unknown>;
}

export interface PredictOptions {
  topK?: number;
  batchSize?: number;
  /** Images decoded at once. */
  concurrency?: number;
  onResult?: (result: ClassifyRow) => void;
  /** Called once every input is listed, with the number of image files (for done/total and an ETA). */
  onTotal?: (files: number) => void;
  signal?: AbortSignal;
}

export type { PredictSummary };

const notRefit = (dir: string, why: string) => new Error(`${dir} is not a Refit model folder: ${why}`);

function readManifest(dir: string): Promise<RefitManifest> {
  return readVersionedJson(
    path.join(dir, MANIFEST_FILE),
    { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, schema: manifestSchema, what: 'model' },
    { missing: `${dir} is not a Refit model folder: it has no ${MANIFEST_FILE} (make one with \`refit export\`)`, wrap: (m) => notRefit(dir, m) },
  );
}

/** Checks files of the folder against the sizes and SHA-256 recorded in refit.json; returns their contents. */
async function verifyModelFiles(dir: string, manifest: RefitManifest, needed: readonly string[]): Promise<Uint8Array[]> {
  const recorded = new Map(manifest.files.map((f) => [f.path, f]));
  const contents: Uint8Array[] = [];
  for (const name of needed) {
    const file = path.join(dir, name);
    const entry = recorded.get(name);
    if (!entry) throw notRefit(dir, `${name} is not listed in ${MANIFEST_FILE}`);
    const data = await readFile(file).catch((err: unknown) => {
      throw new Error(fsErrorMessage(err, file));
    });
    if (data.byteLength !== entry.bytes) {
      throw new Error(`${file} is corrupt: it has ${data.byteLength} bytes, ${MANIFEST_FILE} says ${entry.bytes}`);
    }
    if (createHash('sha256').update(data).digest('hex') !== entry.sha256) {
      throw new Error(`${file} is corrupt: its SHA-256 does not match the one in ${MANIFEST_FILE}`);
    }
    contents.push(data);
  }
  return contents;
}

/**
 * Checks `name` of the folder against refit.json (size, SHA-256). The SHA-256 of a file whose path,
 * size and modification time are unchanged since it was last hashed is remembered in the user cache
 * (onnx-cache contentDigests), so a model is hashed once, not at every start.
 */
async function verifyFile(dir: string, manifest: RefitManifest, name: string): Promise<void> {
  const entry = manifest.files.find((f) => f.path === name);
  if (!entry) throw notRefit(dir, `${name} is not listed in ${MANIFEST_FILE}`);
  const file = path.join(dir, name);
  const info = await stat(file).catch((err: unknown) => {
    throw new Error(fsErrorMessage(err, file));
  });
  if (info.size !== entry.bytes) throw new Error(`${file} is corrupt: it has ${info.size} bytes, ${MANIFEST_FILE} says ${entry.bytes}`);
  const [digest] = await contentDigests([file]).catch((err: unknown) => {
    throw new Error(fsErrorMessage(err, file));
  });
  if (digest !== entry.sha256) throw new Error(`${file} is corrupt: its SHA-256 does not match the one in ${MANIFEST_FILE}`);
}

/**
 * The folder's model.onnx in onnxruntime, without TF.js, or why not (then TF.js serves the folder).
 * model.onnx is always checked against refit.json's size and SHA-256 first (see verifyFile); the
 * graph onnxruntime optimises from it is cached by that SHA-256 (see createOnnxForwardPass), so later
 * starts load the optimised copy instead of reading and optimising model.onnx again.
 */
async function loadOnnx(dir: string, manifest: RefitManifest, onnx: NonNullable<RefitManifest['onnx']>): Promise<{ forward: ForwardPass } | { reason: string }> {
  const entry = manifest.files.find((f) => f.path === ONNX_FILE);
  if (!entry) throw notRefit(dir, `${ONNX_FILE} is not listed in ${MANIFEST_FILE}`);
  const [, h, w] = onnx.input.layout === 'NHWC' ? onnx.input.shape : [null, onnx.input.shape[2], onnx.input.shape[3]];
  if (onnx.output.shape[1] !== manifest.labels.length) {
    throw new Error(`${dir}: the model has ${onnx.output.shape[1]} outputs but ${MANIFEST_FILE} lists ${manifest.labels.length} labels`);
  }
  if (h !== manifest.inputSize || w !== manifest.inputSize) {
    throw new Error(`${dir}: ${ONNX_FILE} takes ${h}×${w} but ${MANIFEST_FILE} says ${manifest.inputSize}×${manifest.inputSize} RGB`);
  }
  await verifyFile(dir, manifest, ONNX_FILE);
  const file = path.join(dir, ONNX_FILE);
  const pass = await createOnnxForwardPass({
    name: file,
    bytes: async () => {
      const data = await readFile(file);
      if (data.byteLength !== entry.bytes) throw new Error(`${file} is corrupt: it has ${data.byteLength} bytes, ${MANIFEST_FILE} says ${entry.bytes}`);
      return data;
    },
    inputSize: manifest.inputSize,
    layout: onnx.input.layout,
    outputShape: [manifest.labels.length],
    cacheKey: `export-onnx:${entry.sha256}:${entry.bytes}`,
  });
  return pass;
}

function checkShapes(dir: string, model: tf.LayersModel, manifest: RefitManifest): void {
  const out = model.outputs[0].shape;
  const classes = out[out.length - 1];
  if (classes !== manifest.labels.length) {
    throw new Error(`${dir}: the model has ${classes} outputs but ${MANIFEST_FILE} lists ${manifest.labels.length} labels`);
  }
  const [, h, w, c] = model.inputs[0].shape;
  const s = manifest.inputSize;
  if (model.inputs[0].shape.length !== 4 || h !== s || w !== s || c !== 3) {
    throw new Error(`${dir}: the model takes [${model.inputs[0].shape.join(', ')}] but ${MANIFEST_FILE} says ${s}×${s} RGB`);
  }
}

/** Loads an exported model folder; any problem is an Error naming the folder or file and what is wrong. */
export async function loadExportedModel(dir: string, options: LoadModelOptions = {}): Promise<ExportedModel> {
  const folder = path.resolve(dir);
  const info = await stat(folder).catch((err: unknown) => {
    throw new Error(fsErrorMessage(err, folder, { noun: 'model folder', missing: `Model folder ${folder} does not exist` }));
  });
  if (!info.isDirectory()) throw notRefit(folder, 'it is a file, not a folder');
  const manifest = await readManifest(folder);
  if (new Set(manifest.labels).size !== manifest.labels.length) throw notRefit(folder, `${MANIFEST_FILE} has duplicate labels`);

  if (manifest.onnx && (options.runtime ?? 'auto') === 'auto') {
    const onnx = await loadOnnx(folder, manifest, manifest.onnx);
    if ('forward' in onnx) {
      return {
        dir: folder,
        manifest,
        labels: manifest.labels,
        inputSize: manifest.inputSize,
        preprocessing: toPreprocessing(manifest.preprocessing),
        forward: onnx.forward,
        dispose: () => onnx.forward.dispose(),
      };
    }
  }

  await (options.prepareTfjs ?? (() => import('./backend').then((b) => b.initBackend())))();
  const tf = await import('@tensorflow/tfjs');
  const { readTfjsFolder } = await import('../../models/tfjs-folder');
  const { disposeAll } = await import('../../models/heads');
  const tfjs = await readTfjsFolder(folder); // missing/corrupt model.json, missing or truncated shards
  await verifyModelFiles(folder, manifest, ['model.json', ...tfjs.modelJson.weightsManifest.flatMap((g) => g.paths)]);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: tfjs.modelTopology, weightSpecs: tfjs.weightSpecs, weightData: tfjs.weightData }));
  } catch (err) {
    throw new Error(`${tfjs.modelJsonPath} could not be loaded as a TF.js layers model: ${(err as Error).message}`);
  }
  let forward: ForwardPass;
  try {
    checkShapes(folder, model, manifest);
    forward = await createForwardPass(model, { inputSize: manifest.inputSize, runtime: options.runtime ?? 'auto' });
  } catch (err) {
    disposeAll(model);
    throw err;
  }
  return {
    dir: folder,
    manifest,
    model,
    labels: manifest.labels,
    inputSize: manifest.inputSize,
    preprocessing: toPreprocessing(manifest.preprocessing),
    forward,
    dispose: () => {
      forward.dispose();
      disposeAll(model);
    },
  };
}

/**
 * The image files under `inputs`, one input at a time (a huge folder list is never built for all
 * inputs at once), without duplicates. Same rules as listImageFiles.
 */
export async function* expandImagePaths(inputs: readonly string[], onTotal?: (files: number) => void): AsyncGenerator<string> {
  const seen = new Set<string>();
  for (const [i, input] of inputs.entries()) {
    const files = (await listImageFiles([input])).filter((file) => !seen.has(file));
    files.forEach((file) => seen.add(file));
    if (i === inputs.length - 1) onTotal?.(seen.size);
    yield* files;
  }
}

/**
 * Classifies the image files and folders in `paths` with an exported model, streaming: results go
 * to `onResult` in input order as soon as each batch is done. A file that cannot be decoded yields
 * a result with `error`.
 */
export function predictFiles(model: ExportedModel, paths: readonly string[], options: PredictOptions = {}): Promise<PredictSummary> {
  const { onTotal, ...rest } = options;
  return predictImages(model.forward, expandImagePaths(paths, onTotal), { ...rest, preprocessing: model.preprocessing, labels: model.labels });
}

/** predictFiles, collecting the results (for small inputs). */
export async function predictAll(model: ExportedModel, paths: readonly string[], options: Omit<PredictOptions, 'onResult'> = {}): Promise<ClassifyRow[]> {
  const results: ClassifyRow[] = [];
  await predictFiles(model, paths, { ...options, onResult: (r) => results.push(r) });
  return results;
}
