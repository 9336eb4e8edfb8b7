// The training configuration in one place: its type, defaults, limits, learning rates and phase plan,
// and the function that checks a config against a backbone and fills in the mode's defaults. Plain
// TypeScript (no TF.js, no zod): the renderer's form, the CLI's flags, the engine service, the time
// estimates and the trainer all read it. The request schema built on it is train-config-schema.ts.
import type { HeadConfig } from './models';

export type TrainMode = 'head' | 'finetune' | 'full';

export interface TrainConfig {
  backbone: string;
  weights: 'imagenet' | 'none';
  /**
   * With weights 'imagenet': which weight set (e.g. 'torchvision-v1'; models/weight-sets.ts); default
   * the backbone's default set present on this machine.
   */
  weightSet?: string;
  mode: TrainMode;
  /** Square input side; default: the backbone's registry input size. */
  inputSize?: number;
  head: HeadConfig;
  epochs: number;
  batchSize: number;
  /** Adam learning rate; default depends on the mode (defaultLearningRate). */
  learningRate?: number;
  /** Fraction of each class held out for validation (ignored when validationFolder is set). */
  valSplit: number;
  /** Folder laid out like the training folders, used as the validation set instead of a split. */
  validationFolder?: string;
  seed: number;
  augment: boolean;
  /** Early stopping: epochs without validation-loss improvement before stopping. */
  patience: number;
  /** Weight the loss by inverse class frequency when classes are imbalanced. */
  classWeights: boolean;
}

/** A config with every default filled in: what a run records and trains with. */
export type ResolvedTrainConfig = TrainConfig & { inputSize: number; learningRate: number };

/** The defaults of every setting a person may leave alone (the CLI's flags and the app's form). */
export const TRAIN_DEFAULTS = {
  mode: 'head',
  epochs: 10,
  batchSize: 16,
  valSplit: 0.2,
  seed: 42,
  augment: true,
  patience: 5,
  classWeights: true,
  head: 'linear',
  hidden: 256,
  dropout: 0.2,
} as const satisfies Partial<Record<keyof TrainConfig | 'hidden' | 'dropout', unknown>>;

/**
 * Upper bounds of a training config: generous (above what the UI's form allows) but finite, so a request can
 * not ask the engine for an unbounded amount of memory or time. Each refusal names the field and the limit.
 */
export const TRAIN_LIMITS = {
  inputSize: 1024,
  batchSize: 1024,
  epochs: 10_000,
  patience: 10_000,
  hidden: 8192,
  seed: 2 ** 32 - 1,
  backboneLength: 100,
  pathLength: 4096,
} as const;

/** Adam's learning rate per mode when the config does not set one. */
export const DEFAULT_LEARNING_RATE: Readonly<Record<TrainMode, number>> = { head: 1e-3, finetune: 1e-3, full: 1e-4 };
/** Full training from random weights has nothing to preserve: it starts at the head's rate. */
export const FROM_SCRATCH_LEARNING_RATE = 1e-3;
/** Fine-tuning the backbone uses this fraction of the head's learning rate. */
export const FINETUNE_LR_FACTOR = 0.1;
/** Augmented feature views per training image in head mode (view 0 is the plain image). */
export const HEAD_VIEWS_WITH_AUGMENTATION = 4;

export function defaultLearningRate(config: Pick<TrainConfig, 'mode' | 'weights'>): number {
  return config.mode === 'full' && config.weights === 'none' ? FROM_SCRATCH_LEARNING_RATE : DEFAULT_LEARNING_RATE[config.mode];
}

/** A phase of a run: 'train' trains the head on cached features, 'finetune' trains (part of) the backbone too. */
export type TrainPhaseName = 'train' | 'finetune';

/** The phases a run goes through, in order, with their epochs: fine-tune mode trains the head first, then the last stage. */
export function phasePlan(config: Pick<TrainConfig, 'mode' | 'epochs'>): { phase: TrainPhaseName; epochs: number }[] {
  switch (config.mode) {
    case 'head':
      return [{ phase: 'train', epochs: config.epochs }];
    case 'finetune':
      return [
        { phase: 'train', epochs: config.epochs },
        { phase: 'finetune', epochs: config.epochs },
      ];
    case 'full':
      return [{ phase: 'finetune', epochs: config.epochs }];
  }
}

/** Epochs a run of `config` trains in all. */
export function plannedEpochs(config: Pick<TrainConfig, 'mode' | 'epochs'>): number {
  return phasePlan(config).reduce((sum, p) => sum + p.epochs, 0);
}

/** The learning rate of a phase: the backbone's phase of fine-tune mode runs at a tenth of the head's. */
export function phaseLearningRate(config: Pick<ResolvedTrainConfig, 'mode' | 'learningRate'>, phase: TrainPhaseName): number {
  return config.mode === 'finetune' && phase === 'finetune' ? config.learningRate * FINETUNE_LR_FACTOR : config.learningRate;
}

/** What resolveConfig needs to know of the chosen backbone (models/catalog.ts has it). */
export interface BackboneFacts {
  id: string;
  name: string;
  inputSize: number;
  minInputSize: number;
  weights: readonly string[];
}

/** The one input-size check (config validation and the registry's builder both use it). */
export function checkInputSize(backbone: Pick<BackboneFacts, 'id' | 'name' | 'minInputSize'>, size: number): void {
  if (!Number.isInteger(size) || size < backbone.minInputSize) {
    throw new Error(`${backbone.name} (${backbone.id}) needs an input of at least ${backbone.minInputSize}×${backbone.minInputSize} pixels; got ${size}×${size}`);
  }
}

/** Checks a config against its backbone (`backbone.id` must be `config.backbone`), filling the mode's defaults. */
export function resolveConfig(config: TrainConfig, backbone: BackboneFacts): ResolvedTrainConfig {
  if (backbone.id !== config.backbone) throw new Error(`backbone: resolveConfig was given ${backbone.id} for a ${config.backbone} config`);
  if (config.weights === 'imagenet' && !backbone.weights.includes('imagenet')) {
    const available = backbone.weights.length ? backbone.weights.join(', ') : 'none';
    throw new Error(`weights: ${backbone.id} has no ImageNet weights (available: ${available}); use --weights none or a backbone that has them (resnet50)`);
  }
  if (config.weightSet !== undefined && config.weights !== 'imagenet') throw new Error(`weightSet: ${config.weightSet} needs weights "imagenet"`);
  const inputSize = config.inputSize ?? backbone.inputSize;
  try {
    checkInputSize(backbone, inputSize);
  } catch (err) {
    throw new Error(`inputSize: ${(err as Error).message}`);
  }
  for (const [field, value, max] of [
    ['epochs', config.epochs, TRAIN_LIMITS.epochs],
    ['batchSize', config.batchSize, TRAIN_LIMITS.batchSize],
    ['patience', config.patience, TRAIN_LIMITS.patience],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${field} must be a whole number from 1 to ${max}, got ${value}`);
  }
  if (inputSize > TRAIN_LIMITS.inputSize) throw new Error(`inputSize: at most ${TRAIN_LIMITS.inputSize} pixels, got ${inputSize}`);
  const learningRate = config.learningRate ?? defaultLearningRate(config);
  if (!(learningRate > 0 && learningRate < 1)) throw new Error(`learningRate must be in (0, 1), got ${learningRate}`);
  return { ...config, inputSize, learningRate };
}
