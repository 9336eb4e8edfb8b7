// Runs a training job in a separate process, so that a crash or out-of-memory in training cannot take
// the caller (the app, the CLI, the browser host) or the project down.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RunRecord, TrainEvent } from '../api/training';
import { childMessageSchema } from './train-protocol';
import type { TrainJob } from './train-protocol';
import { readRun, writeRun } from './project';

export type TrainResult = Extract<TrainEvent, { type: 'result' }>;

export interface TrainingHandle {
  /** Stops within one batch; the run keeps its last good checkpoint and is marked cancelled. */
  cancel(): void;
  /** Kills the process at once (as a crash would). */
  kill(): void;
  readonly pid: number | undefined;
  readonly done: Promise<TrainResult>;
}

export interface StartOptions {
  onEvent?: (event: TrainEvent) => void;
  backend?: string;
  /** How the process is made; the desktop app passes one built on Electron's utilityProcess. */
  spawn?: () => ChildProcess;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The training process: the compiled worker beside this module when it runs from the compiled CLI
 * (bin/cli-build.mjs), else the TypeScript worker through tsx's loader (the packaged app bundles it).
 */
function forkWorker(): ChildProcess {
  const compiled = path.join(here, 'train-worker.mjs');
  if (existsSync(compiled)) return fork(compiled, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const loader = pathToFileURL(path.join(tsxDir, 'dist', 'loader.mjs')).href;
  return fork(path.join(here, 'train-worker.ts'), [], {
    execArgv: ['--import', loader],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') return 'was killed (SIGKILL — often the system running out of memory)';
  if (signal) return `was stopped by ${signal}`;
  if (code === 134) return 'aborted (exit code 134 — often out of memory in the compute backend)';
  return `exited with code ${code}`;
}

/** Marks a run whose process died as failed, unless it already recorded an outcome. */
async function markCrashed(job: TrainJob, reason: string): Promise<void> {
  let record: RunRecord;
  try {
    record = await readRun(job.projectDir, job.runId);
  } catch {
    return; // the process died before it wrote run.json: nothing to mark
  }
  if (record.status !== 'running') return;
  await writeRun(job.projectDir, { ...record, status: 'failed', error: reason, updated: new Date().toISOString() });
}

export function startTraining(job: TrainJob, options: StartOptions = {}): TrainingHandle {
  const child = (options.spawn ?? forkWorker)();
  let result: TrainResult | undefined;
  let error: string | undefined;

  const done = new Promise<TrainResult>((resolve, reject) => {
    let settled = false;
    // The run did not record its own end: mark it failed so the project never shows it as running.
    const crashed = (reason: string) => {
      if (settled) return;
      settled = true;
      markCrashed(job, reason).then(
        () => reject(new Error(`${reason}. The project is intact; the run can be resumed from its last checkpoint.`)),
        () => reject(new Error(reason)),
      );
    };
    child.on('message', (raw) => {
      const parsed = childMessageSchema.safeParse(raw);
      if (!parsed.success) {
        child.kill('SIGKILL');
        crashed(`the training process sent an invalid message (${parsed.error.issues[0]?.message}) and was stopped`);
        return;
      }
      const event = parsed.data as TrainEvent;
      if (event.type === 'result') result = event;
      else if (event.type === 'error') error = event.message;
      options.onEvent?.(event);
    });
    // 'error' may come without 'exit' (the process could not be started at all).
    child.on('error', (err) => {
      if (child.pid === undefined) crashed(`could not start the training process: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      if (settled) return;
      if (result) {
        settled = true;
        return resolve(result);
      }
      if (error) {
        settled = true;
        return reject(new Error(error));
      }
      crashed(`the training process ${describeExit(code, signal)}`);
    });
  });

  child.send({ type: 'start', job, ...(options.backend ? { backend: options.backend } : {}) });
  return {
    cancel: () => {
      if (child.connected) child.send({ type: 'cancel' });
    },
    kill: () => child.kill('SIGKILL'),
    get pid() {
      return child.pid;
    },
    done,
  };
}
