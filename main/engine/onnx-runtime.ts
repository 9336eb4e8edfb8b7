// Forward passes through onnxruntime-node (6–10× the TF.js wasm backend on CPU): the TF.js model
// is exported in memory with toOnnx (NHWC input, so callers hand over the same preprocessed pixels
// TF.js would take) and run in an InferenceSession. When onnxruntime-node cannot load, or the model
// has a layer the exporter refuses, createOnnxForward returns null and callers use TF.js.
// Only the loaded module is cached here; sessions belong to their callers (dispose them).
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { toOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../models/onnx-export';

type Ort = typeof import('onnxruntime-node');

export interface OnnxRuntimeStatus {
  available: boolean;
  /** Why onnxruntime is not used (not loadable, disabled, or the last model it refused). */
  reason?: string;
  version?: string;
}

export interface OnnxForward {
  /** `batch`: n preprocessed NHWC images; returns the model's output for them, row-major. */
  run(batch: Float32Array, n: number): Promise<Float32Array>;
  dispose(): void;
  threads: number;
}

export interface OnnxForwardOptions {
  inputSize: number;
  /** Intra-op threads; default: the cores available. */
  threads?: number;
}

/** Which runtime serves forward passes: 'auto' = onnxruntime when it can, else TF.js. */
export type ForwardRuntime = 'auto' | 'tfjs';

/** REFIT_FORWARD=tfjs turns onnxruntime off for the whole process. */
export const FORWARD_ENV = 'REFIT_FORWARD';

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
  if (disabled) return { available: false, reason: `disabled by ${disabled}`, ...(version ? { version } : {}) };
  if (!ort) return { available: false, reason };
  return { available: true, ...(version ? { version } : {}) };
}

/** Why the last createOnnxForward call returned null (undefined when it did not). */
export let lastForwardFailure: string | undefined;

/**
 * An onnxruntime session computing `model`'s output from preprocessed NHWC pixels, or null (reason
 * in lastForwardFailure) when onnxruntime is unavailable or the exporter refuses the model.
 */
export async function createOnnxForward(model: tf.LayersModel, options: OnnxForwardOptions): Promise<OnnxForward | null> {
  const { inputSize, threads = os.availableParallelism() } = options;
  lastForwardFailure = disabledReason();
  if (lastForwardFailure) return null;
  const { ort, reason } = await loadOrt();
  if (!ort) {
    lastForwardFailure = reason;
    return null;
  }
  let bytes: Uint8Array;
  try {
    bytes = toOnnx(model, { inputSize, layout: 'NHWC' });
  } catch (err) {
    lastForwardFailure = `ONNX export refused ${model.name}: ${(err as Error).message}`;
    return null;
  }
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
    });
  } catch (err) {
    lastForwardFailure = `onnxruntime could not load the exported ${model.name}: ${(err as Error).message}`;
    return null;
  }
  const perImage = inputSize * inputSize * 3;
  let disposed = false;
  // One run at a time per session: callers pipeline decoding, not inference.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    threads,
    run(batch, n) {
      if (disposed) return Promise.reject(new Error('onnxruntime forward used after dispose()'));
      if (batch.length !== n * perImage) {
        return Promise.reject(new Error(`expected ${n}×${inputSize}×${inputSize}×3 = ${n * perImage} values, got ${batch.length}`));
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
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      void queue.then(() => session.release()).catch(() => undefined);
    },
  };
}

/** A model's forward pass on TF.js tensors, served by onnxruntime when it can, else by TF.js. */
export interface ForwardPass {
  runtime: 'onnxruntime' | 'tfjs';
  /** Why TF.js serves it (undefined when onnxruntime does). */
  reason?: string;
  /** Preprocessed NHWC images → the model's output (a new tensor; `x` is left alone). */
  run(x: tf.Tensor4D): Promise<tf.Tensor>;
  dispose(): void;
}

export async function createForwardPass(model: tf.LayersModel, options: OnnxForwardOptions & { runtime?: ForwardRuntime }): Promise<ForwardPass> {
  const onnx = options.runtime === 'tfjs' ? null : await createOnnxForward(model, options);
  const outShape = model.outputs[0].shape.slice(1) as number[];
  if (!onnx) {
    const reason = options.runtime === 'tfjs' ? 'runtime tfjs requested' : lastForwardFailure;
    return { runtime: 'tfjs', ...(reason ? { reason } : {}), run: async (x) => model.predict(x) as tf.Tensor, dispose: () => undefined };
  }
  return {
    runtime: 'onnxruntime',
    async run(x) {
      const n = x.shape[0];
      const values = await onnx.run((await x.data()) as Float32Array, n);
      return tf.tensor(values, [n, ...outShape]);
    },
    dispose: () => onnx.dispose(),
  };
}
