// The training part of the contract between the UI/CLI and the engine (and the training process).
import type { TrainerReport } from './backends';
import type { Preprocessing } from './models';
import type { ResolvedTrainConfig, TrainPhaseName } from './train-config';

export type { TrainConfig, TrainMode, ResolvedTrainConfig } from './train-config';

export type TrainPhase = 'scan' | 'load' | 'extract' | 'train' | 'finetune' | 'evaluate' | 'save';

export interface EpochRecord {
  epoch: number;
  phase: TrainPhaseName;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  learningRate: number;
  seconds: number;
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Misclassified {
  file: string;
  trueLabel: string;
  predictedLabel: string;
  confidence: number;
}

export interface RunMetrics {
  valAccuracy: number;
  valLoss: number;
  bestEpoch: number;
  labels: string[];
  /** confusion[true][predicted] counts on the validation set. */
  confusion: number[][];
  perClass: ClassMetrics[];
  misclassified: Misclassified[];
  /**
   * The validation images the model got right (predictedLabel = trueLabel), least confident first:
   * what a diagonal cell of the confusion matrix opens. Absent in runs recorded before it was kept.
   */
  correct?: Misclassified[];
}

export type TrainEvent =
  | {
      type: 'progress';
      phase: TrainPhase;
      /** 0..1 within the phase. */
      fraction: number;
      epoch?: number;
      epochs?: number;
      batch?: number;
      batches?: number;
      imagesPerSec?: number;
      etaSeconds?: number;
      loss?: number;
      accuracy?: number;
      learningRate?: number;
      /** Images done of `total` in this phase (over all its epochs for train/finetune), when it counts them. */
      done?: number;
      total?: number;
      message?: string;
    }
  | { type: 'epoch'; record: EpochRecord }
  | { type: 'problem'; file: string; reason: string }
  | { type: 'warning'; message: string }
  | { type: 'result'; runId: string; status: 'completed' | 'cancelled' | 'early-stopped'; metrics: RunMetrics | null; checkpointDir: string | null }
  | { type: 'error'; message: string };

/** Longest name a user can give a run (run.json `name`). */
export const RUN_NAME_MAX = 100;

export type RunStatus = 'running' | 'completed' | 'early-stopped' | 'cancelled' | 'failed';

/**
 * runs/<id>/run.json inside a project. The best checkpoint (a plain TF.js layers model: the whole
 * classifier) is in runs/<id>/best/, the latest (for resume) in runs/<id>/last/.
 */
export interface RunRecord {
  format: 'refit-run';
  version: 1;
  id: string;
  created: string;
  updated: string;
  status: RunStatus;
  error?: string;
  config: ResolvedTrainConfig;
  /** Class names in the head's output order. */
  labels: string[];
  /** Preprocessing of the backbone (from the registry), recorded so exports are self-describing. */
  preprocessing: Preprocessing;
  /** Hash over the sorted (class, image hash) pairs the run trained on. */
  datasetFingerprint: string;
  trainImages: number;
  valImages: number;
  history: EpochRecord[];
  /** Epoch of the saved best checkpoint, and the last completed one. */
  bestEpoch: number | null;
  lastEpoch: number;
  metrics: RunMetrics | null;
  /** Identifies the backbone weights the run started from, for the feature cache. */
  featureKey: string;
  /** The run this one continued from (after adding images or classes). */
  parent?: string;
  /** The engine that trained the network phase (fine-tune, full) and why; absent in head mode and in older runs. */
  trainer?: TrainerReport;
  /** A name the user gave the run (the id stays its folder's name). */
  name?: string;
}
