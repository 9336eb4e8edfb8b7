// Training: head on cached features, fine-tuning of the last stage(s), or the whole network.
// Runs inside the training process (train-worker.ts); everything it keeps is under runs/<id>/:
//   run.json   the RunRecord (config, history, metrics, status), rewritten atomically after each epoch
//   best/      the best classifier so far (lowest validation loss), a plain TF.js layers model
//   last/      the latest full classifier (resume point for fine-tune / full training)
//   head-last/ the latest head alone (resume point while only the head trains)
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { DatasetImage } from '../api/dataset';
import type { TrainJob } from './train-protocol';
import type { EpochRecord, RunRecord, TrainEvent, TrainPhase } from '../api/training';
import { HEAD_VIEWS_WITH_AUGMENTATION, phaseLearningRate, phasePlan, resolveConfig, type TrainConfig } from '../api/train-config';
import { getBackbone } from '../../models/registry';
import { attachHead, buildHead, growHead, splitClassifier, disposeAll } from '../../models/heads';
import { freezeBackbone, lastStages, unfreezeAll } from '../../models/freeze';
import { preprocess } from '../../models/preprocess';
import type { BackboneInfo } from '../../models/types';
import { augmentBatch } from './augment';
import { checkpointExists, loadModel, saveModelAtomic } from './checkpoint';
import { FeatureCache } from './feature-cache';
import { decodeBatch, prefetchBatches } from './image-batches';
import { computeMetrics, argmax, type Prediction } from './metrics';
import { deriveSeed, seededRandom, shuffle } from './random';
import { splitDataset } from './split';
import { readRun, writeRun, runDir } from './project';
import { createForwardPass, describeRuntime, type ForwardPass } from './onnx-runtime';
import { splitAtStages } from '../../models/trunk';

/** Classes further apart than this ratio get loss weights. */
const IMBALANCE_RATIO_FOR_WEIGHTS = 1.5;

export interface TrainHooks {
  emit: (event: TrainEvent) => void;
  signal?: AbortSignal;
}

class Cancelled extends Error {
  constructor() {
    super('training cancelled');
  }
}

function nowIso(): string {
  return new Date().toISOString();
}

/** Hash over the (class, image hash) pairs: identifies the data a model was trained on. */
export function datasetFingerprint(images: readonly DatasetImage[]): string {
  const pairs = images.map((i) => `${i.className}\0${i.hash}`).sort();
  return createHash('sha256').update(pairs.join('\n')).digest('hex').slice(0, 16);
}

/**
 * A separate validation folder: its classes must be training classes, and an image that is also in
 * the training set (same content) is left out of validation, so the accuracy is not inflated.
 */
function validationSplit(
  train: DatasetImage[],
  validation: DatasetImage[],
  labelIndex: Map<string, number>,
  emit: TrainHooks['emit'],
): { train: DatasetImage[]; val: DatasetImage[] } {
  const unknown = [...new Set(validation.filter((v) => !labelIndex.has(v.className)).map((v) => v.className))];
  if (unknown.length) emit({ type: 'warning', message: `validation folder: class${unknown.length > 1 ? 'es' : ''} ${unknown.join(', ')} not in the training set; ignored` });
  const trainHashes = new Set(train.map((t) => t.hash));
  const leaked = validation.filter((v) => trainHashes.has(v.hash));
  for (const v of leaked) emit({ type: 'problem', file: v.file, reason: 'the same image is in the training set; left out of validation' });
  return { train, val: validation.filter((v) => labelIndex.has(v.className) && !trainHashes.has(v.hash)) };
}

/** Inverse-frequency loss weights when the classes are imbalanced, else all ones. */
export function classWeightsFor(counts: readonly number[], enabled: boolean): number[] {
  const present = counts.filter((c) => c > 0);
  const ratio = Math.max(...present) / Math.min(...present);
  if (!enabled || ratio <= IMBALANCE_RATIO_FOR_WEIGHTS) return counts.map(() => 1);
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (c > 0 ? total / (counts.length * c) : 1));
}

// ---------------------------------------------------------------------------------------------

interface Model {
  info: BackboneInfo;
  backbone: tf.LayersModel;
  head: tf.LayersModel;
  classifier: tf.LayersModel;
}

async function buildModel(job: TrainJob, config: RunRecord['config'], labels: string[], parent: RunRecord | undefined): Promise<Model> {
  const info = getBackbone(config.backbone);
  const dir = runDir(job.projectDir, job.runId);
  if (job.resume && (await checkpointExists(path.join(dir, 'last')))) {
    const classifier = await loadModel(path.join(dir, 'last'));
    const { backbone, head } = splitClassifier(classifier);
    // While only the head trains, last/ holds the starting network and head-last/ the head's progress.
    const headOnly = !(await readRun(job.projectDir, job.runId)).history.some((h) => h.phase === 'finetune');
    if (headOnly && (await checkpointExists(path.join(dir, 'head-last')))) {
      const saved = await loadModel(path.join(dir, 'head-last'));
      head.setWeights(saved.getWeights());
      disposeAll(saved);
    }
    return { info, backbone, head, classifier };
  }
  let backbone: tf.LayersModel;
  let head: tf.LayersModel;
  if (parent) {
    const loaded = await loadModel(path.join(runDir(job.projectDir, parent.id), 'best'));
    const split = splitClassifier(loaded);
    backbone = split.backbone;
    head = growHead(split.head, parent.labels, labels, config.head, config.seed);
  } else {
    if (config.weights === 'imagenet') {
      backbone = await info.loadWeights('imagenet', { inputSize: config.inputSize });
    } else {
      backbone = info.build({ inputSize: config.inputSize, seed: config.seed });
    }
    head = buildHead(info.featureDim, labels.length, config.head, config.seed);
  }
  return { info, backbone, head, classifier: attachHead(backbone, head) };
}

/**
 * Names the weights a run's backbone starts from, for the feature cache: runs starting from unchanged
 * ImageNet weights share features; a random start or a fine-tuned parent gets features of its own.
 */
function startFeatureKey(runId: string, config: RunRecord['config'], parent: RunRecord | undefined): string {
  if (parent) return parent.config.mode === 'head' ? parent.featureKey : `run-${parent.id}`;
  return config.weights === 'imagenet' ? 'imagenet' : `run-${runId}`;
}

function oneHot(indices: number[], depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(indices, 'int32'), depth).toFloat() as tf.Tensor2D);
}

/** Class-weighted categorical cross-entropy. */
function weightedLoss(probabilities: tf.Tensor2D, labels: tf.Tensor2D, weights: tf.Tensor1D): tf.Scalar {
  const perExample = tf.neg(tf.sum(tf.mul(labels, tf.log(tf.clipByValue(probabilities, 1e-7, 1))), 1));
  const w = tf.sum(tf.mul(labels, weights), 1);
  return tf.mean(tf.mul(perExample, w)) as tf.Scalar;
}

/**
 * The wasm heap is a 32-bit WebAssembly memory: 4 GiB, of which a training step may use about this.
 * Measured on ResNet-50/101, SE-ResNet-152, Xception and VGG-16 at their default sizes: a step needs
 * ~24 bytes per element of all layer outputs per image, 4 bytes per weight, and ~28 more bytes per
 * trainable weight (gradient, Adam's two moments, their updates, transposed copies in matmul gradients).
 */
const WASM_TRAIN_BUDGET_BYTES = 4.0e9;
const WASM_BYTES_PER_ACTIVATION = 24;
const WASM_BYTES_PER_TRAINABLE_WEIGHT = 28;

/**
 * Images per forward/backward pass. On wasm a batch whose activations would not fit the heap goes
 * through in slices (trainStep sums their gradients); a network that does not fit even one image at
 * a time is refused with a clear error instead of crashing the training process. `model` is the part
 * that trains with gradients (its layer outputs stay alive for the backward pass); `residentParams`
 * counts every weight in the heap, frozen trunk included.
 */
export function microBatchSize(model: tf.LayersModel, batchSize: number, backend = tf.getBackend(), residentParams = model.countParams(), name = model.name): number {
  if (backend !== 'wasm') return batchSize;
  let activations = 0;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const shape of shapes) activations += shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  }
  const trainable = model.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
  const fixed = residentParams * 4 + trainable * WASM_BYTES_PER_TRAINABLE_WEIGHT;
  const perImage = activations * WASM_BYTES_PER_ACTIVATION;
  const fits = Math.floor((WASM_TRAIN_BUDGET_BYTES - fixed) / perImage);
  if (fits < 1) {
    const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
    throw new Error(
      `training ${(trainable / 1e6).toFixed(0)}M weights of ${name.replace(/_classifier$/, '')} needs about ${gib(fixed + perImage)} GiB, ` +
        `more than the ${gib(WASM_TRAIN_BUDGET_BYTES)} GiB a training step can use in the WebAssembly backend's 4 GiB heap: ` +
        'use head mode, a smaller input size, fine-tune mode on a smaller backbone, or a machine with a GPU backend',
    );
  }
  return Math.min(batchSize, fits);
}

/**
 * One optimizer step on a batch; returns the batch's mean loss and its number of correct predictions.
 * With `microBatch` smaller than the batch, the batch goes through in slices whose gradients are
 * summed (each slice's loss weighted by its share) before one update: the same step in less memory.
 */
export async function trainStep(
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  forward: (x: tf.Tensor) => tf.Tensor2D,
  x: tf.Tensor,
  labels: tf.Tensor2D,
  weights: tf.Tensor1D,
  microBatch = Infinity,
): Promise<{ loss: number; hits: number }> {
  const n = x.shape[0];
  let lossSum = 0;
  let hitSum = 0;
  let summed: Record<string, tf.Tensor> | null = null;
  for (let start = 0; start < n; start += microBatch) {
    const size = Math.min(microBatch, n - start);
    const { grads, loss, hits } = tf.tidy(() => {
      const xs = size === n ? x : x.slice(start, size);
      const ys = size === n ? labels : labels.slice(start, size);
      let h: tf.Scalar | undefined;
      const result = tf.variableGrads(() => {
        const probs = forward(xs);
        // Counted inside: the gradient scope frees its intermediate tensors.
        h = tf.keep(tf.sum(tf.equal(tf.argMax(probs, 1), tf.argMax(ys, 1)).toFloat()) as tf.Scalar);
        return tf.mul(weightedLoss(probs, ys, weights), size / n) as tf.Scalar;
      }, variables);
      return { grads: result.grads, loss: result.value, hits: h! };
    });
    if (summed) {
      const previous: Record<string, tf.Tensor> = summed;
      summed = Object.fromEntries(Object.entries(grads).map(([name, g]) => [name, tf.add(previous[name], g)]));
      tf.dispose([...Object.values(previous), ...Object.values(grads)]);
    } else {
      summed = grads;
    }
    const [l, h] = await Promise.all([loss.data(), hits.data()]);
    tf.dispose([loss, hits]);
    lossSum += l[0];
    hitSum += h[0];
  }
  optimizer.applyGradients(summed as tf.NamedTensorMap);
  tf.dispose(Object.values(summed!));
  return { loss: lossSum, hits: hitSum };
}

class Progress {
  private start = performance.now();
  constructor(
    private readonly hooks: TrainHooks,
    private readonly phase: TrainPhase,
    private readonly total: number,
  ) {}

  report(done: number, extra: Partial<Extract<TrainEvent, { type: 'progress' }>> = {}): void {
    const seconds = (performance.now() - this.start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    this.hooks.emit({
      type: 'progress',
      phase: this.phase,
      fraction: this.total ? Math.min(1, done / this.total) : 1,
      ...(rate > 0 ? { etaSeconds: (this.total - done) / rate } : {}),
      ...extra,
    });
  }
}

function checkCancel(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Cancelled();
}

// ---------------------------------------------------------------------------------------------

/** Epochs since the best validation loss within one phase's history. */
function epochsSinceBest(history: readonly EpochRecord[]): number {
  if (history.length === 0) return 0;
  const best = Math.min(...history.map((h) => h.valLoss));
  return history.length - 1 - history.findIndex((h) => h.valLoss === best);
}

export async function runTraining(job: TrainJob, hooks: TrainHooks): Promise<RunRecord> {
  const { emit, signal } = hooks;
  const dir = runDir(job.projectDir, job.runId);
  const previous = job.resume ? await readRun(job.projectDir, job.runId) : undefined;
  if (previous && previous.status !== 'cancelled' && previous.status !== 'failed' && previous.status !== 'running') {
    throw new Error(`run ${job.runId} is ${previous.status}; only a cancelled or crashed run can be resumed (continue a finished one instead)`);
  }
  // A resumed run keeps the settings it started with.
  const config = previous ? previous.config : resolveConfig(job.config, getBackbone(job.config.backbone));
  const info = getBackbone(config.backbone);
  const parentId = job.parentRunId ?? previous?.parent;
  const parent = parentId ? await readRun(job.projectDir, parentId) : undefined;
  if (parent && !previous) {
    if (parent.config.backbone !== config.backbone || parent.config.inputSize !== config.inputSize) {
      throw new Error(
        `continue: run ${parent.id} trained ${parent.config.backbone} at ${parent.config.inputSize}px; ` +
          `the backbone and input size must stay the same (got ${config.backbone} at ${config.inputSize}px)`,
      );
    }
    if (parent.bestEpoch === null) throw new Error(`continue: run ${parent.id} has no saved checkpoint to continue from`);
  }

  // Class order: the parent's classes first (their head rows are kept), then new ones by name.
  const names = [...new Set(job.images.map((i) => i.className))].sort();
  const labels = previous?.labels ?? [...(parent?.labels.filter((l) => names.includes(l)) ?? []), ...names.filter((n) => !parent?.labels.includes(n))];
  if (labels.length < 2) throw new Error(`training needs at least 2 classes with images; found ${labels.length} (${labels.join(', ') || 'none'})`);
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  const outside = names.filter((n) => !labelIndex.has(n));
  if (outside.length > 0) {
    emit({ type: 'warning', message: `class${outside.length > 1 ? 'es' : ''} ${outside.join(', ')} ${outside.length > 1 ? 'are' : 'is'} not part of run ${job.runId}; continue the finished run to add ${outside.length > 1 ? 'them' : 'it'}` });
  }
  const images = job.images.filter((i) => labelIndex.has(i.className));
  const split = job.validation ? validationSplit(images, job.validation, labelIndex, emit) : splitDataset(images, config.valSplit, config.seed);
  if (split.val.length === 0) throw new Error('validation set is empty: add images (each class needs at least 2) or a validation folder');
  const counts = labels.map((l) => split.train.filter((i) => i.className === l).length);
  const emptyClass = labels.find((_, c) => counts[c] === 0);
  if (emptyClass) throw new Error(`class "${emptyClass}" has no training images`);

  const record: RunRecord = previous ?? {
    format: 'refit-run',
    version: 1,
    id: job.runId,
    created: nowIso(),
    updated: nowIso(),
    status: 'running',
    config,
    labels,
    preprocessing: info.preprocessing,
    datasetFingerprint: datasetFingerprint(images),
    trainImages: split.train.length,
    valImages: split.val.length,
    history: [],
    bestEpoch: null,
    lastEpoch: 0,
    metrics: null,
    featureKey: startFeatureKey(job.runId, config, parent),
    ...(parent ? { parent: parent.id } : {}),
  };
  record.status = 'running';
  delete record.error;
  const save = async () => {
    record.updated = nowIso();
    await writeRun(job.projectDir, record);
  };
  await save();

  emit({ type: 'progress', phase: 'load', fraction: 0, message: `building ${info.name}` });
  const model = await buildModel(job, config, labels, parent);
  const featureKey = record.featureKey;
  if (!previous && !(await checkpointExists(path.join(dir, 'last')))) {
    // The starting point, so that a crash before the first epoch still resumes with the same backbone.
    await saveModelAtomic(model.classifier, path.join(dir, 'last'));
  }
  const weights = tf.tensor1d(classWeightsFor(counts, config.classWeights));
  if (config.classWeights && weights.dataSync().some((w) => w !== 1)) {
    emit({ type: 'warning', message: `classes are imbalanced (${labels.map((l, c) => `${l} ${counts[c]}`).join(', ')}): the loss is weighted by inverse class frequency` });
  }

  let bestPredictions: Prediction[] | null = null;
  let bestValLoss = record.history.length ? Math.min(...record.history.map((h) => h.valLoss)) : Infinity;
  let status: RunRecord['status'] = 'completed';

  const onEpoch = async (rec: EpochRecord, predictions: Prediction[], saveBest: () => Promise<void>, saveLast: () => Promise<void>): Promise<boolean> => {
    record.history.push(rec);
    record.lastEpoch = rec.epoch;
    const improved = rec.valLoss < bestValLoss - 1e-6;
    if (improved) {
      bestValLoss = rec.valLoss;
      bestPredictions = predictions;
      record.bestEpoch = rec.epoch;
      emit({ type: 'progress', phase: 'save', fraction: 0, message: `saving best checkpoint (epoch ${rec.epoch})` });
      await saveBest();
      record.metrics = computeMetrics(predictions, labels, rec.epoch);
    }
    await saveLast();
    await save();
    // Announced once it is on disk: an epoch the caller has seen survives a crash.
    emit({ type: 'epoch', record: rec });
    // Early stopping: no improvement for `patience` epochs within this phase.
    return epochsSinceBest(record.history.filter((h) => h.phase === rec.phase)) >= config.patience;
  };

  try {
    const phases = phasePlan(config);
    let epochBase = 0;
    for (const { phase, epochs } of phases) {
      const history = record.history.filter((h) => h.phase === phase);
      const stoppedEarly = epochsSinceBest(history) >= config.patience;
      status = stoppedEarly ? 'early-stopped' : 'completed';
      if (history.length < epochs && !stoppedEarly) {
        const args = { job, config, model, labels, labelIndex, split, weights, epochBase, firstEpoch: history.length + 1, epochs, hooks, onEpoch, dir };
        const stop = phase === 'train' ? await trainHeadPhase({ ...args, featureKey }) : await trainNetworkPhase({ ...args, info });
        status = stop ? 'early-stopped' : 'completed';
      }
      epochBase += epochs;
      // Fine-tuning starts from the best head, not the last one (unless resuming inside fine-tuning).
      const finetuneStarted = record.history.some((h) => h.phase === 'finetune');
      if (phase === 'train' && config.mode === 'finetune' && record.bestEpoch !== null && !finetuneStarted) {
        const best = await loadModel(path.join(dir, 'best'));
        model.classifier.setWeights(best.getWeights());
        disposeAll(best);
        await saveModelAtomic(model.classifier, path.join(dir, 'last'));
      }
    }
  } catch (err) {
    if (!(err instanceof Cancelled)) {
      record.status = 'failed';
      record.error = err instanceof Error ? err.message : String(err);
      await save();
      throw err;
    }
    status = 'cancelled';
  } finally {
    weights.dispose();
  }

  if (bestPredictions) record.metrics = computeMetrics(bestPredictions, labels, record.bestEpoch ?? 0);
  record.status = status;
  await save();
  disposeAll(model.classifier);
  return record;
}

// ---------------------------------------------------------------------------------------------

interface PhaseArgs {
  job: TrainJob;
  config: RunRecord['config'];
  model: Model;
  labels: string[];
  labelIndex: Map<string, number>;
  split: { train: DatasetImage[]; val: DatasetImage[] };
  weights: tf.Tensor1D;
  epochBase: number;
  firstEpoch: number;
  epochs: number;
  hooks: TrainHooks;
  dir: string;
  onEpoch: (rec: EpochRecord, predictions: Prediction[], saveBest: () => Promise<void>, saveLast: () => Promise<void>) => Promise<boolean>;
}

/** Features for every (image, view), from the cache or computed with the frozen backbone. */
async function extractFeatures(
  args: PhaseArgs & { featureKey: string },
  items: { image: DatasetImage; view: number }[],
): Promise<Map<string, Float32Array>> {
  const { config, model, hooks, job } = args;
  const cache = new FeatureCache(path.join(job.projectDir, 'cache'), { backbone: config.backbone, weights: args.featureKey, inputSize: config.inputSize, augmentSeed: config.seed }, model.info.featureDim);
  const key = (image: DatasetImage, view: number) => `${image.hash}:${view}`;
  const features = new Map<string, Float32Array>();
  const missing: { image: DatasetImage; view: number }[] = [];
  for (const item of items) {
    const cached = await cache.get(item.image.hash, item.view);
    if (cached) features.set(key(item.image, item.view), cached);
    else missing.push(item);
  }
  if (missing.length === 0) {
    hooks.emit({ type: 'progress', phase: 'extract', fraction: 1, message: `all ${items.length} features cached` });
    return features;
  }
  const progress = new Progress(hooks, 'extract', missing.length);
  const started = performance.now();
  let done = 0;
  const batchSize = Math.max(1, Math.min(config.batchSize, 16));
  // Forward passes only: through onnxruntime when it is available (several times faster), else TF.js.
  const forward = await createForwardPass(model.backbone, { inputSize: config.inputSize });
  hooks.emit({ type: 'progress', phase: 'extract', fraction: 0, message: `computing ${missing.length} feature vectors in ${describeRuntime(forward)}` });
  try {
    for await (const batch of prefetchBatches(missing, batchSize, (b) => decodeBatch(b, (i) => i.image.file, config.inputSize))) {
      checkCancel(hooks.signal);
      for (const f of batch.failures) hooks.emit({ type: 'problem', file: f.item.image.file, reason: f.error });
      if (batch.pixels) {
        const randoms = batch.items.map((i) => seededRandom(deriveSeed(config.seed, i.image.hash, String(i.view))));
        const x = tf.tidy(() => {
          const augmented = batch.items.some((i) => i.view > 0) ? augmentBatch(batch.pixels!, randoms) : batch.pixels!;
          // View 0 stays the plain image even inside a batch that has augmented views.
          const mask = tf.tensor1d(batch.items.map((i) => (i.view > 0 ? 1 : 0))).reshape([-1, 1, 1, 1]);
          const pixels = augmented === batch.pixels ? augmented : tf.add(tf.mul(augmented, mask), tf.mul(batch.pixels!, tf.sub(1, mask)));
          return preprocess(pixels as tf.Tensor4D, model.info.preprocessing);
        });
        const out = await forward.run(x);
        const values = (await out.data()) as Float32Array;
        tf.dispose([x, out]);
        const dim = model.info.featureDim;
        await Promise.all(
          batch.items.map((item, i) => {
            const f = values.slice(i * dim, (i + 1) * dim) as Float32Array;
            features.set(key(item.image, item.view), f);
            return cache.put(item.image.hash, item.view, f);
          }),
        );
      }
      done += batch.items.length + batch.failures.length;
      const seconds = (performance.now() - started) / 1000;
      progress.report(done, { imagesPerSec: done / seconds, batch: Math.ceil(done / batchSize), batches: Math.ceil(missing.length / batchSize) });
    }
  } finally {
    forward.dispose();
  }
  return features;
}

async function trainHeadPhase(args: PhaseArgs & { featureKey: string }): Promise<boolean> {
  const { config, model, labels, labelIndex, split, weights, hooks, dir } = args;
  const views = config.augment ? HEAD_VIEWS_WITH_AUGMENTATION : 1;
  const items = [
    ...split.train.flatMap((image) => Array.from({ length: views }, (_, view) => ({ image, view }))),
    ...split.val.map((image) => ({ image, view: 0 })),
  ];
  const features = await extractFeatures(args, items);
  const has = (image: DatasetImage) => features.has(`${image.hash}:0`);
  const train = split.train.filter(has);
  const val = split.val.filter(has);
  if (val.length === 0) throw new Error('no validation image could be decoded');

  const dim = model.info.featureDim;
  const stack = (rows: Float32Array[]) => {
    const buffer = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => buffer.set(r, i * dim));
    return tf.tensor2d(buffer, [rows.length, dim]);
  };
  const valX = stack(val.map((i) => features.get(`${i.hash}:0`)!));
  const valY = oneHot(val.map((i) => labelIndex.get(i.className)!), labels.length);
  const optimizer = tf.train.adam(config.learningRate);
  const random = seededRandom(deriveSeed(config.seed, 'head-order'));
  const headWeights = model.head.trainableWeights.map((w) => w.read() as tf.Variable);

  try {
    // The ETA covers the rest of the phase, not just the epoch.
    const progress = new Progress(hooks, 'train', (args.epochs - args.firstEpoch + 1) * train.length);
    for (let epoch = args.firstEpoch; epoch <= args.epochs; epoch++) {
      checkCancel(hooks.signal);
      const started = performance.now();
      const order = shuffle([...train], random);
      const before = (epoch - args.firstEpoch) * train.length;
      let lossSum = 0;
      let correct = 0;
      for (let start = 0; start < order.length; start += config.batchSize) {
        checkCancel(hooks.signal);
        const batch = order.slice(start, start + config.batchSize);
        // One random view of each image per epoch.
        const x = stack(batch.map((i) => features.get(`${i.hash}:${Math.floor(random() * views)}`) ?? features.get(`${i.hash}:0`)!));
        const y = oneHot(batch.map((i) => labelIndex.get(i.className)!), labels.length);
        const { loss, hits } = await trainStep(optimizer, headWeights, (xs) => model.head.apply(xs, { training: true }) as tf.Tensor2D, x, y, weights);
        lossSum += loss * batch.length;
        correct += hits;
        tf.dispose([x, y]);
        const done = Math.min(start + config.batchSize, order.length);
        progress.report(before + done, {
          epoch: args.epochBase + epoch,
          epochs: args.epochBase + args.epochs,
          batch: Math.ceil(done / config.batchSize),
          batches: Math.ceil(order.length / config.batchSize),
          imagesPerSec: done / ((performance.now() - started) / 1000),
          loss: lossSum / done,
          accuracy: correct / done,
          learningRate: config.learningRate,
        });
      }
      const probs = model.head.predict(valX) as tf.Tensor2D;
      const valLoss = tf.tidy(() => weightedLoss(probs, valY, tf.onesLike(weights) as tf.Tensor1D));
      const valLossValue = (await valLoss.data())[0];
      const p = (await probs.array()) as number[][];
      tf.dispose([probs, valLoss]);
      const predictions: Prediction[] = val.map((image, i) => ({ file: image.file, trueIndex: labelIndex.get(image.className)!, probabilities: p[i] }));
      const valAccuracy = predictions.filter((q) => argmax(q.probabilities) === q.trueIndex).length / predictions.length;
      const stop = await args.onEpoch(
        {
          epoch: args.epochBase + epoch,
          phase: 'train',
          loss: lossSum / Math.max(1, order.length),
          accuracy: correct / Math.max(1, order.length),
          valLoss: valLossValue,
          valAccuracy,
          learningRate: config.learningRate,
          seconds: (performance.now() - started) / 1000,
        },
        predictions,
        () => saveModelAtomic(model.classifier, path.join(dir, 'best')),
        () => saveModelAtomic(model.head, path.join(dir, 'head-last')),
      );
      if (stop) return true;
    }
    return false;
  } finally {
    tf.dispose([valX, valY]);
    optimizer.dispose();
  }
}

/**
 * What the network phase runs: in fine-tune mode the frozen stages are a fixed function of the image,
 * run forward only (through onnxruntime when it can) and the trainable rest goes through TF.js with
 * gradients; in full mode the whole classifier trains.
 */
async function networkParts(args: PhaseArgs & { info: BackboneInfo }): Promise<{ trunk: ForwardPass | null; trainable: tf.LayersModel }> {
  const { config, model, hooks, info } = args;
  if (config.mode !== 'finetune') {
    unfreezeAll(model.classifier);
    return { trunk: null, trainable: model.classifier };
  }
  // The standard small-data recipe: the last stage trains at a lower rate, BN statistics stay frozen.
  const stages = lastStages(info, 1);
  freezeBackbone(model.classifier, info, { trainableStages: stages });
  model.classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
  let split;
  try {
    split = splitAtStages(model.classifier, info, stages);
  } catch (err) {
    hooks.emit({ type: 'warning', message: `the frozen stages run through TF.js with the rest of the network: ${(err as Error).message}` });
    return { trunk: null, trainable: model.classifier };
  }
  const trunk = await createForwardPass(split.trunk, { inputSize: config.inputSize });
  const frozen = info.stages.slice(0, info.stages.indexOf(stages[0]));
  hooks.emit({
    type: 'progress',
    phase: 'load',
    fraction: 1,
    message: `frozen stages (${frozen.join(', ')}) run forward in ${describeRuntime(trunk)}; ${stages.join(', ')} and the head train in TF.js`,
  });
  return { trunk, trainable: split.top };
}

async function trainNetworkPhase(args: PhaseArgs & { info: BackboneInfo }): Promise<boolean> {
  const { config, model, labels, labelIndex, split, weights, hooks, dir, info } = args;
  const learningRate = phaseLearningRate(config, 'finetune');
  const { trunk, trainable } = await networkParts(args);
  /** The trainable part's input for a batch of preprocessed images (a new tensor). */
  const inputOf = async (x: tf.Tensor4D): Promise<tf.Tensor> => (trunk ? trunk.run(x) : x.clone());
  let microBatch: number;
  try {
    microBatch = microBatchSize(trainable, config.batchSize, tf.getBackend(), model.classifier.countParams(), model.classifier.name);
  } catch (err) {
    trunk?.dispose();
    throw err;
  }
  const variables = trainable.trainableWeights.map((w) => w.read() as tf.Variable);
  if (microBatch < config.batchSize) {
    hooks.emit({ type: 'warning', message: `batches of ${config.batchSize} go through in slices of ${microBatch} images to fit the WebAssembly backend's memory (same result, slower)` });
  }
  const optimizer = tf.train.adam(learningRate);
  const random = seededRandom(deriveSeed(config.seed, 'network-order', String(args.firstEpoch)));
  const decode = (b: DatasetImage[]) => decodeBatch(b, (i) => i.file, config.inputSize);
  try {
    const progress = new Progress(hooks, 'finetune', (args.epochs - args.firstEpoch + 1) * split.train.length);
    for (let epoch = args.firstEpoch; epoch <= args.epochs; epoch++) {
      checkCancel(hooks.signal);
      const started = performance.now();
      const order = shuffle([...split.train], random);
      const before = (epoch - args.firstEpoch) * split.train.length;
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batchNo = 0;
      for await (const batch of prefetchBatches(order, config.batchSize, decode)) {
        checkCancel(hooks.signal);
        for (const f of batch.failures) hooks.emit({ type: 'problem', file: f.item.file, reason: f.error });
        batchNo++;
        if (!batch.pixels) continue;
        const randoms = batch.items.map(() => seededRandom(Math.floor(random() * 4294967296)));
        const pixels = tf.tidy(() => preprocess(config.augment ? augmentBatch(batch.pixels!, randoms) : batch.pixels!, info.preprocessing));
        const x = await inputOf(pixels).finally(() => pixels.dispose());
        const y = oneHot(batch.items.map((i) => labelIndex.get(i.className)!), labels.length);
        let step: { loss: number; hits: number };
        try {
          step = await trainStep(optimizer, variables, (xs) => trainable.apply(xs, { training: true }) as tf.Tensor2D, x, y, weights, microBatch);
        } finally {
          tf.dispose([x, y]);
        }
        const { loss, hits } = step;
        const n = batch.items.length;
        lossSum += loss * n;
        correct += hits;
        seen += n;
        progress.report(before + seen, {
          epoch: args.epochBase + epoch,
          epochs: args.epochBase + args.epochs,
          batch: batchNo,
          batches: Math.ceil(order.length / config.batchSize),
          imagesPerSec: seen / ((performance.now() - started) / 1000),
          loss: lossSum / seen,
          accuracy: correct / seen,
          learningRate,
        });
      }
      // Validation on plain images, in inference mode.
      const predictions: Prediction[] = [];
      for await (const batch of prefetchBatches(split.val, config.batchSize, decode)) {
        checkCancel(hooks.signal);
        if (!batch.pixels) continue;
        const pixels = tf.tidy(() => preprocess(batch.pixels!, info.preprocessing));
        const x = await inputOf(pixels).finally(() => pixels.dispose());
        const probs = tf.tidy(() => trainable.predict(x) as tf.Tensor2D);
        x.dispose();
        const p = (await probs.array()) as number[][];
        probs.dispose();
        batch.items.forEach((image, i) => predictions.push({ file: image.file, trueIndex: labelIndex.get(image.className)!, probabilities: p[i] }));
      }
      if (predictions.length === 0) throw new Error('no validation image could be decoded');
      const metrics = computeMetrics(predictions, labels, 0);
      const stop = await args.onEpoch(
        {
          epoch: args.epochBase + epoch,
          phase: 'finetune',
          loss: lossSum / Math.max(1, seen),
          accuracy: correct / Math.max(1, seen),
          valLoss: metrics.valLoss,
          valAccuracy: metrics.valAccuracy,
          learningRate,
          seconds: (performance.now() - started) / 1000,
        },
        predictions,
        () => saveModelAtomic(model.classifier, path.join(dir, 'best')),
        () => saveModelAtomic(model.classifier, path.join(dir, 'last')),
      );
      if (stop) return true;
    }
    return false;
  } finally {
    optimizer.dispose();
    trunk?.dispose();
  }
}
