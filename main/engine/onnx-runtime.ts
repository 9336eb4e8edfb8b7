// A model's forward pass, the one way Refit runs a model forward without gradients (prediction,
// classify-imagenet, the Classify screen, head-mode feature extraction, fine-tuning's frozen trunk).
// createForwardPass decides once, per model, which runtime serves it: onnxruntime-node (6–10× the
// TF.js wasm backend on CPU; the TF.js model is exported in memory with toOnnx, NHWC input, so
// callers hand over the same preprocessed pixels TF.js would take) when it loads and the exporter
// accepts the model, else TF.js — and says why in `reason`. REFIT_FORWARD=tfjs forces TF.js.
// Only the loaded onnxruntime module is cached here; each ForwardPass owns its session (dispose it).
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { toOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../models/onnx-export';

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

/** An onnxruntime session computing `model`'s output from NHWC pixels, or why there is none. */
async function openSession(model: tf.LayersModel, inputSize: number, threads: number): Promise<{ ort: Ort; session: Session } | { reason: string }> {
  const disabled = disabledReason();
  if (disabled) return { reason: disabled };
  const { ort, reason } = await loadOrt();
  if (!ort) return { reason: reason ?? 'onnxruntime-node cannot load' };
  let bytes: Uint8Array;
  try {
    bytes = toOnnx(model, { inputSize, layout: 'NHWC' });
  } catch (err) {
    return { reason: `ONNX export refused ${model.name}: ${(err as Error).message}` };
  }
  try {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
    });
    return { ort, session };
  } catch (err) {
    return { reason: `onnxruntime could not load the exported ${model.name}: ${(err as Error).message}` };
  }
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

  const { ort, session } = opened;
  // One run at a time per session: callers pipeline decoding, not inference.
  let queue: Promise<unknown> = Promise.resolve();
  const runFloat32 = (batch: Float32Array, n: number): Promise<Float32Array> => {
    try {
      check(n, batch.length);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = queue.then(async () => {
      const input = new ort.Tensor('float32', batch, [n, inputSize, inputSize, 3]);
      const out = await session.run({ [ONNX_INPUT_NAME]: input });
      const tensor = out[ONNX_OUTPUT_NAME];
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
      checkTensor(x);
      const n = x.shape[0];
      return tf.tensor(await runFloat32(await x.data<'float32'>(), n), [n, ...outputShape]);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      void queue.then(() => session.release()).catch(() => undefined);
    },
  };
}
