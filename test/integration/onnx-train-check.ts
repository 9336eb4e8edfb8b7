// Shared by the onnx-train tests: one training step's loss, gradients and BN running statistics from
// the ONNX training graph (onnxruntime) against TF.js autodiff (tf.variableGrads) on the same model.
import * as tf from '@tensorflow/tfjs';
import { OnnxTrainer, type StepBatch } from '../../models/onnx-train/session';
import { weightedLoss } from '../../main/engine/training/step';

/** Park-Miller, for repeatable inputs. */
export function seeded(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

export interface Comparison {
  loss: [number, number];
  /** Per weight: max |onnx − tfjs| / max |tfjs|, and max |tfjs|. */
  grads: { name: string; rel: number; scale: number; sensitivity?: number }[];
  stats: { name: string; rel: number }[];
  worst: number;
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return { rel: s > 0 ? d / s : d, scale: s };
};

/**
 * A random (or given) batch through both: onnxruntime first (TF.js' training-mode BN updates the moving
 * statistics as a side effect), then TF.js. Dropout layers get `masks` in TF.js too (their call is
 * replaced by a product with the same mask).
 */
export async function compareStep(
  model: tf.LayersModel,
  opts: {
    batch: number;
    classes: number;
    seed?: number;
    x?: Float32Array;
    labels?: number[];
    masks?: Map<string, Float32Array>;
    /**
     * Also measure TF.js' own sensitivity: its gradients again at x · (1 + 1e-6), the relative change per
     * weight (how far apart two float32 computations of the same gradient can honestly be).
     */
    sensitivity?: boolean;
  },
): Promise<Comparison> {
  const random = seeded(opts.seed ?? 7);
  const [, h, w, c] = model.inputs[0].shape as number[];
  const n = opts.batch;
  const x = opts.x ?? Float32Array.from({ length: n * h * w * c }, () => random() * 2 - 1);
  const labelIdx = opts.labels ?? Array.from({ length: n }, (_, i) => i % opts.classes);
  const labels = new Float32Array(n * opts.classes);
  labelIdx.forEach((l, i) => (labels[i * opts.classes + l] = 1));
  const classWeights = Float32Array.from({ length: opts.classes }, () => 0.5 + random());
  const batch: StepBatch = { x, labels, classWeights, masks: opts.masks };

  const trainer = await OnnxTrainer.create(model, { batchSize: n, adam: { learningRate: 0 }, threads: 1 });
  const onnx = await trainer.gradients(batch);
  await trainer.dispose();

  // TF.js, with dropout masks patched in.
  const restore: (() => void)[] = [];
  for (const layer of model.layers) {
    const mask = opts.masks?.get(layer.name);
    if (!mask) continue;
    const call = layer.call.bind(layer);
    layer.call = (inputs) => {
      const t = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
      return tf.mul(t, tf.tensor(mask, t.shape));
    };
    restore.push(() => (layer.call = call));
  }
  const variables = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const tfGrads = (input: Float32Array) =>
    tf.tidy(() =>
      tf.variableGrads(() => {
        const p = model.apply(tf.tensor4d(input, [n, h, w, c]), { training: true }) as tf.Tensor2D;
        return weightedLoss(p, tf.tensor2d(labels, [n, opts.classes]), tf.tensor1d(classWeights));
      }, variables),
    );
  // The perturbed pass first: training-mode BN updates the moving statistics, and the statistics
  // compared below must come from exactly one pass on x.
  const moving = model.weights.filter((wt) => /moving_(mean|variance)$/.test(wt.originalName));
  const saved = moving.map((wt) => wt.read().clone());
  let perturbed: Record<string, tf.Tensor> | null = null;
  if (opts.sensitivity) {
    const r = tfGrads(x.map((v) => v * (1 + 1e-6)));
    perturbed = r.grads;
    r.value.dispose();
    moving.forEach((wt, i) => wt.write(saved[i]));
  }
  tf.dispose(saved);
  const { value, grads } = tfGrads(x);
  restore.forEach((r) => r());
  const lossT = value.dataSync()[0];
  const out: Comparison = { loss: [onnx.loss, lossT], grads: [], stats: [], worst: Math.abs(onnx.loss - lossT) / Math.max(Math.abs(lossT), 1e-12) };
  if (onnx.grads.size !== variables.length) throw new Error(`onnx gives ${onnx.grads.size} gradients, TF.js ${variables.length}`);
  for (const v of variables) {
    const g = onnx.grads.get(v.name);
    if (!g) throw new Error(`no ONNX gradient for ${v.name}`);
    const ref = grads[v.name].dataSync();
    const r = relErr(g, ref);
    const sensitivity = perturbed ? relErr(perturbed[v.name].dataSync(), ref).rel : undefined;
    out.grads.push({ name: v.name, ...r, ...(sensitivity !== undefined ? { sensitivity } : {}) });
    out.worst = Math.max(out.worst, r.rel);
  }
  const byName = new Map(model.weights.map((wt) => [wt.name, wt]));
  for (const [name, s] of onnx.stats) {
    const r = relErr(s, byName.get(name)!.read().dataSync());
    out.stats.push({ name, rel: r.rel });
    out.worst = Math.max(out.worst, r.rel);
  }
  tf.dispose([value, ...Object.values(grads), ...Object.values(perturbed ?? {})]);
  return out;
}

/**
 * TF.js' AvgPoolGrad (cpu and wasm) scales every cell's gradient by 1/(kh·kw), also where a 'same'
 * window hangs over the edge and the forward pass divided by fewer cells: its gradient is not the
 * forward function's near the borders. This replaces each AveragePooling2D's call by the same function
 * written with ops whose TF.js gradients are exact — a 'valid' average over the explicitly zero-padded
 * input, times kh·kw, divided by each window's count of cells inside the image — and checks on `probe`
 * that the model's output is unchanged. Returns the function that restores the layers.
 */
export function exactAvgPoolGradients(model: tf.LayersModel, probe: tf.Tensor4D): () => void {
  const pools = model.layers.filter((l) => l.getClassName() === 'AveragePooling2D');
  const before = tf.tidy(() => (model.predict(probe) as tf.Tensor).dataSync());
  const restore = pools.map((layer) => {
    const call = layer.call.bind(layer);
    const cfg = layer.getConfig() as { poolSize: [number, number]; strides: [number, number]; padding: string };
    const [kh, kw] = cfg.poolSize;
    const [sh, sw] = cfg.strides;
    layer.call = (inputs) => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      if (cfg.padding === 'valid') return tf.avgPool(x, [kh, kw], [sh, sw], 'valid');
      const [, h, w] = x.shape;
      const total = (size: number, k: number, s: number) => Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
      const th = total(h, kh, sh);
      const tw = total(w, kw, sw);
      const pads: [number, number][] = [[0, 0], [Math.floor(th / 2), th - Math.floor(th / 2)], [Math.floor(tw / 2), tw - Math.floor(tw / 2)], [0, 0]];
      const sum = tf.mul(tf.avgPool(tf.pad(x, pads), [kh, kw], [sh, sw], 'valid'), kh * kw);
      const count = tf.mul(tf.avgPool(tf.pad(tf.ones([1, h, w, 1]), pads) as tf.Tensor4D, [kh, kw], [sh, sw], 'valid'), kh * kw);
      return tf.div(sum, count);
    };
    return () => (layer.call = call);
  });
  const after = tf.tidy(() => (model.predict(probe) as tf.Tensor).dataSync());
  const r = relErr(after, before);
  if (!(r.rel < 1e-5)) throw new Error(`exact average pool changed the model's output by ${r.rel} (relative)`);
  return () => restore.forEach((f) => f());
}
