// Prediction with an exported Refit model folder (see export.ts): load and check it, then classify
// image files and folders, streaming.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { disposeAll } from '../../models/heads';
import { readTfjsFolder } from '../../models/tfjs-folder';
import type { Preprocessing } from '../../models/types';
import type { ClassifyRow } from '../api/contract';
import { listImageFiles } from './image-files';
import { createForwardPass, type ForwardPass, type ForwardRuntime } from './onnx-runtime';
import { predictImages, type PredictSummary } from './predict-images';
import { MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, manifestSchema, toPreprocessing, type RefitManifest } from './refit-manifest';
import { readVersionedJson } from './versioned-json';
import { fsErrorMessage } from './errors';

export interface ExportedModel {
  dir: string;
  manifest: RefitManifest;
  model: tf.LayersModel;
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

/** Checks model.json and every shard against the sizes and SHA-256 recorded in refit.json. */
async function verifyModelFiles(dir: string, manifest: RefitManifest, modelJson: tf.io.ModelJSON): Promise<void> {
  const recorded = new Map(manifest.files.map((f) => [f.path, f]));
  const needed = ['model.json', ...modelJson.weightsManifest.flatMap((g) => g.paths)];
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
  }
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

  const tfjs = await readTfjsFolder(folder); // missing/corrupt model.json, missing or truncated shards
  await verifyModelFiles(folder, manifest, tfjs.modelJson);
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
