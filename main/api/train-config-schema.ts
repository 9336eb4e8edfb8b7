// The zod schema of a training config, as requests carry it (the contract's training.start and the
// training process's start message). Its bounds are TRAIN_LIMITS (train-config.ts).
import { z } from 'zod';
import { TRAIN_LIMITS, type TrainConfig } from './train-config';

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
  weightSet: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,39}$/, 'must be a weight set id such as torchvision-v1').optional(),
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
}) satisfies z.ZodType<TrainConfig>;

