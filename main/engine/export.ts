// Exports a trained classifier as a self-contained folder: model.json + weight shards (plain
// TF.js layers model), refit.json (labels, preprocessing, training, metrics, file hashes) and a
// README.md model card.
//
// The folder is built next to the destination under a hidden temporary name and renamed into
// place only when complete (atomic-fs.ts replaceDirAtomic), so the destination is either the
// previous export or the new one, never a half-written mix. A previous Refit export there is replaced; any other non-empty
// folder is refused (never deleted).
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REFIT_VERSION } from './version';
import * as tf from '@tensorflow/tfjs';
import type { RunMetrics, RunRecord, TrainConfig } from '../api/training';
import { disposeAll } from '../../models/heads';
import { onnxInputInfo, toOnnx, ONNX_MIN_OPSET, ONNX_OUTPUT_NAME, type OnnxLayout } from '../../models/onnx-export';
import { getBackbone } from '../../models/registry';
import { weightSetsOf } from '../../models/weight-sets';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import type { Preprocessing } from '../../models/types';
import { recoverDir, replaceDirAtomic } from './atomic-fs';
import { errnoCode, fsErrorDetail } from './errors';
import { renderModelCard } from './model-card';
import { readRunFile, RUN_FILE } from './project';
import { RefitError } from '../api/errors';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  ONNX_FILE,
  describeOnnxPreprocessing,
  manifestPreprocessing,
  type ManifestFile,
  type ManifestOnnx,
  type TrainingSummary,
  type WrittenManifest,
} from './refit-manifest';

export { REFIT_VERSION };

/** Largest weight shard; TF.js converters use 4 MiB too. */
const SHARD_BYTES = 4 * 1024 * 1024;

export interface ExportMeta {
  labels: string[];
  backbone: string;
  weights: 'imagenet' | 'none';
  /** The published weight set the backbone started from, when known (see weightSetOfRun). */
  weightSet?: ExportWeightSet;
  inputSize: number;
  preprocessing: Preprocessing;
  training: TrainingSummary;
  metrics: RunMetrics | null;
  datasetFingerprint: string;
}

export type ExportPhase = 'load' | 'serialize' | 'write' | 'done';

export interface ExportOptions {
  signal?: AbortSignal;
  /** `fraction` is 0..1 within the phase (bytes written during 'write'). */
  onProgress?: (progress: { phase: ExportPhase; fraction: number }) => void;
  /** Also write model.onnx (the same classifier as an ONNX graph, opset 13) beside the TF.js files; default true (refit predict loads it directly). */
  onnx?: boolean;
  /** Input layout of model.onnx; default 'NHWC' (as the TF.js model). */
  onnxLayout?: OnnxLayout;
}

export interface ExportReport {
  outDir: string;
  /** A previous Refit export was replaced. */
  replaced: boolean;
  labels: string[];
  backbone: string;
  valAccuracy: number | null;
  /** Every file written, refit.json last. */
  files: ManifestFile[];
  totalBytes: number;
  seconds: number;
}

type TargetState = 'absent' | 'empty' | 'previous-export';

async function isRefitExport(dir: string): Promise<boolean> {
  try {
    const json = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as { format?: unknown };
    return json?.format === MANIFEST_FORMAT;
  } catch {
    return false;
  }
}

/** What is at the destination now; throws when it must not be touched. */
async function targetState(outDir: string): Promise<TargetState> {
  let info;
  try {
    info = await stat(outDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'absent';
    throw new Error(`Cannot export to ${outDir}: ${fsErrorDetail(err)}`);
  }
  if (!info.isDirectory()) throw new Error(`Cannot export to ${outDir}: it exists and is not a folder`);
  if ((await readdir(outDir)).length === 0) return 'empty';
  if (await isRefitExport(outDir)) return 'previous-export';
  throw new RefitError(
    'folder-not-empty',
    `Refusing to export to ${outDir}: the folder is not empty and is not a previous Refit export (it has no ${MANIFEST_FILE}). ` +
      'Choose a new or empty folder; Refit never deletes a folder it did not create.',
  );
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The model as TF.js would save it, captured in memory; without training config (inference only). */
async function serialize(classifier: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await classifier.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured || captured.modelTopology instanceof ArrayBuffer) throw new Error('TF.js did not produce a layers-model topology');
  return captured;
}

/** model.json and its shards, as TF.js's own browser/node savers lay them out. */
function modelFiles(artifacts: tf.io.ModelArtifacts): Map<string, Uint8Array> {
  const data = new Uint8Array(tf.io.concatenateArrayBuffers(artifacts.weightData ?? new ArrayBuffer(0)));
  const count = Math.max(1, Math.ceil(data.byteLength / SHARD_BYTES));
  const files = new Map<string, Uint8Array>();
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `group1-shard${i + 1}of${count}.bin`;
    files.set(name, data.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
    paths.push(name);
  }
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as {},
    format: 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: `Refit ${REFIT_VERSION}`,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
  };
  return new Map([['model.json', new TextEncoder().encode(JSON.stringify(modelJson))], ...files]);
}

function checkClassifier(classifier: tf.LayersModel, meta: ExportMeta): void {
  const [, h, w, c] = classifier.inputs[0].shape;
  if (h !== meta.inputSize || w !== meta.inputSize || c !== 3) {
    throw new Error(`the model takes [${classifier.inputs[0].shape.join(', ')}], not ${meta.inputSize}×${meta.inputSize} RGB images`);
  }
  const out = classifier.outputs[0].shape;
  if (out[out.length - 1] !== meta.labels.length) {
    throw new Error(`the model has ${out[out.length - 1]} outputs but there are ${meta.labels.length} labels`);
  }
  if (new Set(meta.labels).size !== meta.labels.length) throw new Error(`labels must be unique: ${meta.labels.join(', ')}`);
}

function onnxManifest(meta: ExportMeta, layout: OnnxLayout): ManifestOnnx {
  const input = onnxInputInfo(meta.inputSize, layout);
  return {
    file: ONNX_FILE,
    opset: ONNX_MIN_OPSET,
    input,
    output: { name: ONNX_OUTPUT_NAME, dtype: 'float32', shape: [null, meta.labels.length], activation: 'softmax' },
    preprocessingIncluded: false,
    note: describeOnnxPreprocessing(meta.preprocessing, meta.inputSize, layout),
  };
}

function manifestFor(meta: ExportMeta, files: ManifestFile[], onnx?: ManifestOnnx): WrittenManifest {
  const metrics = meta.metrics && {
    valAccuracy: meta.metrics.valAccuracy,
    valLoss: meta.metrics.valLoss,
    bestEpoch: meta.metrics.bestEpoch,
    labels: meta.metrics.labels,
    confusion: meta.metrics.confusion,
    perClass: meta.metrics.perClass,
  };
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    refitVersion: REFIT_VERSION,
    created: new Date().toISOString(),
    labels: meta.labels,
    backbone: { id: meta.backbone, name: getBackbone(meta.backbone).name },
    weights: meta.weights,
    ...(meta.weightSet ? { weightSet: meta.weightSet } : {}),
    inputSize: meta.inputSize,
    input: { layout: 'NHWC', dtype: 'float32', shape: [null, meta.inputSize, meta.inputSize, 3] },
    preprocessing: manifestPreprocessing(meta.preprocessing, meta.inputSize),
    output: { activation: 'softmax', classes: meta.labels.length },
    ...(onnx ? { onnx } : {}),
    training: { ...meta.training, misclassifiedCount: meta.metrics?.misclassified?.length ?? meta.training.misclassifiedCount },
    metrics,
    datasetFingerprint: meta.datasetFingerprint,
    files,
  };
}

/**
 * Writes `classifier` (a flat TF.js layers model: preprocessed [n, size, size, 3] images →
 * softmax over `meta.labels`) with its refit.json and model card to `outDir`, atomically.
 */
export async function exportClassifier(classifier: tf.LayersModel, meta: ExportMeta, outDir: string, options: ExportOptions = {}): Promise<ExportReport> {
  const started = performance.now();
  const { signal, onProgress } = options;
  const target = path.resolve(outDir);
  try {
    checkClassifier(classifier, meta);
  } catch (err) {
    throw new Error(`Cannot export to ${target}: ${(err as Error).message}`);
  }
  await recoverDir(target); // an export interrupted by a crash mid-swap is put back first
  const state = await targetState(target);

  onProgress?.({ phase: 'serialize', fraction: 0 });
  const contents = modelFiles(await serialize(classifier));
  signal?.throwIfAborted();
  let onnx: ManifestOnnx | undefined;
  if (options.onnx ?? true) {
    onnx = onnxManifest(meta, options.onnxLayout ?? 'NHWC');
    try {
      contents.set(ONNX_FILE, toOnnx(classifier, { inputSize: meta.inputSize, layout: onnx.input.layout, opset: onnx.opset, producerVersion: REFIT_VERSION, docString: onnx.note }));
    } catch (err) {
      throw new Error(`Cannot export to ${target}: ${(err as Error).message}`, { cause: err });
    }
    signal?.throwIfAborted();
  }
  const files: ManifestFile[] = [];
  for (const [name, data] of contents) files.push({ path: name, bytes: data.byteLength, sha256: sha256(data) });
  const manifestDraft = manifestFor(meta, files, onnx);
  const readme = new TextEncoder().encode(renderModelCard(manifestDraft));
  files.push({ path: 'README.md', bytes: readme.byteLength, sha256: sha256(readme) });
  contents.set('README.md', readme);
  const manifestBytes = new TextEncoder().encode(JSON.stringify({ ...manifestDraft, files }, null, 2) + '\n');
  contents.set(MANIFEST_FILE, manifestBytes); // last: a folder with refit.json is complete
  onProgress?.({ phase: 'serialize', fraction: 1 });

  const totalBytes = [...contents.values()].reduce((sum, d) => sum + d.byteLength, 0);
  let current = target;
  try {
    await replaceDirAtomic(target, async (temp) => {
      let written = 0;
      onProgress?.({ phase: 'write', fraction: 0 });
      for (const [name, data] of contents) {
        signal?.throwIfAborted();
        current = path.join(target, name);
        await writeFile(path.join(temp, name), data, { flag: 'wx' });
        written += data.byteLength;
        onProgress?.({ phase: 'write', fraction: totalBytes ? written / totalBytes : 1 });
      }
      current = target;
    });
  } catch (err) {
    if (signal?.aborted && err === signal.reason) throw err;
    const untouched = {
      'previous-export': `the previous export in ${target} is unchanged`,
      empty: `the empty folder ${target} is unchanged`,
      absent: `nothing was left at ${target}`,
    }[state];
    throw new Error(`Export to ${target} failed while writing ${current}: ${fsErrorDetail(err)}; ${untouched}.`, { cause: err });
  }
  onProgress?.({ phase: 'done', fraction: 1 });
  return {
    outDir: target,
    replaced: state === 'previous-export',
    labels: meta.labels,
    backbone: meta.backbone,
    valAccuracy: meta.metrics?.valAccuracy ?? null,
    files: [...files, { path: MANIFEST_FILE, bytes: manifestBytes.byteLength, sha256: sha256(manifestBytes) }],
    totalBytes,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Reads and checks `<runFolder>/run.json`. */
export async function readRunRecord(runFolder: string): Promise<RunRecord> {
  return readRunFile(path.join(runFolder, RUN_FILE), `${runFolder} is not a Refit training run: it has no ${RUN_FILE}`);
}

/** What refit.json and the model card say about the weights a backbone started from. */
export type ExportWeightSet = {
  id: string;
  publisher: string;
  variant: string;
  licence: string;
  fileName: string;
  url?: string;
  /** ImageNet-1k top-1 (%) as the publisher reports it. */
  top1: number;
  /** The first 12 hex digits of the SHA-256 of the file the set was imported from. */
  sha256Prefix?: string;
};

/**
 * The published set a run's backbone started from: the bundled one when its feature key is
 * 'imagenet', an imported set when the key names it (`<set>-<sha256 prefix>`), else the set its config
 * names; undefined for a random start or when it cannot be known (a continued run of the default set).
 */
export function weightSetOfRun(run: RunRecord): ExportWeightSet | undefined {
  const config = run.config;
  if (config.weights !== 'imagenet') return undefined;
  const sets = weightSetsOf(config.backbone);
  const key = run.featureKey;
  const entry =
    key === 'imagenet'
      ? sets.find((s) => s.delivery === 'bundled')
      : (sets.find((s) => key.startsWith(`${s.id}-`)) ?? (config.weightSet && config.weightSet !== 'imagenet' ? sets.find((s) => s.id === config.weightSet) : undefined));
  if (!entry) return undefined;
  const sha = key.startsWith(`${entry.id}-`) ? key.slice(entry.id.length + 1) : undefined;
  return {
    id: entry.id,
    publisher: entry.publisher,
    variant: entry.variant,
    licence: entry.licence,
    fileName: entry.fileName,
    ...(entry.url ? { url: entry.url } : {}),
    top1: entry.top1,
    ...(sha && /^[0-9a-f]{12}$/.test(sha) ? { sha256Prefix: sha } : {}),
  };
}

export function exportMetaFromRun(run: RunRecord): ExportMeta {
  const config = run.config as TrainConfig & { inputSize: number; learningRate: number };
  const weightSet = weightSetOfRun(run);
  return {
    labels: run.labels,
    backbone: config.backbone,
    weights: config.weights,
    ...(weightSet ? { weightSet } : {}),
    inputSize: config.inputSize,
    preprocessing: run.preprocessing,
    training: {
      runId: run.id,
      status: run.status,
      config,
      trainImages: run.trainImages,
      valImages: run.valImages,
      epochsRun: run.lastEpoch,
      bestEpoch: run.bestEpoch ?? run.metrics?.bestEpoch ?? null,
      history: run.history,
      ...(run.parent ? { parent: run.parent } : {}),
    },
    metrics: run.metrics,
    datasetFingerprint: run.datasetFingerprint,
  };
}

/** Exports the best checkpoint of a training run folder (run.json + best/) to `outDir`. */
export async function exportRun(runFolder: string, outDir: string, options: ExportOptions = {}): Promise<ExportReport> {
  const started = performance.now();
  options.onProgress?.({ phase: 'load', fraction: 0 });
  const run = await readRunRecord(runFolder);
  const best = path.join(runFolder, 'best');
  try {
    await stat(path.join(best, 'model.json'));
  } catch {
    throw new Error(`Run ${run.id} in ${runFolder} has no best checkpoint (${path.join(best, 'model.json')} is missing; status: ${run.status})`);
  }
  let classifier: tf.LayersModel;
  try {
    // Inference only: a training config (optimizer, loss) in the checkpoint must not make loading fail.
    const handler = tfjsFolderHandler(best);
    classifier = await tf.loadLayersModel({ load: async () => ({ ...(await handler.load!()), trainingConfig: undefined }) });
  } catch (err) {
    throw new Error(`Cannot load the best checkpoint of run ${run.id} from ${best}: ${(err as Error).message}`);
  }
  options.onProgress?.({ phase: 'load', fraction: 1 });
  try {
    const report = await exportClassifier(classifier, exportMetaFromRun(run), outDir, options);
    return { ...report, seconds: (performance.now() - started) / 1000 };
  } finally {
    disposeAll(classifier);
  }
}
