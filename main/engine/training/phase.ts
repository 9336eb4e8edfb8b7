// What the trainer hands each phase (head, network), and the one validation measure both use.
import type * as tf from '@tensorflow/tfjs';
import type { DatasetImage } from '../../api/dataset';
import type { EpochRecord, RunRecord } from '../../api/training';
import { computeMetrics, type Prediction } from '../metrics';
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
  onEpoch: (rec: EpochRecord, predictions: Prediction[], saveBest: () => Promise<void>, saveLast: () => Promise<void>) => Promise<boolean>;
}

/**
 * Validation loss and accuracy of one epoch's predictions, the same measure in every phase: the mean
 * unweighted cross-entropy (probabilities clipped at 1e-7) that early stopping and the best checkpoint go by.
 */
export function evaluate(predictions: readonly Prediction[], labels: readonly string[]): { valLoss: number; valAccuracy: number } {
  if (predictions.length === 0) throw new Error('no validation image could be decoded');
  const { valLoss, valAccuracy } = computeMetrics(predictions, labels, 0);
  return { valLoss, valAccuracy };
}
