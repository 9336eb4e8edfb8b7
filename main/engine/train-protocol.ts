// The messages between the caller and the training process, validated on both sides.
import { z } from 'zod';
import type { TrainEvent } from '../api/training';
import type { TrainJob } from './trainer';

export type ParentMessage = { type: 'start'; job: TrainJob; backend?: string } | { type: 'cancel' };
export type ChildMessage = TrainEvent;

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

const L = TRAIN_LIMITS;
// zod's issue path names the field ("config.epochs: must be at most 10000").
const boundedInt = (max: number, unit = '') =>
  z.number().int('must be a whole number').positive('must be at least 1').max(max, `must be at most ${max}${unit}`);

const headSchema = z.union([
  z.object({ kind: z.literal('linear') }),
  z.object({
    kind: z.literal('mlp'),
    hidden: boundedInt(L.hidden, ' units'),
    dropout: z.number().min(0).lt(1),
  }),
]);

export const trainConfigSchema = z.object({
  backbone: z.string().min(1).max(L.backboneLength, `must be at most ${L.backboneLength} characters`),
  weights: z.enum(['imagenet', 'none']),
  mode: z.enum(['head', 'finetune', 'full']),
  inputSize: boundedInt(L.inputSize, ' pixels').optional(),
  head: headSchema,
  epochs: boundedInt(L.epochs),
  batchSize: boundedInt(L.batchSize),
  learningRate: z.number().positive().lt(1).optional(),
  valSplit: z.number().gt(0).lt(1),
  validationFolder: z.string().max(L.pathLength, `must be at most ${L.pathLength} characters`).optional(),
  seed: z.number().int('must be a whole number').min(0, 'must be at least 0').max(L.seed, `must be at most ${L.seed}`),
  augment: z.boolean(),
  patience: boundedInt(L.patience),
  classWeights: z.boolean(),
});

const imageSchema = z.object({
  file: z.string(),
  className: z.string(),
  hash: z.string(),
  width: z.number(),
  height: z.number(),
});

const jobSchema = z.object({
  projectDir: z.string().min(1),
  runId: z.string().min(1),
  config: trainConfigSchema,
  images: z.array(imageSchema),
  validation: z.array(imageSchema).optional(),
  resume: z.boolean().optional(),
  parentRunId: z.string().optional(),
});

export const parentMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), job: jobSchema, backend: z.string().optional() }),
  z.object({ type: z.literal('cancel') }),
]);

const num = z.number();
export const childMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('progress'),
    phase: z.enum(['scan', 'load', 'extract', 'train', 'finetune', 'evaluate', 'save']),
    fraction: num,
    epoch: num.optional(),
    epochs: num.optional(),
    batch: num.optional(),
    batches: num.optional(),
    imagesPerSec: num.optional(),
    etaSeconds: num.optional(),
    loss: num.optional(),
    accuracy: num.optional(),
    learningRate: num.optional(),
    message: z.string().optional(),
  }),
  z.object({
    type: z.literal('epoch'),
    record: z.object({
      epoch: num,
      phase: z.enum(['train', 'finetune']),
      loss: num,
      accuracy: num,
      valLoss: num,
      valAccuracy: num,
      learningRate: num,
      seconds: num,
    }),
  }),
  z.object({ type: z.literal('problem'), file: z.string(), reason: z.string() }),
  z.object({ type: z.literal('warning'), message: z.string() }),
  z.object({
    type: z.literal('result'),
    runId: z.string(),
    status: z.enum(['completed', 'cancelled', 'early-stopped']),
    metrics: z.any(),
    checkpointDir: z.string().nullable(),
  }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
