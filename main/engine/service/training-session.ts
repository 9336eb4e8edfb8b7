// The one training run in progress, for the engine service (training itself runs in a child process,
// see train-process.ts), the run list, and the model cards with time estimates from a measured
// compute throughput.
import os from 'node:os';
import type { Events, ModelCard, Params, RunSummary, TrainingStatus } from '../../api/contract';
import type { RunRecord, TrainEvent } from '../../api/training';
import { errorText } from '../../api/excerpt';
import { listBackbones } from '../../../models/registry';
import { currentBackend, initBackend } from '../backend';
import { bestThroughput, estimateMemory, estimateSeconds, measureThroughput, type Throughput } from '../estimates';
import { listRuns, readRun } from '../project';
import { summarizeRun } from './run-summary';
import { checkLaunch, launchRun } from '../run-launch';
import type { StartOptions, TrainingHandle } from '../train-process';
import type { ProjectSession } from './project-session';
import { RefitError } from '../../api/errors';

const DISPOSE_CANCEL_TIMEOUT_MS = 10_000;

interface ActiveTraining {
  runId: string;
  state: 'running' | 'cancelling';
  last: TrainEvent | null;
  handle?: TrainingHandle;
  cancelRequested: boolean;
  /** Settles once the run ended and 'training.ended' was emitted. */
  finished?: Promise<void>;
}

export interface TrainingSessionOptions {
  projects: ProjectSession;
  spawn?: StartOptions['spawn'];
  onEvent: (payload: Events['training.event']) => void;
  /** After the run ended; `runId`'s best checkpoint may have changed. */
  onEnded: (payload: Events['training.ended']) => void;
}

export class TrainingSession {
  private active: ActiveTraining | null = null;
  private throughput: Throughput | null = null;
  private measuring: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: TrainingSessionOptions) {}

  private busyError(active: ActiveTraining): Error {
    return new RefitError('busy', `A training run is already in progress (run ${active.runId}): wait until it ends, or cancel it, before starting another`);
  }

  async start(params: Params<'training.start'>): Promise<{ runId: string }> {
    if (this.active) throw this.busyError(this.active);
    const { projects } = this.options;
    const p = projects.require();
    const checked = await checkLaunch({
      projectDir: p.dir,
      config: params.config,
      ...(params.resumeRunId ? { resumeRunId: params.resumeRunId } : {}),
      ...(params.parentRunId ? { parentRunId: params.parentRunId } : {}),
    });
    if (this.active) throw this.busyError(this.active);
    const active: ActiveTraining = { runId: checked.runId, state: 'running', last: null, cancelRequested: false };
    this.active = active; // claimed before the scan: a second start is refused from here on

    try {
      const view = await projects.scan();
      const backend = currentBackend();
      active.handle = await launchRun(checked, p.dir, {
        images: projects.imagesOf(p),
        datasetName: `Project ${p.data.name}`,
        skipped: view.problems.length,
        ...(backend ? { backend } : {}),
        ...(this.options.spawn ? { spawn: this.options.spawn } : {}),
        onEvent: (event) => {
          active.last = event;
          this.options.onEvent({ runId: active.runId, event });
        },
        beforeStart: () => {
          if (this.closed) throw new Error('The Refit engine is shutting down: training was not started');
        },
      });
      if (active.cancelRequested) active.handle.cancel();
    } catch (err) {
      this.active = null;
      throw err;
    }

    const end = (status: Events['training.ended']['status'], error?: string) => {
      if (this.active === active) this.active = null;
      this.options.onEnded({ runId: active.runId, status, ...(error !== undefined ? { error } : {}) });
    };
    active.finished = active.handle.done.then(
      (result) => end(result.status),
      (err) => end('failed', errorText(err)),
    );
    return { runId: active.runId };
  }

  cancel(): { cancelled: boolean } {
    const active = this.active;
    if (!active) return { cancelled: false };
    active.state = 'cancelling';
    if (active.handle) active.handle.cancel();
    else active.cancelRequested = true;
    return { cancelled: true };
  }

  status(): TrainingStatus {
    return { runId: this.active?.runId ?? null, state: this.active?.state ?? 'idle', last: this.active?.last ?? null };
  }

  async runs(): Promise<RunSummary[]> {
    const { runs } = await listRuns(this.options.projects.require().dir);
    return runs.reverse().map(summarizeRun);
  }

  run(runId: string): Promise<RunRecord> {
    return readRun(this.options.projects.require().dir, runId);
  }

  /**
   * Measures the backend's throughput and onnxruntime's (~0.1–0.3 s together) and keeps the best
   * value seen of each: other work on the machine only ever makes a measurement lower, so the maximum
   * over time approaches the real rate. Not re-measured while a training process competes for the CPU.
   */
  private async updateThroughput(): Promise<void> {
    if (this.throughput && this.active) return;
    this.measuring ??= (async () => {
      if (!currentBackend()) await initBackend();
      const measured = await measureThroughput();
      this.throughput = bestThroughput(this.throughput, measured);
    })()
      .catch(() => undefined) // no estimate is better than a failed models.list
      .finally(() => (this.measuring = null));
    await this.measuring;
  }

  /** The backbones, with time estimates for the open project's images on this machine. */
  async models(): Promise<ModelCard[]> {
    const images = this.options.projects.imageCount;
    if (images > 0) await this.updateThroughput();
    const measured = images > 0 ? this.throughput : null;
    return listBackbones().map((info) => ({
      id: info.id,
      name: info.name,
      description: info.description,
      params: info.params,
      inputSize: info.inputSize,
      featureDim: info.featureDim,
      flops: info.flops,
      weights: [...info.weights],
      estimates: measured ? estimateSeconds(info, images, measured) : null,
      memory: withMachine(estimateMemory(info)),
    }));
  }

  /** Cancels a run in progress (killing it if it does not stop within a few seconds); no run starts after this. */
  async close(): Promise<void> {
    this.closed = true;
    const active = this.active;
    if (!active?.handle) return;
    active.handle.cancel();
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      active.finished!.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DISPOSE_CANCEL_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!stopped) {
      active.handle.kill();
      await active.finished;
    }
  }
}

function withMachine(memory: { finetune: number; full: number } | null): ModelCard['memory'] {
  return memory ? { ...memory, machine: os.totalmem() } : null;
}
