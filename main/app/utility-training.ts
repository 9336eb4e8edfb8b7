// Training in an Electron utilityProcess: adapts it to the part of ChildProcess that the engine's
// startTraining uses (send, 'message', 'exit', 'error', kill, pid, connected), so the engine stays
// free of 'electron' and the same protocol runs under child_process.fork elsewhere.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { ForkOptions, UtilityProcess } from 'electron';

export interface UtilityProcessModule {
  fork(modulePath: string, args?: string[], options?: ForkOptions): UtilityProcess;
}

/** A ChildProcess-like view of a utility process. */
export class UtilityChild extends EventEmitter {
  private spawned = false;
  private exited = false;
  private killedWith: NodeJS.Signals | null = null;
  private queue: unknown[] = [];

  constructor(private readonly proc: UtilityProcess) {
    super();
    proc.on('spawn', () => {
      this.spawned = true;
      for (const message of this.queue.splice(0)) proc.postMessage(message);
    });
    proc.on('message', (message: unknown) => this.emit('message', message));
    // A utility process reports an exit code only; a kill we made is reported as that signal.
    proc.on('exit', (code: number) => {
      this.exited = true;
      this.queue = [];
      this.emit('exit', this.killedWith ? null : code, this.killedWith);
    });
    proc.on('error', (type: string, location: string) => this.emit('error', new Error(`${type} in the training process (${location})`)));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** True until the process exits (messages sent before it has started are queued). */
  get connected(): boolean {
    return !this.exited;
  }

  send(message: unknown): boolean {
    if (this.exited) return false; // posting to an exited utility process can crash older Electrons
    if (this.spawned) this.proc.postMessage(message);
    else this.queue.push(message);
    return true;
  }

  kill(signal?: NodeJS.Signals | number): boolean {
    if (this.exited) return false;
    const pid = this.proc.pid;
    if (signal === 'SIGKILL' && pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL'); // "kill at once": utilityProcess.kill() only sends SIGTERM
        this.killedWith = 'SIGKILL';
        return true;
      } catch {
        // already gone: fall through to the graceful kill
      }
    }
    this.killedWith = 'SIGTERM';
    return this.proc.kill();
  }
}

/** Starts the training worker (the bundled main/engine/train-worker.ts) in a utility process. */
export function forkTrainingProcess(utilityProcess: UtilityProcessModule, workerPath: string): ChildProcess {
  const proc = utilityProcess.fork(workerPath, [], { serviceName: 'Refit training', stdio: 'inherit' });
  return new UtilityChild(proc) as unknown as ChildProcess;
}
