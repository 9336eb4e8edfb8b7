// The training config's upper bounds: every numeric knob that sizes memory or time is finite, each refusal
// names the field and the limit, and the UI's own ranges stay inside them.
import { describe, expect, it } from 'vitest';
import { parseParams } from '../../main/api/contract';
import { TRAIN_LIMITS } from '../../main/api/train-config';
import { trainConfigSchema } from '../../main/api/train-config-schema';
import { parentMessageSchema } from '../../main/engine/train-protocol';

const ok = {
  backbone: 'resnet18',
  weights: 'none',
  mode: 'head',
  inputSize: 224,
  head: { kind: 'mlp', hidden: 256, dropout: 0.2 },
  epochs: 10,
  batchSize: 16,
  valSplit: 0.2,
  seed: 42,
  augment: true,
  patience: 5,
  classWeights: false,
};

function refusal(config: unknown): string {
  try {
    parseParams('training.start', { config });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('training config bounds', () => {
  it('accepts a normal config and the largest allowed values', () => {
    expect(trainConfigSchema.safeParse(ok).success).toBe(true);
    const max = {
      ...ok,
      inputSize: TRAIN_LIMITS.inputSize,
      batchSize: TRAIN_LIMITS.batchSize,
      epochs: TRAIN_LIMITS.epochs,
      patience: TRAIN_LIMITS.patience,
      seed: TRAIN_LIMITS.seed,
      head: { kind: 'mlp', hidden: TRAIN_LIMITS.hidden, dropout: 0.5 },
    };
    expect(trainConfigSchema.safeParse(max).success).toBe(true);
  });

  it.each([
    ['inputSize', { inputSize: TRAIN_LIMITS.inputSize + 1 }, 'config.inputSize: must be at most 1024 pixels'],
    ['inputSize', { inputSize: 1e12 }, 'config.inputSize: must be at most 1024 pixels'],
    ['batchSize', { batchSize: TRAIN_LIMITS.batchSize + 1 }, 'config.batchSize: must be at most 1024'],
    ['epochs', { epochs: 1e9 }, 'config.epochs: must be at most 10000'],
    ['patience', { patience: Number.MAX_SAFE_INTEGER }, 'config.patience: must be at most 10000'],
    ['head.hidden', { head: { kind: 'mlp', hidden: 1e7, dropout: 0 } }, 'config.head.hidden: must be at most 8192 units'],
    ['seed', { seed: 2 ** 40 }, 'config.seed: must be at most 4294967295'],
    ['seed', { seed: -1 }, 'config.seed: must be at least 0'],
    ['epochs', { epochs: 0 }, 'config.epochs: must be at least 1'],
    ['batchSize', { batchSize: 2.5 }, 'config.batchSize: must be a whole number'],
    ['backbone', { backbone: 'x'.repeat(101) }, 'config.backbone: must be at most 100 characters'],
    ['validationFolder', { validationFolder: '/'.repeat(5000) }, 'config.validationFolder: must be at most 4096 characters'],
  ])('refuses %s out of range with a clear message', (_field, patch, message) => {
    expect(refusal({ ...ok, ...patch })).toContain(message);
  });

  it('infinities and NaN are refused', () => {
    for (const v of [Infinity, -Infinity, NaN]) {
      expect(trainConfigSchema.safeParse({ ...ok, epochs: v }).success).toBe(false);
      expect(trainConfigSchema.safeParse({ ...ok, inputSize: v }).success).toBe(false);
    }
  });

  it('the training process applies the same bounds to the job it is sent', () => {
    const job = { projectDir: '/p', runId: 'r', config: { ...ok, batchSize: 1e6 }, images: [] };
    expect(parentMessageSchema.safeParse({ type: 'start', job }).success).toBe(false);
    expect(parentMessageSchema.safeParse({ type: 'start', job: { ...job, config: ok } }).success).toBe(true);
  });
});
