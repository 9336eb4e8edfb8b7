// The one contract between the UI and the engine, carried by Electron IPC (preload → ipcMain) and by
// the browser host's WebSocket. Every request is validated with these schemas on the engine side
// before anything runs; results and events are plain JSON.
//
// Wire format (both transports):
//   request   {id: number, method: MethodName, params: …}
//   response  {id, ok: true, result: …} | {id, ok: false, error: {message: string, kind?: ErrorKind}}
//             (kind: main/api/errors.ts, set when the engine knows what kind of failure it is)
//   event     {event: EventName, payload: …}   (engine → UI, unsolicited)
import { z } from 'zod';
import type { BackendReport } from './backends';
import type { DatasetReport, FileProblem } from './dataset';
import { RUN_NAME_MAX, type RunRecord, type RunStatus, type TrainEvent } from './training';
import { trainConfigSchema } from './train-config-schema';
import type { ErrorKind } from './errors';
import type { GradCamRow } from './grad-cam';

const path = z.string().min(1).max(4096);
const nothing = z.object({}).strict();
/** Run ids are made by newRunId (a timestamp and a few random characters). */
const runId = z.string().min(1).max(100);
/** A name a person gives a run or a project: one line of ordinary text. */
const displayName = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'a name cannot be empty')
    .max(max, `a name of at most ${max} characters`)
    .refine((n) => !/[\u0000-\u001f\u007f]/.test(n), 'a name on one line, without control characters');
/** Set by a caller that wants 'classify.progress' events for this request (they carry the same tag). */
const classifyTag = z.string().min(1).max(100).optional();
/** A backbone or weight-set id of the catalogue. */
const catalogueId = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/, 'an id such as resnet18 or torchvision-v1');
/** Grad-CAM maps are asked for a few images at a time (those on screen). */
export const MAX_GRAD_CAM_IMAGES = 32;

export const methodSchemas = {
  /** Version, backend in use (and why), whether a project is open. */
  'app.info': nothing,
  /** Open an existing project folder, or create one there when `create` is set. */
  'project.open': z.object({ dir: path, create: z.boolean().optional(), name: z.string().max(200).optional() }).strict(),
  'project.current': nothing,
  /** Gives the open project a new name (its folder stays where it is). */
  'project.rename': z.object({ name: displayName(200) }).strict(),
  /**
   * Moves the open project's folder to `to` (a new path, or an empty folder); the project stays open
   * there. Refused while a run trains. Nothing is lost on failure: the old folder stays until the new
   * one is complete.
   */
  'project.move': z.object({ to: path }).strict(),
  'project.recent': nothing,
  /** Add folders (the folder→class rule applies) and rescan. */
  'dataset.addFolders': z.object({ folders: z.array(path).min(1).max(1000) }).strict(),
  'dataset.scan': nothing,
  'dataset.renameClass': z.object({ from: z.string().min(1).max(200), to: z.string().min(1).max(200) }).strict(),
  'dataset.removeClass': z.object({ name: z.string().min(1).max(200) }).strict(),
  'dataset.setExcluded': z.object({ file: path, excluded: z.boolean() }).strict(),
  /** A page of one class's images (for the virtualised grid). */
  'dataset.images': z.object({ className: z.string().min(1).max(200), offset: z.number().int().min(0), limit: z.number().int().min(1).max(1000) }).strict(),
  /** A small JPEG/WebP thumbnail of an image as a data: URL, made by the engine and cached. */
  'dataset.thumbnail': z.object({ file: path, size: z.number().int().min(32).max(512).optional() }).strict(),
  /** Server-side folder listing, for the browser host's folder picker. */
  'fs.listDir': z.object({ dir: path.optional() }).strict(),
  /** Makes a new folder `name` inside `parent` (the folder picker's "New folder"); answers its (empty) listing. */
  'fs.makeDir': z
    .object({
      parent: path,
      name: z
        .string()
        .trim()
        .min(1)
        .max(255)
        .refine((n) => !/[/\\\0]/.test(n) && n !== '.' && n !== '..', 'a folder name, without / or \\'),
    })
    .strict(),
  /** The backbones, with an estimated training time for the current dataset on this machine. */
  'models.list': nothing,
  'training.start': z.object({ config: trainConfigSchema, resumeRunId: runId.optional(), parentRunId: runId.optional() }).strict(),
  'training.cancel': nothing,
  'training.status': nothing,
  'runs.list': nothing,
  'runs.get': z.object({ runId }).strict(),
  /** Names a run (null: back to the name made from its facts); the id (its folder) stays. */
  'runs.rename': z.object({ runId, name: displayName(RUN_NAME_MAX).nullable() }).strict(),
  /** Classify files on the engine's disk with a run's best checkpoint (default: the latest finished run). */
  'classify.files': z.object({ paths: z.array(path).min(1).max(100_000), runId: runId.optional(), topK: z.number().int().min(1).max(20).optional(), tag: classifyTag }).strict(),
  /** Classify images sent by the UI (e.g. dropped into a browser), base64-encoded, at most 20 MB each. */
  'classify.upload': z
    .object({
      images: z.array(z.object({ name: z.string().max(1000), data: z.string().max(28_000_000) })).min(1).max(200),
      runId: runId.optional(),
      topK: z.number().int().min(1).max(20).optional(),
      tag: classifyTag,
    })
    .strict(),
  'export.run': z.object({ runId, outDir: path, onnx: z.boolean().optional() }).strict(),
  /**
   * Where a run's model looks (Grad-CAM) in images on the engine's disk (`paths`) or sent by the UI
   * (`images`, as classify.upload): one map per image for `className` (default: the predicted class).
   */
  'classify.gradCam': z
    .object({
      paths: z.array(path).min(1).max(MAX_GRAD_CAM_IMAGES).optional(),
      images: z.array(z.object({ name: z.string().max(1000), data: z.string().max(28_000_000) })).min(1).max(MAX_GRAD_CAM_IMAGES).optional(),
      runId: runId.optional(),
      className: z.string().min(1).max(200).optional(),
    })
    .strict()
    .refine((p) => (p.paths === undefined) !== (p.images === undefined), 'give either paths (files on the engine’s disk) or images (sent base64-encoded), not both'),
  /** Every backbone × published ImageNet weight set: publisher, size, licence, whether it is on this machine. */
  'weights.list': nothing,
  /** Downloads a weight set (default: the backbone's default downloadable one) into the weights cache; 'weights.progress' events meanwhile. The only network access Refit makes. */
  'weights.get': z.object({ backbone: catalogueId, source: catalogueId.optional() }).strict(),
  /** Stops a backbone's download; what was downloaded is kept for the next try, nothing becomes usable. */
  'weights.cancel': z.object({ backbone: catalogueId }).strict(),
  /** Converts a weight file on the engine's disk (PyTorch .pth, .safetensors) into the weights cache. */
  'weights.import': z.object({ backbone: catalogueId, file: path, source: catalogueId.optional() }).strict(),
} as const;

export type MethodName = keyof typeof methodSchemas;
export type Params<M extends MethodName> = z.infer<(typeof methodSchemas)[M]>;

export interface AppInfo {
  version: string;
  backend: BackendReport;
  host: 'electron' | 'browser';
  project: ProjectView | null;
}

export interface ProjectView {
  dir: string;
  name: string;
  classes: { name: string; folders: string[]; images: number }[];
  exclusions: string[];
}

export interface DatasetView {
  project: ProjectView;
  classes: DatasetReport['classes'];
  problems: FileProblem[];
  warnings: string[];
  totalImages: number;
}

export interface ImagePage {
  className: string;
  total: number;
  images: { file: string; hash: string; width: number; height: number; excluded: boolean }[];
}

export interface DirListing {
  dir: string;
  parent: string | null;
  entries: { name: string; path: string; isDir: boolean }[];
}

export interface ModelCard {
  id: string;
  name: string;
  description: string;
  params: number;
  inputSize: number;
  featureDim: number;
  flops: number;
  weights: readonly string[];
  /** Seconds for a default run of each mode on the current dataset on this machine (rough). */
  estimates: { head: number; finetune: number; full: number } | null;
  /**
   * Peak memory (bytes) a default fine-tune or full run needs training in onnxruntime (the estimate the
   * trainer refuses a run by), and this machine's total: null where unknown.
   */
  memory: { finetune: number; full: number; machine: number } | null;
}

export interface TrainingStatus {
  runId: string | null;
  state: 'idle' | 'running' | 'cancelling';
  last: TrainEvent | null;
}

export interface RunSummary {
  id: string;
  created: string;
  status: RunStatus;
  backbone: string;
  mode: string;
  valAccuracy: number | null;
  epochs: number;
  /** The name the user gave the run, if any. */
  name?: string;
  /** Seconds from the run's start to its last save (absent while it runs). */
  seconds?: number;
}

/**
 * One image's prediction — the one row shape of every classifier (Classify screen, `refit predict`,
 * `refit classify-imagenet`): its labels best first (topK of them), or `error` (then `top` is empty).
 */
export interface ClassifyRow {
  file: string;
  /** Best first; `index` is the class's output index (labels can repeat, e.g. ImageNet's two "crane"s). */
  top: { label: string; probability: number; index?: number }[];
  error?: string;
}

/** One backbone × published ImageNet weight set, and whether it is on this machine. */
export interface WeightSetView {
  backbone: string;
  set: string;
  /** The set 'imagenet' means when present. */
  default: boolean;
  publisher: string;
  /** 'bundled': ships with Refit; 'file': downloaded or imported into the weights cache. */
  delivery: 'bundled' | 'file';
  variant: string;
  top1: number;
  /** The published file's size, when the publisher states it. */
  bytes: number | null;
  licence: string;
  fileName: string;
  /** Where the publisher serves the file (null: only importable). */
  url: string | null;
  present: boolean;
  /** Where it is read from when present. */
  where: string | null;
}

/** A weight set just downloaded or imported into the weights cache. */
export interface StoredWeightSet {
  backbone: string;
  set: string;
  publisher: string;
  tensors: number;
  dir: string;
  /** How the file was checked ("SHA-256 … starts with the published …"). */
  verified: string;
}

export interface Results {
  'app.info': AppInfo;
  'project.open': DatasetView;
  'project.current': DatasetView | null;
  'project.rename': DatasetView;
  'project.move': DatasetView;
  'project.recent': string[];
  'dataset.addFolders': DatasetView;
  'dataset.scan': DatasetView;
  'dataset.renameClass': DatasetView;
  'dataset.removeClass': DatasetView;
  'dataset.setExcluded': DatasetView;
  'dataset.images': ImagePage;
  'dataset.thumbnail': { dataUrl: string };
  'fs.listDir': DirListing;
  'fs.makeDir': DirListing;
  'models.list': ModelCard[];
  'training.start': { runId: string };
  'training.cancel': { cancelled: boolean };
  'training.status': TrainingStatus;
  'runs.list': RunSummary[];
  'runs.get': RunRecord;
  'runs.rename': RunSummary;
  'classify.files': ClassifyRow[];
  'classify.upload': ClassifyRow[];
  'export.run': { outDir: string; files: { path: string; bytes: number }[]; totalBytes: number; usage: string };
  'classify.gradCam': GradCamRow[];
  'weights.list': WeightSetView[];
  'weights.get': StoredWeightSet;
  'weights.cancel': { cancelled: boolean };
  'weights.import': StoredWeightSet;
}

export interface Events {
  /** Scanning progress while folders are added or rescanned. */
  'scan.progress': { done: number; total: number };
  /** Everything the training process reports, tagged with its run. */
  'training.event': { runId: string; event: TrainEvent };
  /** Training ended (completed, cancelled, early-stopped or failed). */
  'training.ended': { runId: string; status: RunStatus | 'failed'; error?: string };
  'export.progress': { phase: string; fraction: number };
  /**
   * A tagged classify.* request's progress: `loading` while the model loads, then the rows computed
   * since the last event (in the order the reply will have), with how many are done of how many.
   * The reply still carries every row.
   */
  'classify.progress': { tag: string; stage: 'loading' | 'classifying'; done: number; total: number; rows: ClassifyRow[] };
  /** A weights download's progress (weights.get). */
  'weights.progress': WeightsProgress;
}

export interface WeightsProgress {
  backbone: string;
  set: string;
  phase: 'downloading' | 'verifying' | 'converting' | 'storing';
  bytes: number;
  total: number | null;
  bytesPerSecond: number;
  etaSeconds: number | null;
  /** 1, then 2… after a dropped connection (each continuing where the last stopped). */
  attempt: number;
}

export type EventName = keyof Events;

export type Request = { id: number; method: MethodName; params: unknown };
export type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; kind?: ErrorKind } };
export type EventMessage = { event: EventName; payload: unknown };

export const requestSchema = z.object({
  id: z.number().int().nonnegative(),
  method: z.enum(Object.keys(methodSchemas) as [MethodName, ...MethodName[]]),
  params: z.unknown(),
});

/** Validates a request's params, with a message naming the method and the field. */
export function parseParams<M extends MethodName>(method: M, params: unknown): Params<M> {
  const parsed = methodSchemas[method].safeParse(params ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'params'}: ${i.message}`).join('; ');
    throw new Error(`${method}: invalid request — ${issues}`);
  }
  return parsed.data as Params<M>;
}

/** What the renderer sees as `window.api` (Electron preload) or its WebSocket client. */
export interface RefitApi {
  call<M extends MethodName>(method: M, params: Params<M>): Promise<Results[M]>;
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
}
