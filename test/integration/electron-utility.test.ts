// Training in a utilityProcess: the adapter (main/app/utility-training.ts) that gives startTraining its
// ChildProcess-like surface, and the real training worker talking through `process.parentPort`.
// 'electron' is mocked: its utilityProcess.fork is played by a real Node process whose parentPort
// behaves like Electron's (messages arrive as {data}, queued until a 'message' listener exists).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

/** A UtilityProcess stand-in over a real child process (what Electron's wrapper does over its service process). */
class FakeUtilityProcess extends EventEmitter {
  exited = false;
  constructor(readonly child: ChildProcess) {
    super();
    child.on('spawn', () => this.emit('spawn'));
    child.on('message', (message) => this.emit('message', message));
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.emit('exit', code ?? (signal ? 1 : 0)); // a utility process reports a code only
    });
  }
  get pid() {
    return this.exited ? undefined : this.child.pid;
  }
  postMessage(message: unknown) {
    if (this.exited) throw new Error('postMessage after exit');
    this.child.send(message as never);
  }
  kill() {
    return this.child.kill('SIGTERM');
  }
}

const forks: { modulePath: string; args: string[]; options: Record<string, unknown> }[] = [];
const tsxLoader = pathToFileURL(path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;

vi.mock('electron', () => ({
  utilityProcess: {
    fork: (modulePath: string, args: string[] = [], options: Record<string, unknown> = {}) => {
      forks.push({ modulePath, args, options });
      return new FakeUtilityProcess(fork(modulePath, args, { execArgv: ['--import', tsxLoader], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    },
  },
}));

const { utilityProcess } = await import('electron');
const { UtilityChild, forkTrainingProcess } = await import('../../main/app/utility-training');
const { startTraining } = await import('../../main/engine/train-process');

let tmp: string;
let shim: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-electron-utility-'));
  // Entry of the "utility process": installs an Electron-like process.parentPort, then runs the real worker.
  shim = path.join(tmp, 'utility-entry.mjs');
  const worker = pathToFileURL(path.resolve('main/engine/train-worker.ts')).href;
  await writeFile(
    shim,
    `import { EventEmitter } from 'node:events';
const port = new EventEmitter();
const queue = [];
let started = false;
const send = process.send.bind(process);
port.postMessage = (message) => send(message);
port.on('newListener', (event) => {
  if (event !== 'message' || started) return;
  started = true;
  setImmediate(() => { for (const data of queue.splice(0)) port.emit('message', { data }); });
});
process.on('message', (data) => (started ? port.emit('message', { data }) : queue.push(data)));
process.parentPort = port;
process.send = undefined; // a utility process has no Node IPC channel: the worker must use parentPort
await import(${JSON.stringify(worker)});
`,
  );
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the utilityProcess adapter', () => {
  it('forks the worker as a named utility process and queues messages until it has spawned', () => {
    const proc = new EventEmitter() as EventEmitter & { pid?: number; postMessage: ReturnType<typeof vi.fn>; kill: ReturnType<typeof vi.fn> };
    proc.postMessage = vi.fn();
    proc.kill = vi.fn(() => true);
    const fakeModule = { fork: vi.fn(() => proc) };
    const child = forkTrainingProcess(fakeModule as never, '/app/.vite/build/train-worker.cjs');
    expect(fakeModule.fork).toHaveBeenCalledWith('/app/.vite/build/train-worker.cjs', [], { serviceName: 'Refit training', stdio: 'inherit' });

    expect(child.connected).toBe(true);
    expect(child.send({ type: 'cancel' })).toBe(true);
    expect(proc.postMessage).not.toHaveBeenCalled();
    proc.emit('spawn');
    expect(proc.postMessage).toHaveBeenCalledWith({ type: 'cancel' });
    child.send({ type: 'cancel', n: 2 } as never);
    expect(proc.postMessage).toHaveBeenLastCalledWith({ type: 'cancel', n: 2 });

    const messages: unknown[] = [];
    child.on('message', (m) => messages.push(m));
    proc.emit('message', { type: 'log', message: 'hello' });
    expect(messages).toEqual([{ type: 'log', message: 'hello' }]);

    const errors: Error[] = [];
    child.on('error', (e) => errors.push(e));
    proc.emit('error', 'FatalError', 'v8::ToLocalChecked', '{}');
    expect(errors[0].message).toMatch(/FatalError in the training process/);

    const exits: unknown[][] = [];
    child.on('exit', (...a) => exits.push(a));
    proc.emit('exit', 3);
    expect(exits).toEqual([[3, null]]);
    expect(child.connected).toBe(false);
    expect(child.send({ type: 'cancel' })).toBe(false); // never posts to an exited process
    expect(proc.postMessage).toHaveBeenCalledTimes(2);
    expect(child.kill()).toBe(false);
  });

  it('kill("SIGKILL") kills at once and reports the signal; a plain kill() asks the process to stop', async () => {
    const sleeper = spawn('sleep', ['30']);
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    const proc = Object.assign(new EventEmitter(), { pid: sleeper.pid, postMessage: vi.fn(), kill: vi.fn(() => true) });
    const child = new UtilityChild(proc as never);
    const exits: unknown[][] = [];
    child.on('exit', (...a) => exits.push(a));
    const gone = new Promise<NodeJS.Signals | null>((resolve) => sleeper.once('exit', (_code, signal) => resolve(signal)));
    expect(child.kill('SIGKILL')).toBe(true);
    expect(await gone).toBe('SIGKILL');
    expect(proc.kill).not.toHaveBeenCalled();
    proc.emit('exit', 0);
    expect(exits).toEqual([[null, 'SIGKILL']]);

    const other = Object.assign(new EventEmitter(), { pid: undefined, postMessage: vi.fn(), kill: vi.fn(() => true) });
    const graceful = new UtilityChild(other as never);
    expect(graceful.kill()).toBe(true);
    expect(other.kill).toHaveBeenCalledOnce();
  });
});

describe('the training worker in a utility process', () => {
  it('receives the job through process.parentPort and answers through it; startTraining sees the outcome', async () => {
    forks.length = 0;
    const job = { projectDir: tmp, runId: 'r-utility', config: { backbone: 'resnet18' }, images: 'not a list' };
    const events: unknown[] = [];
    const handle = startTraining(job as never, { spawn: () => forkTrainingProcess(utilityProcess, shim), onEvent: (e) => events.push(e) });
    await expect(handle.done).rejects.toThrow(/^training process: invalid message: .*job/);
    expect(forks).toHaveLength(1);
    expect(forks[0]).toMatchObject({ modulePath: shim, args: [], options: { serviceName: 'Refit training' } });
    expect(events).toEqual([expect.objectContaining({ type: 'error' })]);
  });

  it('a cancel that arrives before the start is harmless, and the process can still be killed', async () => {
    const child = forkTrainingProcess(utilityProcess, shim);
    const exit = new Promise<unknown[]>((resolve) => child.once('exit', (...a) => resolve(a)));
    child.send({ type: 'cancel' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(child.connected).toBe(true);
    child.kill('SIGKILL');
    expect(await exit).toEqual([null, 'SIGKILL']);
  });
});
