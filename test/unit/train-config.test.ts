// The one training-config module: defaults, phase plan, learning rates and the config check that the
// renderer, the CLI, the service and the trainer share.
import { describe, expect, it } from 'vitest';
import {
  defaultLearningRate,
  phaseLearningRate,
  phasePlan,
  plannedEpochs,
  resolveConfig,
  TRAIN_DEFAULTS,
  type TrainConfig,
} from '../../main/api/train-config';
import { getBackboneSpec } from '../../models/catalog';

const base: TrainConfig = {
  backbone: 'resnet18',
  weights: 'none',
  mode: 'head',
  head: { kind: 'linear' },
  epochs: 3,
  batchSize: 8,
  valSplit: 0.2,
  seed: 1,
  augment: true,
  patience: 2,
  classWeights: true,
};

describe('training config', () => {
  it('plans the phases of each mode and counts their epochs', () => {
    expect(phasePlan({ mode: 'head', epochs: 4 })).toEqual([{ phase: 'train', epochs: 4 }]);
    expect(phasePlan({ mode: 'finetune', epochs: 4 })).toEqual([
      { phase: 'train', epochs: 4 },
      { phase: 'finetune', epochs: 4 },
    ]);
    expect(phasePlan({ mode: 'full', epochs: 4 })).toEqual([{ phase: 'finetune', epochs: 4 }]);
    expect([plannedEpochs({ mode: 'head', epochs: 5 }), plannedEpochs({ mode: 'finetune', epochs: 5 }), plannedEpochs({ mode: 'full', epochs: 5 })]).toEqual([5, 10, 5]);
  });

  it('picks learning rates per mode and phase', () => {
    expect(defaultLearningRate({ mode: 'head', weights: 'imagenet' })).toBe(1e-3);
    expect(defaultLearningRate({ mode: 'full', weights: 'imagenet' })).toBe(1e-4);
    expect(defaultLearningRate({ mode: 'full', weights: 'none' })).toBe(1e-3);
    expect(phaseLearningRate({ mode: 'finetune', learningRate: 2e-3 }, 'train')).toBe(2e-3);
    expect(phaseLearningRate({ mode: 'finetune', learningRate: 2e-3 }, 'finetune')).toBeCloseTo(2e-4, 12);
    expect(phaseLearningRate({ mode: 'full', learningRate: 2e-3 }, 'finetune')).toBe(2e-3);
  });

  it('fills defaults from the backbone and refuses what the backbone cannot do, naming the field', () => {
    const r18 = getBackboneSpec('resnet18');
    expect(resolveConfig(base, r18)).toMatchObject({ inputSize: 224, learningRate: 1e-3 });
    expect(resolveConfig({ ...base, inputSize: 96, learningRate: 0.01 }, r18)).toMatchObject({ inputSize: 96, learningRate: 0.01 });
    expect(() => resolveConfig({ ...base, weights: 'imagenet' }, r18)).toThrow(/^weights: resnet18 has no ImageNet weights/);
    expect(resolveConfig({ ...base, backbone: 'resnet50', weights: 'imagenet' }, getBackboneSpec('resnet50')).weights).toBe('imagenet');
    expect(() => resolveConfig({ ...base, inputSize: 31 }, r18)).toThrow(/^inputSize: ResNet-18 \(resnet18\) needs an input of at least 32×32 pixels; got 31×31/);
    expect(() => resolveConfig({ ...base, backbone: 'xception', inputSize: 70 }, getBackboneSpec('xception'))).toThrow(/at least 71×71/);
    expect(() => resolveConfig({ ...base, epochs: 0 }, r18)).toThrow(/^epochs must be a whole number/);
    expect(() => resolveConfig({ ...base, batchSize: 2.5 }, r18)).toThrow(/^batchSize/);
    expect(() => resolveConfig({ ...base, learningRate: 1.5 }, r18)).toThrow(/^learningRate must be in \(0, 1\)/);
    expect(() => resolveConfig(base, getBackboneSpec('resnet34'))).toThrow(/resolveConfig was given resnet34/);
  });

  it('has the defaults the CLI and the app show', () => {
    expect(TRAIN_DEFAULTS).toMatchObject({ mode: 'head', epochs: 10, batchSize: 16, valSplit: 0.2, seed: 42, patience: 5, augment: true, classWeights: true });
  });
});
