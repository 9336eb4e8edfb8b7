// `refit train`: folders in, a fine-tuned model exported to --out. Training runs in a child process.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { TrainConfig, TrainEvent } from '../../api/training';
import { positiveInt, positiveNumber, nonNegativeInt } from '../cli-common';
import { formatDuration, ProgressLine } from '../progress-line';
import { exportProgress } from './export';
import { processIO } from './io';

interface TrainOptions {
  backbone?: string;
  weights?: 'imagenet' | 'none';
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

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('Fine-tune a backbone on labelled image folders (one folder per class) and export the model')
    .argument('[folders...]', 'a folder of class folders, or class folders themselves')
    .option('--backbone <id>', 'backbone id (see `refit models`); not needed with --resume')
    .addOption(new Option('--weights <weights>', 'start from ImageNet weights or random ones (default: imagenet when available)').choices(['imagenet', 'none']))
    .addOption(new Option('--mode <mode>', 'head: train only a new head on frozen features; finetune: then also the last stage; full: everything').choices(['head', 'finetune', 'full']).default('head'))
    .option('--epochs <n>', 'epochs (per phase in finetune mode)', positiveInt, 10)
    .option('--batch-size <n>', 'images per step', positiveInt, 16)
    .option('--lr <rate>', 'Adam learning rate (default: 1e-3 for the head, a tenth of it to fine-tune, 1e-4 full)', positiveNumber)
    .option('--val-split <fraction>', 'fraction of each class held out for validation', fraction, 0.2)
    .option('--validation <folder>', 'a validation folder laid out like the training folders (instead of a split)')
    .option('--seed <n>', 'random seed (split, order, augmentation)', nonNegativeInt, 42)
    .option('--input-size <pixels>', 'square input size (default: the backbone’s)', positiveInt)
    .option('--no-augment', 'turn off training-time augmentation (crop, flip, colour jitter)')
    .option('--patience <n>', 'stop after this many epochs without validation-loss improvement', positiveInt, 5)
    .option('--no-class-weights', 'do not weight the loss when classes are imbalanced')
    .addOption(new Option('--head <kind>', 'classification head').choices(['linear', 'mlp']).default('linear'))
    .option('--hidden <units>', 'hidden width of the mlp head', positiveInt, 256)
    .option('--dropout <rate>', 'dropout of the mlp head', dropoutRate, 0.2)
    .option('--out <dir>', 'where to export the trained model', 'refit-model')
    .option('--project <dir>', 'project folder (default: a cache folder named after the dataset folders)')
    .option('--resume <run-id>', 'resume a cancelled or crashed run of the project')
    .option('--continue <run-id>', 'continue training a finished run on the current images and classes')
    .option('--json', 'print JSON lines (progress, epochs, problems) and a final {"type":"result",…} line')
    .action(async (folders: string[], options: TrainOptions, command: Command) => {
      const { startBackend } = await import('../cli-common');
      const backend = await startBackend(command);
      const project = await import('../../engine/project');
      const { startTraining } = await import('../../engine/train-process');
      const { exportRun } = await import('../../engine/export');
      const { getBackbone } = await import('../../../models/registry');
      const { resolveConfig } = await import('../../engine/trainer');

      const emit = (event: object) => options.json && console.log(JSON.stringify(event));
      const line = new ProgressLine(processIO, { enabled: !options.json });
      const fail = (message: string, runId?: string): never => {
        emit({ type: 'result', status: 'failed', error: message, ...(runId ? { runId } : {}), modelDir: null, metrics: null });
        throw new Error(message);
      };

      if (folders.length === 0 && !options.project) fail('give the image folders to train on, or --project DIR of an existing project');
      const projectDir = path.resolve(options.project ?? defaultProjectDir(folders));
      // A resumed run keeps its own settings; otherwise the flags are checked before any scanning.
      let config: TrainConfig;
      if (options.resume) {
        config = (await project.readRun(projectDir, options.resume).catch((err: Error) => fail(`--resume ${options.resume}: ${err.message}`))).config;
      } else {
        if (!options.backbone) fail('--backbone is required (see `refit models`)');
        const info = (() => {
          try {
            return getBackbone(options.backbone!);
          } catch (err) {
            return fail(`--backbone: ${(err as Error).message}`);
          }
        })();
        config = {
          backbone: info.id,
          weights: options.weights ?? (info.weights.includes('imagenet') ? 'imagenet' : 'none'),
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
        try {
          resolveConfig(config);
        } catch (err) {
          fail((err as Error).message);
        }
      }
      const info = getBackbone(config.backbone);

      const proj = await project.openOrCreateProject(projectDir, { name: path.basename(folders[0] ?? projectDir) });
      if (folders.length > 0) await project.addSources(proj, folders);

      const report = (label: string, problems: { file: string; reason: string }[], warnings: string[]) => {
        for (const problem of problems) {
          emit({ type: 'problem', file: problem.file, reason: problem.reason });
          if (!options.json) console.error(`skipped ${label}${problem.file}: ${problem.reason}`);
        }
        for (const warning of warnings) {
          emit({ type: 'warning', message: `${label}${warning}` });
          if (!options.json) console.error(`warning: ${label}${warning}`);
        }
      };
      line.update(`scanning ${folders.join(', ') || projectDir}`);
      const dataset = await project.scanProject(proj, { onProgress: (done, total) => line.status({ label: 'scanning images', done, total, rateUnit: 'img/s' }) });
      line.clear();
      report('', dataset.problems, dataset.warnings);
      let validation;
      if (config.validationFolder) {
        const { classSourcesFromFolders } = await import('../../engine/dataset-sources');
        const { scanDataset } = await import('../../engine/dataset-scan');
        const scanned = await scanDataset(await classSourcesFromFolders([config.validationFolder]));
        report('validation: ', scanned.problems, scanned.warnings);
        validation = scanned.images;
      }
      if (config.mode === 'full' && backend.accelerator !== 'gpu') {
        const warning = `full mode trains every layer of ${info.name}; on this ${backend.name} (CPU) backend that is very slow — head or finetune mode is the practical choice without a GPU`;
        emit({ type: 'warning', message: warning });
        if (!options.json) console.error(`warning: ${warning}`);
      }

      const runId = options.resume ?? project.newRunId();
      const handle = startTraining(
        {
          projectDir,
          runId,
          config,
          images: dataset.images,
          ...(validation ? { validation } : {}),
          ...(options.resume ? { resume: true } : {}),
          ...(options.continue ? { parentRunId: options.continue } : {}),
        },
        {
          backend: backend.name,
          onEvent: (event) => {
            emit(event);
            if (options.json) return;
            if (event.type === 'progress') line.update(describeProgress(event));
            else if (event.type === 'epoch') {
              const r = event.record;
              line.print(
                `epoch ${r.epoch} (${r.phase}): loss ${r.loss.toFixed(3)}, acc ${(r.accuracy * 100).toFixed(1)}%, ` +
                  `val loss ${r.valLoss.toFixed(3)}, val acc ${(r.valAccuracy * 100).toFixed(1)}%, ${formatDuration(r.seconds)}`,
              );
            } else if (event.type === 'problem') line.print(`skipped ${event.file}: ${event.reason}`);
            else if (event.type === 'warning') line.print(`warning: ${event.message}`);
          },
        },
      );
      const exportAbort = new AbortController();
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts === 1) {
          const notice = 'cancelling… (Ctrl-C again to stop at once)';
          if (options.json) console.error(notice);
          else line.print(notice);
          handle.cancel();
          exportAbort.abort();
        } else handle.kill();
      };
      process.on('SIGINT', onSigint);
      try {
        const result = await handle.done.catch((err: Error) => fail(err.message, runId));
        line.clear();
        const runFolder = project.runDir(projectDir, runId);
        if (result.status === 'cancelled' || !result.checkpointDir) {
          const message = `training ${result.status}; the run keeps its last checkpoint. Resume with: refit train --project ${projectDir} --resume ${runId}`;
          emit({ type: 'result', status: result.status, runId, projectDir, modelDir: null, metrics: result.metrics });
          if (!options.json) console.log(message);
          process.exitCode = result.status === 'cancelled' ? 130 : 1;
          return;
        }
        const exported = await exportRun(runFolder, path.resolve(options.out), { signal: exportAbort.signal, onProgress: exportProgress(line) }).catch((err: Error) =>
          fail(exportAbort.signal.aborted ? `export cancelled; the trained run is kept (export it with: refit export ${runFolder} --out DIR)` : err.message, runId),
        );
        line.clear();
        emit({ type: 'result', status: result.status, runId, projectDir, modelDir: exported.outDir, metrics: result.metrics });
        if (!options.json) {
          const m = result.metrics!;
          console.log(`validation accuracy ${(m.valAccuracy * 100).toFixed(1)}% (best epoch ${m.bestEpoch}); model exported to ${exported.outDir}`);
        }
      } finally {
        process.off('SIGINT', onSigint);
        line.clear();
      }
    });
}
