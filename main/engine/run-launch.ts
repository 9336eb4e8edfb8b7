// Starting a training run, the one way every host does it: `refit train` and the engine service
// (the app's and the browser host's training.start) both call checkLaunch, then launchRun. No TF.js
// here: the run itself happens in the training process (train-process.ts → train-worker.ts).
import path from 'node:path';
import type { BackendReport } from '../api/backends';
import type { DatasetImage } from '../api/dataset';
import type { TrainEvent } from '../api/training';
import { resolveConfig, type ResolvedTrainConfig, type TrainConfig } from '../api/train-config';
import { getBackboneSpec } from '../../models/catalog';
import { availableWeights, resolveWeightSet } from '../../models/weights/store';
import { scanDataset } from './dataset-scan';
import { classSourcesFromFolders } from './dataset-sources';
import { newRunId, readRun } from './project';
import { startTraining, type StartOptions, type TrainingHandle } from './train-process';
import type { TrainJob } from './train-protocol';
import type { TrainerRequest } from './training/train-engine';
import { RefitError } from '../api/errors';

export interface LaunchRequest {
  projectDir: string;
  /** The settings of a new run (a resumed run keeps its own; this is then ignored). */
  config?: TrainConfig;
  /** Resume this cancelled or crashed run. */
  resumeRunId?: string;
  /** Start from the best checkpoint of this finished run (after adding images or classes). */
  parentRunId?: string;
}

export interface CheckedLaunch {
  runId: string;
  /** The config as the run records it (a validation folder made absolute). */
  config: TrainConfig;
  resolved: ResolvedTrainConfig;
  resume: boolean;
  parentRunId?: string;
}

/**
 * Everything that can be refused before any scanning: a bad backbone, size or weights choice, a run to
 * resume or continue that does not exist. Errors name the field or the run.
 */
export async function checkLaunch(request: LaunchRequest): Promise<CheckedLaunch> {
  const { projectDir, resumeRunId, parentRunId } = request;
  let config: TrainConfig;
  if (resumeRunId) {
    config = (await readRun(projectDir, resumeRunId)).config;
  } else {
    if (!request.config) throw new Error('config: a new run needs a training config');
    config = request.config;
  }
  let spec;
  try {
    spec = getBackboneSpec(config.backbone);
  } catch (err) {
    throw new Error(`backbone: ${(err as Error).message}`);
  }
  // What the backbone can start from on this machine: bundled weights and sets imported into the weights cache.
  const resolved = resolveConfig(config, { ...spec, weights: availableWeights(spec.id) });
  if (resolved.weights === 'imagenet') {
    try {
      resolveWeightSet(spec.id, resolved.weightSet ?? 'imagenet');
    } catch (err) {
      throw new Error(`weights: ${(err as Error).message}`);
    }
  }
  if (parentRunId) await readRun(projectDir, parentRunId);
  if (config.validationFolder) config = { ...config, validationFolder: path.resolve(config.validationFolder) };
  return { runId: resumeRunId ?? newRunId(), config, resolved, resume: !!resumeRunId, ...(parentRunId ? { parentRunId } : {}) };
}

/** The warning for training every layer without a GPU, or null. */
export function cpuFullModeWarning(config: Pick<TrainConfig, 'mode' | 'backbone'>, backend: BackendReport | undefined): string | null {
  if (config.mode !== 'full' || !backend || backend.accelerator === 'gpu') return null;
  return `Full mode trains every layer of ${getBackboneSpec(config.backbone).name}; on this ${backend.name} (CPU) backend that is very slow — head or fine-tune mode is the practical choice without a GPU`;
}

export interface LaunchOptions {
  /** The training dataset's usable images (the scan's problems already removed) and what to call it in errors. */
  images: DatasetImage[];
  datasetName: string;
  /** Files of the dataset the scan skipped (for the "no usable images" message). */
  skipped?: number;
  backend?: BackendReport;
  spawn?: StartOptions['spawn'];
  /** Every event of the run, from the validation folder's scan to the training process's result. */
  onEvent: (event: TrainEvent) => void;
  /** Checked just before the training process starts (e.g. the host shutting down meanwhile). */
  beforeStart?: () => void;
  /** Forces the network phase's engine (`refit train --trainer`). */
  trainer?: TrainerRequest;
}

/**
 * Scans the validation folder (if any), warns about full mode on a CPU, and starts the training
 * process. Problems of the validation folder are reported as 'problem' events, its warnings as
 * 'warning' events; a validation folder without usable images is an error.
 */
export async function launchRun(checked: CheckedLaunch, projectDir: string, options: LaunchOptions): Promise<TrainingHandle> {
  const { config, runId } = checked;
  const { images, onEvent } = options;
  if (images.length === 0) {
    const skipped = options.skipped ? ` (${options.skipped} skipped)` : '';
    throw new RefitError('no-images', `${options.datasetName} has no usable images${skipped}: add folders of images first`);
  }
  let validation: DatasetImage[] | undefined;
  if (config.validationFolder) {
    const folder = config.validationFolder;
    const scanned = await scanDataset(await classSourcesFromFolders([folder]));
    for (const problem of scanned.problems) onEvent({ type: 'problem', file: problem.file, reason: problem.reason });
    for (const warning of scanned.warnings) onEvent({ type: 'warning', message: `validation folder: ${warning}` });
    if (scanned.images.length === 0) throw new Error(`The validation folder ${folder} has no usable images: choose another folder or use a validation split`);
    validation = scanned.images;
  }
  const warning = cpuFullModeWarning(config, options.backend);
  if (warning) onEvent({ type: 'warning', message: warning });
  const job: TrainJob = {
    projectDir,
    runId,
    config,
    images,
    ...(validation ? { validation } : {}),
    ...(checked.resume ? { resume: true } : {}),
    ...(checked.parentRunId ? { parentRunId: checked.parentRunId } : {}),
    ...(options.trainer ? { trainer: options.trainer } : {}),
  };
  options.beforeStart?.();
  return startTraining(job, {
    onEvent,
    ...(options.backend ? { backend: options.backend.name } : {}),
    ...(options.spawn ? { spawn: options.spawn } : {}),
  });
}
