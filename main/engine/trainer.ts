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
import type { EpochRecord, RunRecord } from '../api/training';
import { phasePlan, resolveConfig } from '../api/train-config';
import { getBackbone } from '../../models/registry';
import { disposeAll } from '../../models/heads';
import { checkpointExists, loadModel, saveModelAtomic } from './checkpoint';
import { computeMetrics, type ValPrediction } from './metrics';
import { splitDataset } from './split';
import { readRun, writeRun, runDir } from './project';
import type { TrainJob } from './train-protocol';
import { Cancelled, type TrainHooks } from './training/hooks';
import { buildModel, startFeatureKey, startPreprocessing } from './training/model';
import { trainHeadPhase } from './training/head-phase';
import { trainNetworkPhase } from './training/network-phase';

export type { TrainHooks };

/** Classes further apart than this ratio get loss weights. */
const IMBALANCE_RATIO_FOR_WEIGHTS = 1.5;

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

/** Epochs since the best validation loss within one phase's history. */
function epochsSinceBest(history: readonly EpochRecord[]): number {
  if (history.length === 0) return 0;
  const best = Math.min(...history.map((h) => h.valLoss));
  return history.length - 1 - history.findIndex((h) => h.valLoss === best);
}

export async function runTraining(job: TrainJob, hooks: TrainHooks): Promise<RunRecord> {
  const { emit } = hooks;
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
    preprocessing: startPreprocessing(config, parent),
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

  let bestPredictions: ValPrediction[] | null = null;
  let bestValLoss = record.history.length ? Math.min(...record.history.map((h) => h.valLoss)) : Infinity;
  let status: RunRecord['status'] = 'completed';

  const onEpoch = async (rec: EpochRecord, predictions: ValPrediction[], saveBest: () => Promise<void>, saveLast: () => Promise<void>): Promise<boolean> => {
    // The resume point first, then the best checkpoint, then run.json: a failure (a full disk, a
    // crash) at any step leaves run.json naming only epochs whose checkpoints are on disk.
    const improved = rec.valLoss < bestValLoss - 1e-6;
    await saveLast();
    if (improved) {
      emit({ type: 'progress', phase: 'save', fraction: 0, message: `saving best checkpoint (epoch ${rec.epoch})` });
      await saveBest();
      bestValLoss = rec.valLoss;
      bestPredictions = predictions;
      record.bestEpoch = rec.epoch;
      record.metrics = computeMetrics(predictions, labels, rec.epoch);
    }
    record.history.push(rec);
    record.lastEpoch = rec.epoch;
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
        const stop =
          phase === 'train'
            ? await trainHeadPhase({ ...args, featureKey })
            : await trainNetworkPhase({ ...args, info: model.info, ...(job.trainer ? { trainer: job.trainer } : {}), onTrainer: (t) => (record.trainer = t) });
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

