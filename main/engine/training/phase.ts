// What the trainer hands each phase (head, network), and the one validation measure both use.
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { DatasetImage } from '../../api/dataset';
import type { EpochRecord, RunRecord } from '../../api/training';
import type { TrainPhaseName } from '../../api/train-config';
import { saveModelAtomic } from '../checkpoint';
import { computeMetrics, type ValPrediction } from '../metrics';
import type { TrainJob } from '../train-protocol';
import type { TrainHooks } from './hooks';
import type { Model } from './model';

export interface PhaseArgs {
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
  onEpoch: (rec: EpochRecord, predictions: ValPrediction[], saveBest: () => Promise<void>, saveLast: () => Promise<void>) => Promise<boolean>;
}

/**
 * Validation loss and accuracy of one epoch's predictions, the same measure in every phase: the mean
 * unweighted cross-entropy (probabilities clipped at 1e-7) that early stopping and the best checkpoint go by.
 */
export function evaluate(predictions: readonly ValPrediction[], labels: readonly string[]): { valLoss: number; valAccuracy: number } {
  if (predictions.length === 0) throw new Error('no validation image could be decoded');
  const { valLoss, valAccuracy } = computeMetrics(predictions, labels, 0);
  return { valLoss, valAccuracy };
}

/** What one epoch of a phase added up. */
export interface EpochTally {
  phase: TrainPhaseName;
  /** The epoch within the phase (1-based). */
  epoch: number;
  lossSum: number;
  correct: number;
  seen: number;
  learningRate: number;
  /** performance.now() when the epoch started. */
  started: number;
}

/**
 * Ends an epoch the same way in every phase: validation measured with evaluate(), the epoch recorded,
 * the best checkpoint saved when it improved and `last` saved into `lastDir` as the resume point.
 * Returns whether early stopping ends the phase.
 */
export function endEpoch(args: PhaseArgs, tally: EpochTally, predictions: ValPrediction[], last: tf.LayersModel, lastDir: 'last' | 'head-last'): Promise<boolean> {
  const { valLoss, valAccuracy } = evaluate(predictions, args.labels);
  return args.onEpoch(
    {
      epoch: args.epochBase + tally.epoch,
      phase: tally.phase,
      loss: tally.lossSum / Math.max(1, tally.seen),
      accuracy: tally.correct / Math.max(1, tally.seen),
      valLoss,
      valAccuracy,
      learningRate: tally.learningRate,
      seconds: (performance.now() - tally.started) / 1000,
    },
    predictions,
    () => saveModelAtomic(args.model.classifier, path.join(args.dir, 'best')),
    () => saveModelAtomic(last, path.join(args.dir, lastDir)),
  );
}
