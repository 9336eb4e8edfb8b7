// The messages between the caller and the training process, validated on both sides.
import { z } from 'zod';
import type { TrainEvent } from '../api/training';
import type { DatasetImage } from '../api/dataset';
import type { TrainConfig } from '../api/train-config';
import { trainConfigSchema } from '../api/train-config-schema';
import { TRAINER_REQUESTS, type TrainerRequest } from './training/train-engine';

/** What the training process is asked to do. */
export interface TrainJob {
  projectDir: string;
  runId: string;
  config: TrainConfig;
  /** Usable images of the training dataset (the scan's problems already removed). */
  images: DatasetImage[];
  /** A separate validation set; when absent, `config.valSplit` of `images` is held out. */
  validation?: DatasetImage[];
  /** Continue this run from its last checkpoint. */
  resume?: boolean;
  /** Start from the best checkpoint of this earlier run (after adding images or classes). */
  parentRunId?: string;
  /** Forces the network phase's engine (`refit train --trainer`); else REFIT_TRAINER or the default choice. */
  trainer?: TrainerRequest;
}

export type ParentMessage = { type: 'start'; job: TrainJob; backend?: string } | { type: 'cancel' };
export type ChildMessage = TrainEvent;

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
  trainer: z.enum(TRAINER_REQUESTS).optional(),
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
    done: num.optional(),
    total: num.optional(),
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
