// `refit train`: folders in, a fine-tuned model exported to --out. Training runs in a child process.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { TrainEvent } from '../../api/training';
import { DEFAULT_LEARNING_RATE, TRAIN_DEFAULTS, type TrainConfig } from '../../api/train-config';
import { getBackboneSpec } from '../../../models/catalog';
import { availableWeights } from '../../../models/weights/store';
import { positiveInt, positiveNumber, nonNegativeInt } from '../cli-common';
import { formatDuration, ProgressLine } from '../progress-line';
import { exportProgress } from './export';
import { EXIT_INTERRUPTED, processIO, withInterrupt, type CommandIO } from './io';

interface TrainOptions {
  backbone?: string;
  /** 'imagenet', 'none' or a weight set id (e.g. torchvision-v1; see `refit weights list`). */
  weights?: string;
  mode: TrainConfig['mode'];
  epochs: number;
  batchSize: number;
  lr?: number;
  valSplit: number;
  validation?: string;
  seed: number;
  inputSize?: number;
  augment: boolean;
  patience: number;
  classWeights: boolean;
  head: 'linear' | 'mlp';
  hidden: number;
  dropout: number;
  out: string;
  project?: string;
  resume?: string;
  continue?: string;
  json?: boolean;
  trainer?: 'onnx' | 'tfjs';
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a fraction between 0 and 1 (exclusive), got "${value}"`);
  return n;
}

function dropoutRate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`expected a rate in [0, 1), got "${value}"`);
  return n;
}

/** Where a project lives when --project is not given: a cache folder named after the dataset folders. */
export function defaultProjectDir(folders: readonly string[]): string {
  const key = createHash('sha256')
    .update(folders.map((f) => path.resolve(f)).sort().join('\n'))
    .digest('hex')
    .slice(0, 12);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'refit', 'projects', key);
}

function describeProgress(event: Extract<TrainEvent, { type: 'progress' }>): string {
  const parts: string[] = [event.phase];
  if (event.epoch !== undefined) parts.push(`epoch ${event.epoch}/${event.epochs}`);
  if (event.batch !== undefined) parts.push(`batch ${event.batch}/${event.batches}`);
  if (event.loss !== undefined) parts.push(`loss ${event.loss.toFixed(3)}`);
  if (event.accuracy !== undefined) parts.push(`acc ${(event.accuracy * 100).toFixed(1)}%`);
  if (event.imagesPerSec !== undefined) parts.push(`${event.imagesPerSec.toFixed(1)} img/s`);
  if (event.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(event.etaSeconds)}`);
  if (event.message) parts.push(event.message);
  return parts.join(' · ');
}

export function registerTrain(program: Command, io: CommandIO = processIO): Command {
  const d = TRAIN_DEFAULTS;
  return program
    .command('train')
    .description('Fine-tune a backbone on labelled image folders (one folder per class) and export the model')
    .argument('[folders...]', 'a folder of class folders, or class folders themselves')
    .option('--backbone <id>', 'backbone id (see `refit models`); not needed with --resume')
    .option('--weights <weights>', 'imagenet (the default set on this machine), a weight set from `refit weights list` (e.g. torchvision-v1), or none for random weights (default: imagenet when available)', weightsOption)
    .addOption(new Option('--mode <mode>', 'head: train only a new head on frozen features; finetune: then also the last stage; full: everything').choices(['head', 'finetune', 'full']).default(d.mode))
    .option('--epochs <n>', 'epochs (per phase in finetune mode)', positiveInt, d.epochs)
    .option('--batch-size <n>', 'images per step', positiveInt, d.batchSize)
    .option('--lr <rate>', `Adam learning rate (default: ${DEFAULT_LEARNING_RATE.head} for the head, a tenth of it to fine-tune, ${DEFAULT_LEARNING_RATE.full} full)`, positiveNumber)
    .option('--val-split <fraction>', 'fraction of each class held out for validation', fraction, d.valSplit)
    .option('--validation <folder>', 'a validation folder laid out like the training folders (instead of a split)')
    .option('--seed <n>', 'random seed (split, order, augmentation)', nonNegativeInt, d.seed)
    .option('--input-size <pixels>', 'square input size (default: the backbone’s)', positiveInt)
    .option('--no-augment', 'turn off training-time augmentation (crop, flip, colour jitter)')
    .option('--patience <n>', 'stop after this many epochs without validation-loss improvement', positiveInt, d.patience)
    .option('--no-class-weights', 'do not weight the loss when classes are imbalanced')
    .addOption(new Option('--head <kind>', 'classification head').choices(['linear', 'mlp']).default(d.head))
    .option('--hidden <units>', 'hidden width of the mlp head', positiveInt, d.hidden)
    .option('--dropout <rate>', 'dropout of the mlp head', dropoutRate, d.dropout)
    .option('--out <dir>', 'where to export the trained model', 'refit-model')
    .option('--project <dir>', 'project folder (default: a cache folder named after the dataset folders)')
    .option('--resume <run-id>', 'resume a cancelled or crashed run of the project')
    .option('--continue <run-id>', 'continue training a finished run on the current images and classes')
    .option('--json', 'print JSON lines (progress, epochs, problems) and a final {"type":"result",…} line')
    .addOption(
      new Option('--trainer <engine>', 'the engine that trains fine-tune and full modes (default: onnx on CPU when onnxruntime-node loads, tfjs with a CUDA GPU; also REFIT_TRAINER)').choices(['onnx', 'tfjs']),
    )
    .action(async (folders: string[], options: TrainOptions, command: Command) => {
      const { startBackend } = await import('../cli-common');
      const backend = await startBackend(command);
      const project = await import('../../engine/project');
      const { checkLaunch, launchRun } = await import('../../engine/run-launch');
      const { exportRun } = await import('../../engine/export');

      const emit = (event: object) => options.json && io.stdout(`${JSON.stringify(event)}\n`);
      const line = new ProgressLine(io, { enabled: !options.json });
      const fail = (message: string, runId?: string): never => {
        emit({ type: 'result', status: 'failed', error: message, ...(runId ? { runId } : {}), modelDir: null, metrics: null });
        throw new Error(message);
      };
      /** A problem or warning: a JSON line, or a line on stderr. */
      const notice = (event: Extract<TrainEvent, { type: 'problem' | 'warning' }>) => {
        emit(event);
        if (options.json) return;
        line.clear();
        io.stderr(`${event.type === 'problem' ? `skipped ${event.file}: ${event.reason}` : `warning: ${event.message}`}\n`);
      };

      if (folders.length === 0 && !options.project) fail('give the image folders to train on, or --project DIR of an existing project');
      if (!options.resume && !options.backbone) fail('--backbone is required (see `refit models`)');
      const projectDir = path.resolve(options.project ?? defaultProjectDir(folders));
      // Every flag is checked before any scanning; a resumed run keeps its own settings.
      const checked = await checkLaunch({
        projectDir,
        ...(options.resume ? { resumeRunId: options.resume } : { config: configFromOptions(options) }),
        ...(options.continue ? { parentRunId: options.continue } : {}),
      }).catch((err: Error) => fail(options.resume ? `--resume ${options.resume}: ${err.message}` : err.message.replace(/^backbone: /, '--backbone: ')));
      const { runId } = checked;

      const proj = await project.openOrCreateProject(projectDir, { name: path.basename(folders[0] ?? projectDir) });
      if (folders.length > 0) await project.addSources(proj, folders);
      line.update(`scanning ${folders.join(', ') || projectDir}`);
      const dataset = await project.scanProject(proj, { onProgress: (done, total) => line.status({ label: 'scanning images', done, total, rateUnit: 'img/s' }) });
      line.clear();
      for (const problem of dataset.problems) notice({ type: 'problem', file: problem.file, reason: problem.reason });
      for (const warning of dataset.warnings) notice({ type: 'warning', message: warning });

      const onEvent = (event: TrainEvent) => {
        if (event.type === 'problem' || event.type === 'warning') return notice(event);
        emit(event);
        if (options.json) return;
        if (event.type === 'progress') line.update(describeProgress(event));
        else if (event.type === 'epoch') {
          const r = event.record;
          line.print(
            `epoch ${r.epoch} (${r.phase}): loss ${r.loss.toFixed(3)}, acc ${(r.accuracy * 100).toFixed(1)}%, ` +
              `val loss ${r.valLoss.toFixed(3)}, val acc ${(r.valAccuracy * 100).toFixed(1)}%, ${formatDuration(r.seconds)}`,
          );
        }
      };
      const handle = await launchRun(checked, projectDir, { images: dataset.images, datasetName: folders.join(', ') || projectDir, backend, onEvent, ...(options.trainer ? { trainer: options.trainer } : {}) }).catch((err: Error) =>
        fail(err.message, runId),
      );

      // Ctrl-C cancels within a batch (the run keeps its best checkpoint); a second one stops at once.
      await withInterrupt(
        async (signal) => {
          signal.addEventListener('abort', () => {
            const cancelling = 'cancelling… (Ctrl-C again to stop at once)';
            if (options.json) io.stderr(`${cancelling}\n`);
            else line.print(cancelling);
            handle.cancel();
          });
          try {
            const result = await handle.done.catch((err: Error) => fail(err.message, runId));
            line.clear();
            const runFolder = project.runDir(projectDir, runId);
            if (result.status === 'cancelled' || !result.checkpointDir) {
              emit({ type: 'result', status: result.status, runId, projectDir, modelDir: null, metrics: result.metrics });
              if (!options.json) io.stdout(`training ${result.status}; the run keeps its last checkpoint. Resume with: refit train --project ${projectDir} --resume ${runId}\n`);
              io.setExitCode(result.status === 'cancelled' ? EXIT_INTERRUPTED : 1);
              return;
            }
            const exported = await exportRun(runFolder, path.resolve(options.out), { signal, onProgress: exportProgress(line) }).catch((err: Error) =>
              fail(signal.aborted ? `export cancelled; the trained run is kept (export it with: refit export ${runFolder} --out DIR)` : err.message, runId),
            );
            line.clear();
            emit({ type: 'result', status: result.status, runId, projectDir, modelDir: exported.outDir, metrics: result.metrics });
            if (!options.json) {
              const m = result.metrics!;
              io.stdout(`validation accuracy ${(m.valAccuracy * 100).toFixed(1)}% (best epoch ${m.bestEpoch}); model exported to ${exported.outDir}\n`);
            }
          } finally {
            line.clear();
          }
        },
        { onSecond: () => handle.kill() },
      );
    });
}

function weightsOption(value: string): string {
  if (!/^[a-z0-9][a-z0-9.-]{0,39}$/.test(value)) throw new InvalidArgumentError(`expected imagenet, none or a weight set id such as torchvision-v1, got "${value}"`);
  return value;
}

/** --weights as config fields: a set id means ImageNet weights from that set. */
function weightsConfig(value: string): Pick<TrainConfig, 'weights' | 'weightSet'> {
  if (value === 'imagenet' || value === 'none') return { weights: value };
  return { weights: 'imagenet', weightSet: value };
}

/** The run's config from the flags (checked by checkLaunch). */
function configFromOptions(options: TrainOptions): TrainConfig {
  const spec = (() => {
    try {
      return getBackboneSpec(options.backbone!);
    } catch (err) {
      throw new Error(`--backbone: ${(err as Error).message}`);
    }
  })();
  return {
    backbone: spec.id,
    ...weightsConfig(options.weights ?? (availableWeights(spec.id).includes('imagenet') ? 'imagenet' : 'none')),
    mode: options.mode,
    ...(options.inputSize ? { inputSize: options.inputSize } : {}),
    head: options.head === 'mlp' ? { kind: 'mlp', hidden: options.hidden, dropout: options.dropout } : { kind: 'linear' },
    epochs: options.epochs,
    batchSize: options.batchSize,
    ...(options.lr ? { learningRate: options.lr } : {}),
    valSplit: options.valSplit,
    ...(options.validation ? { validationFolder: path.resolve(options.validation) } : {}),
    seed: options.seed,
    augment: options.augment,
    patience: options.patience,
    classWeights: options.classWeights,
  };
}
