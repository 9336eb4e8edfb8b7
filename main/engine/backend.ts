// Chooses the fastest TF.js backend this machine can run, and says why the faster ones were not used.
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from './wasm-grad-kernels';
import { firstLine } from './errors';
import { BACKENDS, type BackendName, type BackendAttempt, type BackendReport } from '../api/backends';

const defaultRequire = createRequire(import.meta.url);

export { BACKENDS, type BackendName, type BackendAttempt, type BackendReport };

const NATIVE_PACKAGE: Record<'node-gpu' | 'node', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

let current: BackendReport | undefined;

/** The user's settings: $XDG_CONFIG_HOME/refit/settings.json (~/.config/refit/settings.json). */
export function settingsFilePath(): string {
  return path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'refit', 'settings.json');
}

/** The "backend" setting, if the settings file exists and sets one; a clear error names the file otherwise. */
async function backendSetting(file: string): Promise<BackendName | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let settings: unknown;
  try {
    settings = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${firstLine(err)})`);
  }
  const value = (settings as { backend?: unknown } | null)?.backend;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`${file}: "backend" must be one of ${BACKENDS.join(', ')}`);
  return parseBackendName(value, `${file}: "backend"`);
}

export function parseBackendName(value: string, field = 'REFIT_BACKEND'): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`${field}: unknown backend "${value}"; expected one of ${BACKENDS.join(', ')}`);
}


async function tryNative(name: 'node-gpu' | 'node', require: NodeJS.Require): Promise<string | undefined> {
  const pkg = NATIVE_PACKAGE[name];
  // Only one of tfjs-node / tfjs-node-gpu may be loaded: both register the 'tensorflow' backend.
  if (tf.findBackend('tensorflow')) {
    return tf.setBackend('tensorflow').then((ok) => (ok ? undefined : 'the tensorflow backend failed to initialise'));
  }
  try {
    require.resolve(pkg);
  } catch {
    return `${pkg} is not installed (its install script downloads libtensorflow, which failed or was skipped)`;
  }
  try {
    require(pkg);
  } catch (err) {
    return `${pkg} is installed but its native library failed to load: ${firstLine(err)}`;
  }
  if (!tf.findBackend('tensorflow')) return `${pkg} loaded but registered no tensorflow backend`;
  const ok = await tf.setBackend('tensorflow');
  return ok ? undefined : `${pkg} loaded but the tensorflow backend failed to initialise`;
}

async function tryBackend(name: BackendName, require: NodeJS.Require): Promise<string | undefined> {
  switch (name) {
    case 'node-gpu':
    case 'node':
      return tryNative(name, require);
    case 'wasm': {
      try {
        if (!(await tf.setBackend('wasm'))) return 'the wasm backend failed to initialise';
      } catch (err) {
        return `the wasm backend failed to initialise: ${firstLine(err)}`;
      }
      registerWasmGradKernels();
      return undefined;
    }
    case 'cpu':
      return (await tf.setBackend('cpu')) ? undefined : 'the cpu backend failed to initialise';
  }
}

function threadsOf(name: BackendName): number {
  // tfjs hard-codes a single thread for wasm in Node; libtensorflow uses every core.
  if (name === 'node' || name === 'node-gpu') return os.availableParallelism();
  return 1;
}

/**
 * Picks node-gpu > node > wasm > cpu, starting from `requested` (or REFIT_BACKEND) when given.
 * Never throws for a missing optional backend: it falls through and records why.
 */
export async function initBackend(
  options: {
    requested?: BackendName;
    /** Folder from which the optional native packages are resolved (default: Refit's own node_modules). */
    resolveFrom?: string;
    /** The user's settings file (default: settingsFilePath()); its "backend" key is a preference. */
    settingsFile?: string;
  } = {},
): Promise<BackendReport> {
  const require = options.resolveFrom ? createRequire(path.join(options.resolveFrom, 'noop.js')) : defaultRequire;
  const env = process.env.REFIT_BACKEND?.trim();
  const requested = options.requested ?? (env ? parseBackendName(env) : await backendSetting(options.settingsFile ?? settingsFilePath()));
  const start = requested ? BACKENDS.indexOf(requested) : 0;
  const attempts: BackendAttempt[] = BACKENDS.slice(0, start).map((name) => ({
    name,
    ok: false,
    reason: `skipped: ${requested} was requested`,
  }));
  for (const name of BACKENDS.slice(start)) {
    const reason = await tryBackend(name, require);
    attempts.push(reason ? { name, ok: false, reason } : { name, ok: true });
    if (!reason) {
      await tf.ready();
      current = {
        name,
        tfBackend: tf.getBackend(),
        accelerator: name === 'node-gpu' ? 'gpu' : 'cpu',
        threads: threadsOf(name),
        attempts,
        ...(requested ? { requested } : {}),
      };
      return current;
    }
  }
  throw new Error(`No TF.js backend could be initialised: ${attempts.map((a) => `${a.name}: ${a.reason}`).join('; ')}`);
}

export function currentBackend(): BackendReport | undefined {
  return current;
}
