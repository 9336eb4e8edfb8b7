// Entry point of the training process (child_process.fork here, Electron's utilityProcess in the app).
// It trains one job and exits; the parent sees progress, problems and the result as messages.
import path from 'node:path';
import { initBackend, parseBackendName } from './backend';
import { runTraining } from './trainer';
import { parentMessageSchema, type ChildMessage } from './train-protocol';
import { runDir } from './project';
import { isWasmOutOfMemory, WASM_OUT_OF_MEMORY } from './errors';

interface Port {
  send(message: ChildMessage): void;
  /** Sends a last message and exits once it is delivered. */
  finish(message: ChildMessage, code: number): void;
  onMessage(handler: (message: unknown) => void): void;
}

/** In Electron's utilityProcess the parent is `process.parentPort` (messages arrive as `{data}`). */
interface ParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
}
const parentPort = (process as { parentPort?: ParentPort }).parentPort;

const port: Port = parentPort
  ? {
      send: (message) => parentPort.postMessage(message),
      // postMessage has no delivery callback; a utility process must exit explicitly.
      finish: (message, code) => {
        parentPort.postMessage(message);
        setTimeout(() => process.exit(code), 200);
      },
      onMessage: (handler) => parentPort.on('message', (event) => handler(event.data)),
    }
  : {
      send: (message) => process.send?.(message),
      finish: (message, code) => {
        if (!process.send) process.exit(code);
        process.send(message, () => process.exit(code));
      },
      onMessage: (handler) => process.on('message', handler),
    };

const abort = new AbortController();
let started = false;

function fail(message: string): void {
  port.finish({ type: 'error', message }, 1);
}

port.onMessage(async (raw) => {
  const parsed = parentMessageSchema.safeParse(raw);
  if (!parsed.success) {
    fail(`training process: invalid message: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return;
  }
  const message = parsed.data;
  if (message.type === 'cancel') {
    abort.abort();
    return;
  }
  if (started) return fail('training process: a job is already running');
  started = true;
  try {
    await initBackend(message.backend ? { requested: parseBackendName(message.backend, 'backend') } : {});
    const record = await runTraining(message.job, { emit: port.send, signal: abort.signal });
    const dir = runDir(message.job.projectDir, record.id);
    port.finish({
      type: 'result',
      runId: record.id,
      status: record.status === 'cancelled' ? 'cancelled' : record.status === 'early-stopped' ? 'early-stopped' : 'completed',
      metrics: record.metrics,
      checkpointDir: record.bestEpoch !== null ? path.join(dir, 'best') : null,
    }, 0);
  } catch (err) {
    fail(isWasmOutOfMemory(err) ? WASM_OUT_OF_MEMORY : err instanceof Error ? err.message : String(err));
  }
});

process.on('disconnect', () => abort.abort());
// Ctrl-C in a terminal reaches the whole process group: the caller turns it into a clean cancel.
process.on('SIGINT', () => {});
