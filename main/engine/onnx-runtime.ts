// A model's forward pass, the one way Refit runs a model forward without gradients (prediction,
// classify-imagenet, the Classify screen, head-mode feature extraction, fine-tuning's frozen trunk).
// createForwardPass decides once, per model, which runtime serves it: onnxruntime-node (6–10× the
// TF.js wasm backend on CPU; the TF.js model is exported in memory with toOnnx, NHWC input, so
// callers hand over the same preprocessed pixels TF.js would take) when it loads and the exporter
// accepts the model, else TF.js — and says why in `reason`. REFIT_FORWARD=tfjs forces TF.js.
// createOnnxForwardPass serves a ready ONNX graph (an export's model.onnx, a cached ImageNet model)
// without TF.js at all: prediction from an export never loads TF.js. TF.js and the exporter are
// imported lazily, only by passes that need them.
// Only the loaded onnxruntime module is cached here; each ForwardPass owns its session (dispose it).
import { rm, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { digestKey, onnxCacheDir, readOnnxCache, writeOnnxCache } from './onnx-cache';

const tfjs = () => import('@tensorflow/tfjs');

type Ort = typeof import('onnxruntime-node');

export interface OnnxRuntimeStatus {
  available: boolean;
  /** Why onnxruntime is not used (not loadable, or disabled). */
  reason?: string;
  version?: string;
  /** Intra-op threads a forward pass through onnxruntime uses by default (the cores available). */
  threads: number;
}

const defaultThreads = (): number => os.availableParallelism();

/** Which runtime a caller asks for: 'auto' = onnxruntime when it can, else TF.js; 'tfjs' = TF.js. */
export type ForwardRuntime = 'auto' | 'tfjs';

/** REFIT_FORWARD=tfjs turns onnxruntime off for the whole process. */
export const FORWARD_ENV = 'REFIT_FORWARD';

/** The reason a ForwardPass gives when the caller asked for TF.js (runtime: 'tfjs'). */
export const TFJS_REQUESTED = 'requested';

let loaded: Promise<{ ort?: Ort; reason?: string }> | undefined;

function loadOrt(): Promise<{ ort?: Ort; reason?: string }> {
  loaded ??= import('onnxruntime-node').then(
    (m) => {
      const ort = ((m as { default?: Ort }).default?.InferenceSession ? (m as { default: Ort }).default : m) as Ort;
      return ort.InferenceSession ? { ort } : { reason: 'onnxruntime-node loaded without InferenceSession' };
    },
    (err: Error) => ({ reason: `onnxruntime-node cannot load: ${err.message.split('\n')[0]}` }),
  );
  return loaded;
}

function disabledReason(): string | undefined {
  const v = process.env[FORWARD_ENV];
  return v && v.toLowerCase() === 'tfjs' ? `${FORWARD_ENV}=${v}` : undefined;
}

/** Whether onnxruntime-node is loadable here (and not turned off), with its version. */
export async function onnxRuntimeStatus(): Promise<OnnxRuntimeStatus> {
  const disabled = disabledReason();
  const { ort, reason } = await loadOrt();
  const version = ort?.env?.versions?.common ?? (ort ? (ort.env as { versions?: { node?: string } }).versions?.node : undefined);
  const threads = defaultThreads();
  if (disabled) return { available: false, reason: `disabled by ${disabled}`, threads, ...(version ? { version } : {}) };
  if (!ort) return { available: false, threads, ...(reason ? { reason } : {}) };
  return { available: true, threads, ...(version ? { version } : {}) };
}

/** A model's forward pass, served by onnxruntime or by TF.js (decided once, when it is created). */
export interface ForwardPass {
  readonly runtime: 'onnxruntime' | 'tfjs';
  /** Why TF.js serves it (undefined when onnxruntime does). */
  readonly reason?: string;
  /** The square input side the model takes (NHWC, 3 channels). */
  readonly inputSize: number;
  /** The model's output shape for one image (without the batch dimension). */
  readonly outputShape: readonly number[];
  /** Preprocessed [n, size, size, 3] images → the model's output (a new tensor; `x` is left alone). */
  run(x: tf.Tensor4D): Promise<tf.Tensor>;
  /** The same on plain arrays: n preprocessed NHWC images → the model's output for them, row-major. */
  runFloat32(batch: Float32Array, n: number): Promise<Float32Array>;
  /** Frees the onnxruntime session (the TF.js model stays the caller's). Runs after dispose() reject. */
  dispose(): void;
}

export interface ForwardPassOptions {
  /** Square side of the model's input. */
  inputSize: number;
  /** onnxruntime intra-op threads; default: the cores available. */
  threads?: number;
  /** Default 'auto'. */
  runtime?: ForwardRuntime;
}

/** "onnxruntime", or "TF.js (why)": which runtime serves a forward pass, for messages. */
export function describeRuntime(pass: Pick<ForwardPass, 'runtime' | 'reason'>): string {
  return pass.runtime === 'onnxruntime' ? 'onnxruntime' : `TF.js${pass.reason ? ` (${pass.reason})` : ''}`;
}

type Session = import('onnxruntime-node').InferenceSession;

/**
 * Session options, each measured with `npm run bench:infer` on the 2-core build machine (README):
 * intra-op threads = the cores (2 threads ≈ 1.9× one), one inter-op thread, full graph optimisation
 * for a graph that is not optimised yet. Memory pattern and the CPU arena stay on (their defaults):
 * turning either off did not help.
 */
function sessionOptions(threads: number, level: 'all' | 'disabled'): import('onnxruntime-node').InferenceSession.SessionOptions {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: level, executionProviders: ['cpu'], logSeverityLevel: 3 };
}

/** Where a graph optimised by this onnxruntime on this CPU may be reused: only here (NCHWc kernels are CPU-specific). */
function optimizedTag(ort: Ort): string {
  return `${ort.env?.versions?.common ?? '?'}|${process.arch}|${os.cpus()[0]?.model ?? '?'}`;
}

/**
 * An onnxruntime session for `bytes`. With `cacheKey` (a digest of what `bytes` were built from), the
 * graph as onnxruntime optimises it (level 'all') is kept in the user's cache, and later sessions load
 * that optimised graph without optimising again (3–4× faster session creation, same results).
 */
async function createSession(ort: Ort, bytes: Uint8Array | (() => Promise<Uint8Array>), threads: number, cacheKey?: string): Promise<Session> {
  const load = async () => (typeof bytes === 'function' ? bytes() : bytes);
  if (!cacheKey) return ort.InferenceSession.create(await load(), sessionOptions(threads, 'all'));
  const key = `opt-${digestKey(cacheKey, optimizedTag(ort))}`;
  const cached = await readOnnxCache(key);
  if ('bytes' in cached) {
    try {
      return await ort.InferenceSession.create(cached.bytes, sessionOptions(threads, 'disabled'));
    } catch {
      await rm(cached.file, { force: true }).catch(() => undefined); // unusable: optimise again below
    }
  }
  const tmp = path.join(onnxCacheDir(), `.${key}.${process.pid}.${Date.now()}.optimizing`);
  let session: Session;
  try {
    await import('node:fs/promises').then((fs) => fs.mkdir(onnxCacheDir(), { recursive: true }));
    session = await ort.InferenceSession.create(await load(), { ...sessionOptions(threads, 'all'), optimizedModelFilePath: tmp });
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
    return ort.InferenceSession.create(await load(), sessionOptions(threads, 'all'));
  }
  try {
    await writeOnnxCache(key, await readFile(tmp), { optimizedFrom: cacheKey, onnxruntime: optimizedTag(ort) });
  } catch {
    // no cache this time
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
  return session;
}

/** An onnxruntime session computing `model`'s output from NHWC pixels, or why there is none. */
async function openSession(model: tf.LayersModel, inputSize: number, threads: number): Promise<{ ort: Ort; session: Session } | { reason: string }> {
  const disabled = disabledReason();
  if (disabled) return { reason: disabled };
  const { ort, reason } = await loadOrt();
  if (!ort) return { reason: reason ?? 'onnxruntime-node cannot load' };
  const { toOnnx } = await import('../../models/onnx-export');
  let bytes: Uint8Array;
  try {
    bytes = toOnnx(model, { inputSize, layout: 'NHWC' });
  } catch (err) {
    return { reason: `ONNX export refused ${model.name}: ${(err as Error).message}` };
  }
  try {
    return { ort, session: await createSession(ort, bytes, threads) };
  } catch (err) {
    return { reason: `onnxruntime could not load the exported ${model.name}: ${(err as Error).message}` };
  }
}

/** A ready ONNX graph for createOnnxForwardPass. */
export interface OnnxGraph {
  /** For messages. */
  name: string;
  /** The graph's bytes, or a function reading them (not called when an optimised copy is cached). */
  bytes: Uint8Array | (() => Promise<Uint8Array>);
  /** Square input side. */
  inputSize: number;
  /** The graph's input layout; the pass always takes NHWC and transposes for an NCHW graph. */
  layout: 'NHWC' | 'NCHW';
  /** Output shape for one image. */
  outputShape: readonly number[];
  /** A digest of the graph's content: its optimised form is then cached (see createSession). */
  cacheKey?: string;
  threads?: number;
}

/**
 * A forward pass straight from an ONNX graph, without TF.js, or why onnxruntime cannot serve it
 * (not loadable, disabled by REFIT_FORWARD=tfjs, or the graph refused).
 */
export async function createOnnxForwardPass(graph: OnnxGraph): Promise<{ forward: ForwardPass } | { reason: string }> {
  const disabled = disabledReason();
  if (disabled) return { reason: disabled };
  const { ort, reason } = await loadOrt();
  if (!ort) return { reason: reason ?? 'onnxruntime-node cannot load' };
  // A failure to read the graph (missing, corrupt) is the caller's error, not a reason to fall back.
  let readError: { err: unknown } | undefined;
  const read = graph.bytes;
  const bytes = typeof read === 'function' ? () => read().catch((err: unknown) => Promise.reject((readError = { err }).err)) : read;
  let session: Session;
  try {
    session = await createSession(ort, bytes, graph.threads ?? defaultThreads(), graph.cacheKey);
  } catch (err) {
    if (readError) throw readError.err;
    return { reason: `onnxruntime could not load ${graph.name}: ${(err as Error).message.split('\n')[0]}` };
  }
  return { forward: sessionPass(ort, session, graph.name, graph.inputSize, graph.outputShape, graph.layout) };
}

/** NHWC → NCHW for n images of size×size×3. */
function toNchw(x: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(x.length);
  const plane = size * size;
  for (let b = 0; b < n; b++) {
    const base = b * plane * 3;
    for (let p = 0; p < plane; p++) {
      const i = base + p * 3;
      out[base + p] = x[i];
      out[base + plane + p] = x[i + 1];
      out[base + 2 * plane + p] = x[i + 2];
    }
  }
  return out;
}

function sessionPass(ort: Ort, session: Session, name: string, inputSize: number, outputShape: readonly number[], layout: 'NHWC' | 'NCHW'): ForwardPass {
  const perImage = inputSize * inputSize * 3;
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  let disposed = false;
  // One run at a time per session: callers pipeline decoding, not inference.
  let queue: Promise<unknown> = Promise.resolve();
  const runFloat32 = (batch: Float32Array, n: number): Promise<Float32Array> => {
    if (disposed) return Promise.reject(new Error(`forward pass of ${name} used after dispose()`));
    if (batch.length !== n * perImage) return Promise.reject(new Error(`expected ${n}×${inputSize}×${inputSize}×3 = ${n * perImage} values, got ${batch.length}`));
    const result = queue.then(async () => {
      const input =
        layout === 'NHWC' ? new ort.Tensor('float32', batch, [n, inputSize, inputSize, 3]) : new ort.Tensor('float32', toNchw(batch, n, inputSize), [n, 3, inputSize, inputSize]);
      const out = await session.run({ [inputName]: input });
      const tensor = out[outputName];
      const data = tensor.data as Float32Array;
      tensor.dispose?.();
      return data;
    });
    queue = result.catch(() => undefined);
    return result;
  };
  return {
    runtime: 'onnxruntime',
    inputSize,
    outputShape,
    runFloat32,
    async run(x) {
      if (x.rank !== 4 || x.shape[1] !== inputSize || x.shape[2] !== inputSize || x.shape[3] !== 3) {
        throw new Error(`forward pass of ${name} takes [n, ${inputSize}, ${inputSize}, 3], got [${x.shape.join(', ')}]`);
      }
      const n = x.shape[0];
      const values = await runFloat32(await x.data<'float32'>(), n);
      return (await tfjs()).tensor(values, [n, ...outputShape]);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      void queue.then(() => session.release()).catch(() => undefined);
    },
  };
}

/**
 * `model`'s forward pass (a TF.js layers model taking [n, inputSize, inputSize, 3]): through
 * onnxruntime when it is available and the exporter accepts the model, else through TF.js with the
 * reason. Never rejects for onnxruntime's sake. The model must outlive the pass; dispose the pass.
 */
export async function createForwardPass(model: tf.LayersModel, options: ForwardPassOptions): Promise<ForwardPass> {
  const { inputSize, threads = defaultThreads(), runtime = 'auto' } = options;
  const outputShape = model.outputs[0].shape.slice(1) as number[];
  if (outputShape.some((d) => d === null)) throw new Error(`model ${model.name} has an output of unknown shape [${model.outputs[0].shape.join(', ')}]`);
  const perImage = inputSize * inputSize * 3;
  let disposed = false;
  const check = (n: number, values: number): void => {
    if (disposed) throw new Error(`forward pass of ${model.name} used after dispose()`);
    if (values !== n * perImage) throw new Error(`expected ${n}×${inputSize}×${inputSize}×3 = ${n * perImage} values, got ${values}`);
  };
  const checkTensor = (x: tf.Tensor4D): void => {
    if (x.rank !== 4 || x.shape[1] !== inputSize || x.shape[2] !== inputSize || x.shape[3] !== 3) {
      throw new Error(`forward pass of ${model.name} takes [n, ${inputSize}, ${inputSize}, 3], got [${x.shape.join(', ')}]`);
    }
    check(x.shape[0], x.size);
  };
  const opened = runtime === 'tfjs' ? { reason: TFJS_REQUESTED } : await openSession(model, inputSize, threads);

  if ('reason' in opened) {
    const tf = await tfjs();
    const predict = (x: tf.Tensor4D) => model.predict(x) as tf.Tensor;
    return {
      runtime: 'tfjs',
      reason: opened.reason,
      inputSize,
      outputShape,
      run: async (x) => {
        checkTensor(x);
        return predict(x);
      },
      runFloat32: async (batch, n) => {
        check(n, batch.length);
        const y = tf.tidy(() => predict(tf.tensor4d(batch, [n, inputSize, inputSize, 3])));
        try {
          return await y.data<'float32'>();
        } finally {
          y.dispose();
        }
      },
      dispose: () => void (disposed = true),
    };
  }
  return sessionPass(opened.ort, opened.session, model.name, inputSize, outputShape, 'NHWC');
}
