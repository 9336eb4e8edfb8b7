// refit.json: the description Refit writes next to an exported model (model.json + shards), and
// the schema it is checked against when a model folder is loaded for prediction.
import { z } from 'zod';
import type { Preprocessing } from '../../models/types';

export const MANIFEST_FILE = 'refit.json';
export const MANIFEST_FORMAT = 'refit-model';
export const MANIFEST_VERSION = 1;

/** How decodeImage (image-decode.ts) turns any image into the model's square input. */
export const RESIZE_RULE = 'contain-white';
export const RESIZE_RULE_TEXT =
  'EXIF orientation applied, transparency flattened onto white, the whole image scaled to fit inside the square ' +
  'keeping its aspect ratio and centred, the rest padded with white, so nothing is cropped or stretched';

const triple = z.tuple([z.number(), z.number(), z.number()]);

const preprocessingCommon = {
  /** Raw pixel values the preprocessing starts from. */
  sourceRange: z.tuple([z.literal(0), z.literal(255)]),
  /** Channel order of the values the network sees. */
  channelOrder: z.enum(['RGB', 'BGR']),
  resize: z.string(),
  description: z.string(),
};

export const manifestPreprocessingSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('caffe'), mean: triple, ...preprocessingCommon }),
  z.object({ mode: z.literal('torch'), mean: triple, std: triple, ...preprocessingCommon }),
  z.object({ mode: z.literal('tf'), ...preprocessingCommon }),
]);

const classMetricsSchema = z.object({
  name: z.string(),
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number(),
});

/** model.onnx, when the export includes it: what its graph takes and gives. */
export const ONNX_FILE = 'model.onnx';
const onnxSchema = z.object({
  file: z.literal(ONNX_FILE),
  opset: z.number().int(),
  input: z.object({
    name: z.string(),
    layout: z.enum(['NHWC', 'NCHW']),
    dtype: z.literal('float32'),
    /** null = any batch size; [null, H, W, 3] (NHWC) or [null, 3, H, W] (NCHW). */
    shape: z.tuple([z.null(), z.number(), z.number(), z.number()]),
  }),
  output: z.object({ name: z.string(), dtype: z.literal('float32'), shape: z.tuple([z.null(), z.number()]), activation: z.literal('softmax') }),
  /** The graph starts at preprocessed values: `preprocessing` above must be applied first. */
  preprocessingIncluded: z.literal(false),
  /** The same, in words, with the exact channel order and constants. */
  note: z.string(),
});

const fileSchema = z.object({
  path: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(MANIFEST_VERSION),
  refitVersion: z.string(),
  created: z.string(),
  labels: z.array(z.string().min(1)).min(2),
  backbone: z.object({ id: z.string(), name: z.string() }),
  weights: z.string(),
  /** The published ImageNet weight set the backbone started from (absent for a random start, and in files before it was recorded). */
  weightSet: z
    .looseObject({ id: z.string(), publisher: z.string(), variant: z.string(), licence: z.string(), fileName: z.string(), top1: z.number() })
    .optional(),
  inputSize: z.number().int().positive(),
  input: z.object({
    layout: z.literal('NHWC'),
    dtype: z.literal('float32'),
    shape: z.tuple([z.null(), z.number(), z.number(), z.literal(3)]),
  }),
  preprocessing: manifestPreprocessingSchema,
  output: z.object({ activation: z.literal('softmax'), classes: z.number().int() }),
  /** Present when the folder also holds model.onnx (the same classifier as an ONNX graph). */
  onnx: onnxSchema.optional(),
  // Written by Refit for people and tools; prediction does not depend on their exact shape.
  training: z.looseObject({ config: z.looseObject({}) }),
  metrics: z
    .looseObject({
      valAccuracy: z.number(),
      valLoss: z.number(),
      bestEpoch: z.number(),
      perClass: z.array(classMetricsSchema),
      confusion: z.array(z.array(z.number())),
    })
    .nullable(),
  datasetFingerprint: z.string(),
  /** Every other file of the folder (not refit.json itself), with its size and SHA-256. */
  files: z.array(fileSchema),
});

export type RefitManifest = z.infer<typeof manifestSchema>;
export type ManifestPreprocessing = RefitManifest['preprocessing'];
export type ManifestFile = RefitManifest['files'][number];
export type ManifestOnnx = NonNullable<RefitManifest['onnx']>;

/** The network's channel order after preprocessing. */
export function channelOrder(p: Preprocessing): 'RGB' | 'BGR' {
  return p.mode === 'caffe' ? 'BGR' : 'RGB';
}

const list = (v: readonly number[]) => `[${v.join(', ')}]`;

/** The preprocessing in words, exact enough to reimplement it. */
export function describePreprocessing(p: Preprocessing, inputSize: number): string {
  const start = `Decode to RGB values 0–255 and resize to ${inputSize}×${inputSize}: ${RESIZE_RULE_TEXT}. Then `;
  switch (p.mode) {
    case 'caffe':
      return `${start}reverse the channels to BGR and subtract the per-channel mean ${list(p.mean)} (B, G, R); no scaling ("caffe" preprocessing).`;
    case 'torch':
      return `${start}divide by 255, subtract the mean ${list(p.mean)} and divide by the standard deviation ${list(p.std)} per R, G, B channel ("torch" preprocessing).`;
    case 'tf':
      return `${start}divide by 127.5 and subtract 1, giving values in [-1, 1] in RGB order ("tf" preprocessing).`;
  }
}

/** What an ONNX user must do before feeding model.onnx, exactly (preprocessing is not in the graph). */
export function describeOnnxPreprocessing(p: Preprocessing, inputSize: number, layout: 'NHWC' | 'NCHW'): string {
  const shape = layout === 'NHWC' ? `[batch, ${inputSize}, ${inputSize}, 3]` : `[batch, 3, ${inputSize}, ${inputSize}]`;
  const values = {
    caffe: `channel order BGR; value = pixel (0–255) − mean, mean (B, G, R) = ${list(p.mode === 'caffe' ? p.mean : [])}; no scaling`,
    torch: `channel order RGB; value = (pixel / 255 − mean) / std, mean (R, G, B) = ${list(p.mode === 'torch' ? p.mean : [])}, std (R, G, B) = ${list(p.mode === 'torch' ? p.std : [])}`,
    tf: 'channel order RGB; value = pixel / 127.5 − 1 (range [−1, 1])',
  }[p.mode];
  return (
    `Preprocessing is NOT included in model.onnx: feed float32 ${shape} (${layout}) already preprocessed — ${values}. ` +
    `Resize first as refit.json's preprocessing says (${RESIZE_RULE}).`
  );
}

export function manifestPreprocessing(p: Preprocessing, inputSize: number): ManifestPreprocessing {
  const common = { sourceRange: [0, 255] as [0, 255], channelOrder: channelOrder(p), resize: RESIZE_RULE, description: describePreprocessing(p, inputSize) };
  switch (p.mode) {
    case 'caffe':
      return { mode: 'caffe', mean: [...p.mean], ...common };
    case 'torch':
      return { mode: 'torch', mean: [...p.mean], std: [...p.std], ...common };
    case 'tf':
      return { mode: 'tf', ...common };
  }
}

/** The part of the manifest's preprocessing that `preprocess()` needs. */
export function toPreprocessing(p: ManifestPreprocessing): Preprocessing {
  switch (p.mode) {
    case 'caffe':
      return { mode: 'caffe', mean: p.mean };
    case 'torch':
      return { mode: 'torch', mean: p.mean, std: p.std };
    case 'tf':
      return { mode: 'tf' };
  }
}

/** What refit.json records about how the model was trained (validated loosely on load). */
export interface TrainingSummary {
  runId?: string;
  status?: string;
  config: import('../api/training').TrainConfig & { inputSize: number; learningRate?: number };
  trainImages?: number;
  valImages?: number;
  /** Epochs completed, and the one whose weights were exported. */
  epochsRun?: number;
  bestEpoch?: number | null;
  history?: import('../api/training').EpochRecord[];
  /** Misclassified validation images (counted only: their paths are the user's files). */
  misclassifiedCount?: number;
  parent?: string;
}

/** The manifest as Refit writes it. */
export type WrittenManifest = Omit<RefitManifest, 'training'> & { training: TrainingSummary };
