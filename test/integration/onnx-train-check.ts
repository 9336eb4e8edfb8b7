// Shared by the onnx-train tests: one training step's loss, gradients and BN running statistics from
// the ONNX training graph (onnxruntime) against TF.js autodiff (tf.variableGrads) on the same model.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { OnnxTrainer, type StepBatch } from '../../models/onnx-train/session';
import type { TrainGraphOptions } from '../../models/onnx-train/graph';
import { weightedLoss } from '../../main/engine/training/step';
import { decodeImage } from '../../main/engine/image-decode';
import { attachHead, buildHead, type HeadConfig } from '../../models/heads';
import { freezeForFineTune, unfreezeAll } from '../../models/freeze';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { splitAtStages } from '../../models/trunk';

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
     * weight (how far apart two float32 computations of the same gradient can honestly be). 'noise':
     * at x · (1 + 1e-7·u), u uniform in ±½ per value — rounding-sized and in no one direction (batch norm
     * cancels a uniform scale of its input, so x · (1 + 1e-6) understates it there).
     */
    sensitivity?: boolean | 'noise';
    /** How the ONNX graph writes operators (default: the trainer's own choice for this CPU). */
    graph?: TrainGraphOptions;
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

  const trainer = await OnnxTrainer.create(model, { batchSize: n, adam: { learningRate: 0 }, threads: 1, graph: opts.graph });
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
    const u = seeded(99);
    const r = tfGrads(opts.sensitivity === 'noise' ? x.map((v) => v * (1 + 1e-7 * (u() - 0.5))) : x.map((v) => v * (1 + 1e-6)));
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

export const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
export const PHOTO_CLASSES = ['birds', 'flowers', 'fruit', 'mammals', 'vegetables'];

/**
 * `n` photos from photos5 (round-robin over the classes) at `size`², preprocessed for `backbone`, NHWC;
 * and their labels. `dither` adds seeded noise of ±½ of an 8-bit step to every pixel first: the cut-outs'
 * flat regions otherwise give max-pool windows with exactly tied values, and which cell of a tie takes
 * the gradient then turns on float rounding (the gradient is discontinuous there), so two correct
 * float32 implementations disagree; measured on GoogLeNet, TF.js' own gradients moved by up to 16% when
 * the input moved by 1e-7.
 */
export async function photoBatch(backbone: string, n: number, size: number, dither?: number): Promise<{ x: Float32Array; labels: number[] }> {
  const lists = await Promise.all(PHOTO_CLASSES.map(async (c) => (await readdir(path.join(PHOTOS, c), { recursive: true })).filter((f) => f.endsWith('.png')).sort()));
  const files = Array.from({ length: n }, (_, i) => ({ file: path.join(PHOTOS, PHOTO_CLASSES[i % 5], lists[i % 5][Math.floor(i / 5)]), label: i % 5 }));
  const pixels = await Promise.all(files.map((f) => decodeImage(f.file, size)));
  const flat = new Float32Array(n * size * size * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  if (dither !== undefined) {
    const r = seeded(dither);
    for (let i = 0; i < flat.length; i++) flat[i] += r() - 0.5;
  }
  const x = tf.tidy(() => preprocess(tf.tensor4d(flat, [n, size, size, 3]), getBackbone(backbone).preprocessing));
  const data = Float32Array.from(x.dataSync());
  x.dispose();
  return { x: data, labels: files.map((f) => f.label) };
}

/**
 * BN as after pretraining, seeded: gamma in [0.5, 1.5), beta in ±0.2, and moving statistics near the
 * batch statistics of `x` (one training-mode pass with momentum 0, then the mean moved by up to ±0.2
 * standard deviations and the variance, plus 1, scaled by 0.7–1.3). Purely random moving statistics compound
 * over a deep network in inference mode and saturate the softmax (every gradient then 0).
 */
export function pretrainedLikeBatchNorm(model: tf.LayersModel, x: tf.Tensor4D, seed: number): void {
  const r = seeded(seed);
  const bns = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
  const vars = (l: tf.layers.Layer) => new Map(l.weights.map((w) => [w.originalName.split('/').pop()!, w]));
  for (const l of bns) {
    const v = vars(l);
    for (const [key, lo, span] of [['gamma', 0.5, 1], ['beta', -0.2, 0.4]] as const) {
      const w = v.get(key);
      if (w) w.write(tf.tensor1d(Float32Array.from({ length: w.shape[0] as number }, () => lo + span * r())));
    }
  }
  const momentum = bns.map((l) => (l as unknown as { momentum: number }).momentum);
  bns.forEach((l) => ((l as unknown as { momentum: number }).momentum = 0));
  tf.tidy(() => void model.apply(x, { training: true }));
  bns.forEach((l, i) => ((l as unknown as { momentum: number }).momentum = momentum[i]));
  for (const l of bns) {
    const v = vars(l);
    const mean = v.get('moving_mean')!;
    const variance = v.get('moving_variance')!;
    const m = mean.read().dataSync();
    const s2 = variance.read().dataSync();
    // + 1: a channel (nearly) constant over this small batch would otherwise be scaled up by 1/√ε.
    mean.write(tf.tensor1d(m.map((mu, i) => mu + (r() - 0.5) * 0.4 * Math.sqrt(s2[i] + 1))));
    variance.write(tf.tensor1d(s2.map((s) => (s + 1) * (0.7 + 0.6 * r()))));
  }
}

/** Seeded dropout masks (0 or 1/(1 − rate), channels-last) for every Dropout layer of `model`. */
export function dropoutMasks(model: tf.LayersModel, n: number, seed: number): Map<string, Float32Array> {
  const r = seeded(seed);
  const masks = new Map<string, Float32Array>();
  for (const layer of model.layers.filter((l) => l.getClassName() === 'Dropout')) {
    const rate = (layer.getConfig() as { rate: number }).rate;
    if (rate === 0) continue;
    const size = n * (layer.outputShape as number[]).slice(1).reduce((a, b) => a * b, 1);
    masks.set(layer.name, Float32Array.from({ length: size }, () => (r() < rate ? 0 : 1 / (1 - rate))));
  }
  return masks;
}

export interface BackboneCase {
  classifier: tf.LayersModel;
  /** The photos (NHWC, preprocessed, dithered) and their labels. */
  x: Float32Array;
  labels: number[];
  n: number;
  size: number;
}

/** A seeded `backbone` classifier with pretrained-like BN (pretrainedLikeBatchNorm) and `n` dithered photos at `size`². */
export async function backboneCase(backbone: string, o: { head: HeadConfig; size: number; n: number; seed: number }): Promise<BackboneCase> {
  const info = getBackbone(backbone);
  const classifier = attachHead(info.build({ inputSize: o.size, seed: o.seed }), buildHead(info.featureDim, PHOTO_CLASSES.length, o.head, o.seed));
  const { x, labels } = await photoBatch(backbone, o.n, o.size, o.seed);
  const xt = tf.tensor4d(x, [o.n, o.size, o.size, 3]);
  pretrainedLikeBatchNorm(classifier, xt, o.seed);
  xt.dispose();
  return { classifier, x, labels, n: o.n, size: o.size };
}

export interface ModeStep {
  /** What trains: the fine-tune top or the whole classifier. */
  model: tf.LayersModel;
  /** Its input for the photos (the frozen trunk's output in fine-tune mode). */
  x: Float32Array;
  masks: Map<string, Float32Array>;
}

/**
 * The case's classifier set up as the network phase trains it: fine-tune mode = the last stage and the
 * head, every BN frozen (models/freeze + trunk.splitAtStages, the trunk run here in TF.js); full = all
 * of it, BN in training mode.
 */
export function modeStep(backbone: string, c: BackboneCase, mode: 'finetune' | 'full', seed: number): ModeStep {
  const info = getBackbone(backbone);
  if (mode === 'full') {
    unfreezeAll(c.classifier);
    return { model: c.classifier, x: c.x, masks: dropoutMasks(c.classifier, c.n, seed) };
  }
  const { trunk, top } = splitAtStages(c.classifier, info, freezeForFineTune(c.classifier, info));
  const boundary = tf.tidy(() => (trunk.predict(tf.tensor4d(c.x, [c.n, c.size, c.size, 3])) as tf.Tensor).dataSync());
  return { model: top, x: Float32Array.from(boundary), masks: dropoutMasks(top, c.n, seed) };
}


/**
 * Moves every ReLU's input at least `tau` away from 0 on `x` (training mode), by shifting BN betas per
 * channel: a ReLU is a kink, and where its input lies within float32 rounding of 0 (a deep network's
 * forward values differ between two implementations by ~1e-5 absolute) the two take different sides and
 * their gradients differ by one cell's whole contribution, and every layer before inherits it — measured
 * on Xception's full step at 128², 4 photos: in block 14 the BN betas of channels with a pre-ReLU value
 * within 2e-5 of 0 disagreed by up to 2e-2, those ≥ 1e-3 from 0 agreed to 2e-6.
 * The BN shifted is the ReLU's input, or for a ReLU after an Add the BN feeding that Add (a training-mode
 * BN's beta adds to its output exactly). ReLUs are handled in model order, each after the shifts before
 * it; the moving statistics are restored. Returns how many channels were shifted.
 */
export function clearOfReluKinks(model: tf.LayersModel, x: tf.Tensor4D, tau: number): number {
  const moving = model.weights.filter((wt) => /moving_(mean|variance)$/.test(wt.originalName));
  const saved = moving.map((wt) => wt.read().clone());
  const isBn = (l: tf.layers.Layer) => l.getClassName() === 'BatchNormalization';
  const inbound = (l: tf.layers.Layer) => (l.inboundNodes[0]?.inboundLayers ?? []) as tf.layers.Layer[];
  let shifted = 0;
  for (const layer of model.layers) {
    const cfg = layer.getConfig() as { activation?: string };
    if (!(layer.getClassName() === 'Activation' && cfg.activation === 'relu') && layer.getClassName() !== 'ReLU') continue;
    const source = inbound(layer)[0];
    const bn = isBn(source) ? source : source.getClassName() === 'Add' ? inbound(source).find(isBn) : undefined;
    if (!bn) throw new Error(`clearOfReluKinks: ReLU ${layer.name} follows ${source.name}, neither a BN nor an Add of one`);
    const probe = tf.model({ inputs: model.inputs, outputs: layer.input as tf.SymbolicTensor });
    const values = tf.tidy(() => (probe.apply(x, { training: true }) as tf.Tensor).dataSync());
    const c = (layer.input as tf.SymbolicTensor).shape.at(-1) as number;
    const delta = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) {
      const v: number[] = [];
      for (let i = ch; i < values.length; i += c) v.push(values[i]);
      const clear = (d: number) => v.every((y) => Math.abs(y + d) >= tau);
      for (let k = 0; !clear(delta[ch]); k++) delta[ch] = (k % 2 ? -1 : 1) * Math.ceil((k + 1) / 2) * tau;
      if (delta[ch] !== 0) shifted++;
    }
    const beta = bn.weights.find((w) => w.originalName.endsWith('beta'))!;
    beta.write(tf.tidy(() => tf.add(beta.read(), tf.tensor1d(delta))));
  }
  moving.forEach((wt, i) => wt.write(saved[i]));
  return shifted;
}
