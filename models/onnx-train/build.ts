// The ONNX training graph of a functional TF.js classifier (or a classifier's trainable top, as
// models/trunk.ts splitAtStages gives it): one graph that takes the batch, one-hot labels, class
// weights and the trainable weights, and returns the loss (TF.js' class-weighted categorical
// cross-entropy on the softmax output), the probabilities and the gradient of every trainable weight,
// every gradient written in standard ONNX ops (see graph.ts) so that onnxruntime-node's inference
// build runs it.
//
// The walk follows the exporter's (models/onnx-export.ts): the same layer types, NCHW inside, TF's
// padding, a ZeroPadding2D taken as the following conv's / max-pool's own pads. What training changes:
// - trainable weights are graph inputs (kept in ONNX layout by the caller: conv kernels OIHW, depthwise
//   [C,1,kh,kw], dense kernels [in, out] as TF); frozen weights are initializers;
// - a BatchNormalization layer that is not trainable runs in inference mode (the fine-tune recipe, as
//   freezeBackbone makes TF.js do), folded into the conv before it when it is that conv's only consumer
//   (a trainable kernel is then scaled inside the graph, so its gradient stays exact);
// - a trainable BatchNormalization runs in training mode (batch statistics, TF's biased variance) and
//   the graph also returns its updated moving mean and variance (TF's update: old − (old − batch)·(1 − momentum));
// - Dropout multiplies by a mask fed in (already scaled by 1/(1 − rate)), one graph input per layer.
import type * as tf from '@tensorflow/tfjs';
import { modelNodes, type TfNode } from '../graph';
import { batchNormAffine, tfPadding } from '../onnx-export';
import { TrainGraph, type TrainGraphOptions, type TValue } from './graph';

export const TRAIN_INPUT = 'x';
export const TRAIN_LABELS = 'labels';
export const TRAIN_CLASS_WEIGHTS = 'class_weights';
export const TRAIN_LOSS = 'loss';
export const TRAIN_PROBS = 'probs';
export const gradName = (weight: string) => `grad:${weight}`;
export const newStatName = (stat: string) => `new:${stat}`;

/** How a trainable weight is laid out in the graph, relative to its TF.js variable. */
export type WeightLayout = 'same' | 'hwio->oihw' | 'depthwise->oihw';

export interface TrainWeight {
  /** The TF.js variable name (LayerVariable.name), also the graph input name. */
  name: string;
  /** TF.js shape. */
  tfShape: number[];
  /** Shape in the graph. */
  shape: number[];
  layout: WeightLayout;
}

export interface RunningStat {
  /** The TF.js moving_mean / moving_variance variable name: graph input, and `new:<name>` output. */
  name: string;
  shape: number[];
}

export interface DropoutMask {
  /** Graph input name. */
  name: string;
  layer: string;
  rate: number;
  /** Shape in the graph (NCHW for feature maps). */
  shape: number[];
  /** The Keras (TF.js) shape, channels last. */
  tfShape: number[];
}

export interface TrainGraphSpec {
  bytes: Uint8Array;
  batchSize: number;
  /** TF.js input shape of one batch, e.g. [N, H, W, C] (NHWC, as TF.js takes it). */
  inputShape: number[];
  numClasses: number;
  weights: TrainWeight[];
  runningStats: RunningStat[];
  dropouts: DropoutMask[];
  /** Momentum of each BN in training mode, by moving-statistic name. */
  momentum: Map<string, number>;
  /** Floats in the layers' outputs for one batch (what the backward pass keeps, up to a factor; see memory.ts). */
  activationFloats: number;
  /** Floats of the largest transient one conv's backward builds for one batch (its filter gradient's input windows). */
  workspaceFloats: number;
  /** Weights baked into the graph (frozen), in floats. */
  frozenFloats: number;
}

export interface BuildTrainGraphOptions {
  batchSize: number;
  /** How operators are written (NCHWc convolutions, unfolding limit); default: plain ONNX Conv. */
  graph?: TrainGraphOptions;
}

class Unsupported extends Error {}

const NCHW = [0, 3, 1, 2];
const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return [v[0], v[0]];
  throw new Error(`unexpected ${what}: ${JSON.stringify(v)}`);
};

interface Val extends TValue {
  /** Zero padding [top, left, bottom, right] not yet applied (a ZeroPadding2D a conv or max-pool takes as its pads). */
  pendingPads?: [number, number, number, number];
  /**
   * A rank-4 value kept in TF.js' own axis order rather than NCHW: after a Permute, whose output's axes
   * are no longer (H, W, C) (VGG's adaptive pool: Permute → Dense on the last axis → Flatten).
   */
  tfOrder?: boolean;
  /**
   * The value BEFORE a ReLU whose only consumer is a max-pool (directly or through a ZeroPadding2D): the
   * pool runs first and the ReLU on its output, a quarter of the cells at stride 2. Exact in value and
   * gradient: max and ReLU commute, a window whose maximum is > 0 routes its gradient to the same first
   * maximum either way, and one whose maximum is ≤ 0 passes none (TF's gradient there lands on a zero
   * cell whose ReLU gradient is 0).
   */
  deferredRelu?: boolean;
}

/** The value without the builder's bookkeeping (pending pads, axis order). */
const bare = (v: Val): TValue => ({ name: v.name, shape: v.shape, grad: v.grad, nonNegative: v.nonNegative });

/** A layer's weights by short name ('kernel', 'gamma', …). */
function weightsOf(layer: tf.layers.Layer): Map<string, tf.LayerVariable> {
  const out = new Map<string, tf.LayerVariable>();
  for (const w of layer.weights) out.set(w.originalName.split('/').pop()!, w);
  return out;
}

function need(m: Map<string, tf.LayerVariable>, key: string, layer: tf.layers.Layer): tf.LayerVariable {
  const v = m.get(key);
  if (!v) throw new Error(`layer "${layer.name}" (${layer.getClassName()}) has no "${key}" weight`);
  return v;
}

const valuesOf = (v: tf.LayerVariable) => v.read().dataSync() as Float32Array;

/** TF kernel [kh, kw, cin, cout] ↔ ONNX [cout, cin, kh, kw]. */
export function hwioToOihw(k: Float32Array, [kh, kw, cin, cout]: number[], out: Float32Array = new Float32Array(k.length)): Float32Array {
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[src + o];
      }
  return out;
}

export function oihwToHwio(k: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++) {
        const dst = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[dst + o] = k[((o * cin + i) * kh + y) * kw + x];
      }
  return out;
}

/** TF depthwise kernel [kh, kw, C, 1] ↔ ONNX [C, 1, kh, kw]. */
function depthwiseToOihw(k: Float32Array, [kh, kw, c]: number[], out: Float32Array = new Float32Array(k.length)): Float32Array {
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < c; i++) out[(i * kh + y) * kw + x] = k[(y * kw + x) * c + i];
  return out;
}

function oihwToDepthwise(k: Float32Array, [kh, kw, c]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < c; i++) out[(y * kw + x) * c + i] = k[(i * kh + y) * kw + x];
  return out;
}

/** A TF.js weight's values in the graph's layout, written into `out` when given (no other copy is made). */
export function toGraphLayout(w: TrainWeight, tfValues: Float32Array, out?: Float32Array): Float32Array {
  if (out && out.length !== tfValues.length) throw new Error(`weight ${w.name}: ${tfValues.length} values for ${out.length} places`);
  if (w.layout === 'hwio->oihw') return hwioToOihw(tfValues, w.tfShape, out);
  if (w.layout === 'depthwise->oihw') return depthwiseToOihw(tfValues, w.tfShape, out);
  if (!out) return Float32Array.from(tfValues);
  out.set(tfValues);
  return out;
}

/** A graph-layout weight (or its gradient) back in TF.js layout. */
export function toTfLayout(w: TrainWeight, values: Float32Array): Float32Array {
  if (w.layout === 'hwio->oihw') return oihwToHwio(values, w.tfShape);
  if (w.layout === 'depthwise->oihw') return oihwToDepthwise(values, w.tfShape);
  return values;
}

class TrainBuilder {
  readonly g: TrainGraph;
  private readonly values = new Map<number, Val>();
  private readonly consumers = new Map<number, tf.layers.Layer[]>();
  private readonly outputOf = new Map<tf.layers.Layer, tf.SymbolicTensor>();
  private readonly outputIds: Set<number>;
  private readonly folded = new Set<tf.layers.Layer>();
  readonly weights: TrainWeight[] = [];
  private readonly weightValues: TValue[] = [];
  readonly runningStats: RunningStat[] = [];
  readonly dropouts: DropoutMask[] = [];
  readonly momentum = new Map<string, number>();
  /** The largest transient a conv's backward builds, in floats. */
  workspaceFloats = 0;
  /** Logits of the output softmax, once found. */
  logits: TValue | null = null;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly nodes: TfNode[],
    private readonly n: number,
    graphOptions: TrainGraphOptions = {},
  ) {
    this.g = new TrainGraph(graphOptions);
    this.outputIds = new Set(model.outputs.map((o) => o.id));
    for (const node of nodes) {
      this.outputOf.set(node.outboundLayer, node.outputTensors[0]);
      for (const t of node.inputTensors) {
        const list = this.consumers.get(t.id) ?? [];
        list.push(node.outboundLayer);
        this.consumers.set(t.id, list);
      }
    }
  }

  private only(t: tf.SymbolicTensor): tf.layers.Layer | null {
    const c = this.consumers.get(t.id) ?? [];
    return c.length === 1 && !this.outputIds.has(t.id) ? c[0] : null;
  }

  private get(t: tf.SymbolicTensor, layer: tf.layers.Layer): Val {
    const v = this.values.get(t.id);
    if (!v) throw new Error(`internal: input ${t.name} of layer "${layer.name}" was not built`);
    if (v.deferredRelu && !['MaxPooling2D', 'ZeroPadding2D'].includes(layer.getClassName())) throw new Error(`internal: a deferred ReLU reached layer "${layer.name}"`);
    return v;
  }

  /** Whether a ReLU's output `t` goes only to a max-pool, directly or through one ZeroPadding2D (see Val.deferredRelu). */
  private feedsOnlyMaxPool(t: tf.SymbolicTensor): boolean {
    let next = this.only(t);
    if (next?.getClassName() === 'ZeroPadding2D') {
      const out = this.outputOf.get(next);
      next = out ? this.only(out) : null;
    }
    return next?.getClassName() === 'MaxPooling2D';
  }

  /** ReLU of an NCHW feature map, or the map marked for a ReLU after the max-pool that alone reads it. */
  private reluOrDeferred(x: Val, out: tf.SymbolicTensor, base: string): Val {
    if (!x.tfOrder && x.shape.length === 4 && this.feedsOnlyMaxPool(out)) return { ...bare(x), deferredRelu: true };
    return this.sameOrder(x, this.g.relu(bare(x), base));
  }

  /** Applies pending zero padding (a Pad, whose gradient is a Slice); the axis order stays. */
  private plain(v: Val, base: string): Val {
    if (!v.pendingPads) return v;
    return this.g.pad(bare(v), v.pendingPads, `${base}_pad`);
  }

  /** A rank-4 value in NCHW (padding applied), for the ops that work on feature maps. */
  private nchw(v: Val, base: string): TValue {
    const x = this.plain(v, base);
    return x.tfOrder ? this.g.transpose(bare(x), NCHW, `${base}_nchw`) : bare(x);
  }

  /** A value in TF.js' axis order (NCHW → NHWC for a feature map). */
  private tfOrdered(v: Val, base: string): TValue {
    const x = this.plain(v, base);
    return x.shape.length === 4 && !x.tfOrder ? this.g.transpose(bare(x), [0, 2, 3, 1], `${base}_nhwc`) : bare(x);
  }

  /** An elementwise op's result keeps its input's axis order. */
  private sameOrder(src: Val, out: TValue): Val {
    return src.tfOrder ? { ...out, tfOrder: true } : out;
  }

  /** A layer weight: a graph input when trainable, else an initializer (values transformed by `layout`). */
  private weight(layer: tf.layers.Layer, v: tf.LayerVariable, layout: WeightLayout): TValue {
    const tfShape = v.shape as number[];
    const shape = layout === 'hwio->oihw' ? [tfShape[3], tfShape[2], tfShape[0], tfShape[1]] : layout === 'depthwise->oihw' ? [tfShape[2], 1, tfShape[0], tfShape[1]] : tfShape;
    if (layer.trainable && v.trainable) {
      const w: TrainWeight = { name: v.name, tfShape, shape, layout };
      const val = this.g.input(v.name, shape, true);
      this.weights.push(w);
      this.weightValues.push(val);
      return val;
    }
    const data = toGraphLayout({ name: v.name, tfShape, shape, layout }, valuesOf(v));
    return { name: this.g.floatConst(v.name, shape, data), shape, grad: false };
  }

  private activation(v: TValue, act: string, layer: tf.layers.Layer): TValue {
    switch (act) {
      case 'linear':
        return v;
      case 'relu':
        return this.g.relu(v, `${layer.name}_relu`);
      case 'sigmoid':
        return this.g.sigmoid(v, `${layer.name}_sigmoid`);
      case 'softmax': {
        const outs = this.consumers.get(this.currentOut!.id) ?? [];
        if (!this.outputIds.has(this.currentOut!.id) || outs.length > 0 || v.shape.length !== 2) throw new Unsupported('softmax other than on the model output');
        this.logits = v;
        return v; // the loss takes the logits; probabilities are computed there
      }
      default:
        throw new Unsupported(`activation "${act}"`);
    }
  }

  private currentOut: tf.SymbolicTensor | null = null;

  private bnChannelsLast(bn: tf.layers.Layer, rank: number): void {
    const axis = (bn.getConfig() as { axis: number | number[] }).axis;
    const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis;
    if ((a < 0 ? rank + a : a) !== rank - 1) throw new Unsupported(`BatchNormalization axis ${JSON.stringify(axis)}`);
  }

  private conv(layer: tf.layers.Layer, node: TfNode): Val {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as { kernelSize: unknown; strides: unknown; padding: string; dataFormat: string; dilationRate: unknown; activation: string; useBias: boolean; depthMultiplier?: number };
    if (cfg.dataFormat !== 'channelsLast') throw new Unsupported(`dataFormat ${cfg.dataFormat}`);
    const inT = node.inputTensors[0];
    const outT = node.outputTensors[0];
    const src = this.feature(this.get(inT, layer), layer.name);
    const [kh, kw] = pair(cfg.kernelSize, 'kernelSize');
    const [sh, sw] = pair(cfg.strides, 'strides');
    const [dh, dw] = pair(cfg.dilationRate, 'dilationRate');
    if (dh !== 1 || dw !== 1) throw new Unsupported('dilation other than 1');
    const [h, w] = [inT.shape[1] as number, inT.shape[2] as number];
    const [pt, pb] = tfPadding(cfg.padding, h, kh, sh);
    const [pl, pr] = tfPadding(cfg.padding, w, kw, sw);
    const extra = src.pendingPads ?? [0, 0, 0, 0];
    const pads: [number, number, number, number] = [pt + extra[0], pl + extra[1], pb + extra[2], pr + extra[3]];
    const x: TValue = { name: src.name, shape: src.shape, grad: src.grad, nonNegative: src.nonNegative };
    const wts = weightsOf(layer);
    const outC = outT.shape[3] as number;
    const cin = inT.shape[3] as number;

    let input = x;
    let kernel: TValue;
    let group = 1;
    let finalStrides: [number, number] = [sh, sw];
    let finalPads = pads;
    if (cls === 'Conv2D') {
      kernel = this.weight(layer, need(wts, 'kernel', layer), 'hwio->oihw');
    } else {
      const dk = need(wts, 'depthwise_kernel', layer);
      if ((dk.shape as number[])[3] !== 1) throw new Unsupported('depth multiplier other than 1');
      const dwK = this.weight(layer, dk, 'depthwise->oihw');
      if (cls === 'DepthwiseConv2D') {
        kernel = dwK;
        group = cin;
      } else {
        input = this.g.conv(x, dwK, null, [sh, sw], pads, cin, `${layer.name}_depthwise`);
        kernel = this.weight(layer, need(wts, 'pointwise_kernel', layer), 'hwio->oihw');
        finalStrides = [1, 1];
        finalPads = [0, 0, 0, 0];
      }
    }
    let bias: TValue | null = cfg.useBias ? this.weight(layer, need(wts, 'bias', layer), 'same') : null;

    // A frozen (inference-mode) BN right after a linear conv is folded into it.
    const next = cfg.activation === 'linear' ? this.only(outT) : null;
    let outName = layer.name;
    if (next && next.getClassName() === 'BatchNormalization' && !next.trainable) {
      this.bnChannelsLast(next, 4);
      const { scale, shift } = batchNormAffine(next);
      const s32 = Float32Array.from(scale);
      if (kernel.grad) {
        kernel = this.g.mulConst(kernel, this.g.floatConst(`${next.name}.scale4`, [outC, 1, 1, 1], s32), `${layer.name}_kernel_bn`);
      } else {
        const kd = this.constData(kernel);
        const per = kd.length / outC;
        const folded = new Float32Array(kd.length);
        for (let o = 0; o < outC; o++) for (let j = 0; j < per; j++) folded[o * per + j] = kd[o * per + j] * scale[o];
        kernel = { name: this.g.floatConst(`${layer.name}.kernel_bn`, kernel.shape, folded), shape: kernel.shape, grad: false };
      }
      const shiftC = this.g.floatConst(`${next.name}.shift`, [outC], Float32Array.from(shift));
      if (bias) {
        bias = this.g.addConst(this.g.mulConst(bias, this.g.floatConst(`${next.name}.scale`, [outC], s32), `${layer.name}_bias_scaled`), shiftC, `${layer.name}_bias_bn`);
      } else {
        bias = { name: shiftC, shape: [outC], grad: false };
      }
      this.folded.add(next);
      outName = next.name;
    }
    const y = this.g.conv(input, kernel, bias, finalStrides, finalPads, group, outName);
    if (kernel.grad) {
      // The filter gradient's transient copies, as the unfolded formulation had them (the input's kh·kw
      // output-sized windows and two copies of the input). Stride-1 gradients no longer unfold (flat runs,
      // about 3× the input), but VGG-16's measured peak did not fall with that (5,537 MiB, now 5,802) and
      // this bound is what keeps the estimate above it (6,000; with 3× the input, about 4,600): something
      // else transient of that size lives at VGG's 224² layers.
      const [yn, , yh, yw] = y.shape;
      const inFloats = input.shape.reduce((a, b) => a * b, 1);
      this.workspaceFloats = Math.max(this.workspaceFloats, yn * yh * yw * (kernel.shape[1] * group) * kernel.shape[2] * kernel.shape[3] + 2 * inFloats);
    }
    if (cfg.activation === 'relu') return this.reluOrDeferred(y, node.outputTensors[0], `${layer.name}_relu`);
    return this.activation(y, cfg.activation, layer);
  }

  /** A conv's or pool's input: NCHW, zero padding still pending (they take it as their own pads). */
  private feature(v: Val, base: string): Val {
    return v.tfOrder ? this.nchw(v, base) : v;
  }

  private constData(v: TValue): Float32Array {
    const init = this.g.initializers.find((i) => i.name === v.name);
    if (!init?.rawData) throw new Error(`internal: ${v.name} is not a constant`);
    const raw = init.rawData;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }

  private bn(layer: tf.layers.Layer, node: TfNode): TValue {
    const inT = node.inputTensors[0];
    const rank = inT.shape.length;
    this.bnChannelsLast(layer, rank);
    const x = this.nchw(this.get(inT, layer), layer.name);
    const c = inT.shape[rank - 1] as number;
    const cfg = layer.getConfig() as { epsilon: number; momentum: number; center: boolean; scale: boolean };
    const dims = x.shape.map((d, i) => (i === 1 ? d : 1));
    if (!layer.trainable) {
      const { scale, shift } = batchNormAffine(layer);
      const s = this.g.floatConst(`${layer.name}.scale`, dims, Float32Array.from(scale));
      const b = this.g.floatConst(`${layer.name}.shift`, dims, Float32Array.from(shift));
      return this.g.affineConst(x, s, b, layer.name);
    }
    if (rank !== 4) throw new Unsupported('training-mode batch norm on a tensor that is not a feature map');
    if (!cfg.center || !cfg.scale) throw new Unsupported('training-mode batch norm without gamma and beta');
    const w = weightsOf(layer);
    const gamma = this.weight(layer, need(w, 'gamma', layer), 'same');
    const beta = this.weight(layer, need(w, 'beta', layer), 'same');
    const { y, mean, variance } = this.g.batchNormTrain(x, gamma, beta, cfg.epsilon, layer.name);
    for (const [key, batch] of [['moving_mean', mean], ['moving_variance', variance]] as const) {
      const stat = need(w, key, layer);
      const old = this.g.input(stat.name, [c]);
      // TF: old − (old − batch) · (1 − momentum)
      const diff = this.g.node('Sub', [old.name, batch], `${stat.name}_diff`);
      const upd = this.g.node('Sub', [old.name, this.g.node('Mul', [diff, this.g.scalar(1 - cfg.momentum)], `${stat.name}_delta`)], `${stat.name}_upd`);
      this.g.output({ name: upd, shape: [c] }, newStatName(stat.name));
      this.runningStats.push({ name: stat.name, shape: [c] });
      this.momentum.set(stat.name, cfg.momentum);
    }
    return y;
  }

  private pool(layer: tf.layers.Layer, node: TfNode): TValue {
    const cfg = layer.getConfig() as { poolSize: unknown; strides: unknown; padding: string; dataFormat: string };
    if (cfg.dataFormat !== 'channelsLast') throw new Unsupported(`dataFormat ${cfg.dataFormat}`);
    const inT = node.inputTensors[0];
    const [kh, kw] = pair(cfg.poolSize, 'poolSize');
    const [sh, sw] = pair(cfg.strides ?? cfg.poolSize, 'strides');
    const [pt, pb] = tfPadding(cfg.padding, inT.shape[1] as number, kh, sh);
    const [pl, pr] = tfPadding(cfg.padding, inT.shape[2] as number, kw, sw);
    if (layer.getClassName() === 'AveragePooling2D') {
      // TF averages over the cells inside the (zero-padded, if a ZeroPadding2D came first) input only.
      return this.g.avgPool(this.nchw(this.get(inT, layer), layer.name), [kh, kw], [sh, sw], [pt, pl, pb, pr], layer.name);
    }
    const src = this.feature(this.get(inT, layer), layer.name);
    let pads = [pt, pl, pb, pr];
    if (src.pendingPads) {
      // Zero padding before a max-pool equals −∞ padding only for inputs ≥ 0; and the gradient a zero
      // cell would take is dropped by the ReLU before it (its gradient is 0 where x ≤ 0) anyway.
      const fits = src.pendingPads.every((p, i) => p < (i % 2 === 0 ? kh : kw));
      // A deferred ReLU: the pool's output goes through it, so zero and −∞ padding agree there too.
      if (!(src.nonNegative || src.deferredRelu) || !fits) throw new Unsupported('zero padding before a max-pool whose input is not known to be ≥ 0');
      pads = pads.map((p, i) => p + src.pendingPads![i]);
    }
    const pooled = this.g.maxPool(bare(src), [kh, kw], [sh, sw], pads, src.deferredRelu ? `${layer.name}_prerelu` : layer.name);
    return src.deferredRelu ? this.g.relu(pooled, layer.name) : pooled;
  }

  private dense(layer: tf.layers.Layer, node: TfNode): Val {
    const cfg = layer.getConfig() as { activation: string; useBias: boolean };
    const inT = node.inputTensors[0];
    const w = weightsOf(layer);
    const kernel = this.weight(layer, need(w, 'kernel', layer), 'same');
    const bias = cfg.useBias ? this.weight(layer, need(w, 'bias', layer), 'same') : null;
    if (inT.shape.length === 2) return this.activation(this.g.gemm(this.get(inT, layer), kernel, bias, layer.name), cfg.activation, layer);
    // On a higher-rank tensor a Dense maps the last axis (TF.js' order): rows of a [·, in] matrix.
    const x = this.tfOrdered(this.get(inT, layer), layer.name);
    const [fin, units] = kernel.shape;
    const rows = x.shape.slice(0, -1);
    const flat = this.g.reshape(x, [rows.reduce((a, b) => a * b, 1), fin], `${layer.name}_rows`);
    const y = this.g.reshape(this.g.gemm(flat, kernel, bias, `${layer.name}_gemm`), [...rows, units], layer.name);
    return { ...this.activation(y, cfg.activation, layer), tfOrder: y.shape.length === 4 };
  }

  private layer(layer: tf.layers.Layer, node: TfNode): Val {
    const cls = layer.getClassName();
    const one = () => this.get(node.inputTensors[0], layer);
    const outT = node.outputTensors[0];
    this.currentOut = outT;
    switch (cls) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D':
        return this.conv(layer, node);
      case 'BatchNormalization':
        return this.folded.has(layer) ? one() : this.bn(layer, node);
      case 'Activation': {
        const x = this.plain(one(), layer.name);
        const act = (layer.getConfig() as { activation: string }).activation;
        if (act === 'relu') return this.reluOrDeferred(x, outT, `${layer.name}_relu`);
        return this.sameOrder(x, this.activation(x, act, layer));
      }
      case 'ReLU': {
        if ((layer.getConfig() as { maxValue?: number | null }).maxValue != null) throw new Unsupported('ReLU with a maximum');
        return this.reluOrDeferred(this.plain(one(), layer.name), outT, layer.name);
      }
      case 'ZeroPadding2D': {
        const cfg = layer.getConfig() as { padding: [[number, number], [number, number]] | number };
        const p = cfg.padding;
        const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : (p.map((q) => (typeof q === 'number' ? [q, q] : q)) as [[number, number], [number, number]]);
        const src = one();
        const x: Val = { ...this.nchw(src, layer.name), ...(src.deferredRelu ? { deferredRelu: true } : {}) };
        const takers = (this.consumers.get(outT.id) ?? []).every((c) => ['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'MaxPooling2D'].includes(c.getClassName()));
        if (takers && !this.outputIds.has(outT.id)) return { ...x, pendingPads: [t, l, b, r] };
        return this.g.pad(x, [t, l, b, r], layer.name);
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D':
        return this.pool(layer, node);
      case 'GlobalAveragePooling2D':
        return this.g.globalAvgPool(this.nchw(one(), layer.name), layer.name);
      case 'Add':
        return this.g.add(node.inputTensors.map((t) => this.nchw(this.get(t, layer), layer.name)), layer.name);
      case 'Multiply': {
        const [a, b] = node.inputTensors.map((t) => this.nchw(this.get(t, layer), layer.name));
        if (node.inputTensors.length !== 2) throw new Unsupported('multiply of more than two tensors');
        const big = a.shape.every((d, i) => d >= b.shape[i]) ? [a, b] : [b, a];
        return this.g.mulBroadcast(big[0], big[1], layer.name);
      }
      case 'Concatenate': {
        const axis = (layer.getConfig() as { axis: number }).axis;
        const xs = node.inputTensors.map((t) => this.nchw(this.get(t, layer), layer.name));
        const rank = xs[0].shape.length;
        const k = axis < 0 ? rank + axis : axis;
        return this.g.concat(xs, rank === 4 ? NCHW.indexOf(k) : k, layer.name);
      }
      case 'Dense':
        return this.dense(layer, node);
      case 'Dropout': {
        const rate = (layer.getConfig() as { rate: number }).rate;
        const x = this.nchw(one(), layer.name); // masks come channels-last and are fed as NCHW
        if (rate === 0) return x;
        const name = `dropout_mask:${layer.name}`;
        const mask = this.g.input(name, x.shape);
        this.dropouts.push({ name, layer: layer.name, rate, shape: x.shape, tfShape: [this.n, ...(outT.shape.slice(1) as number[])] });
        return this.g.maskMul(x, mask.name, layer.name);
      }
      case 'Reshape': {
        const inT = node.inputTensors[0];
        const target = outT.shape.slice(1) as number[];
        // Only reshapes that keep the element order in NCHW: [N, C] ↔ [N, 1, 1, C] (SE).
        if (inT.shape.length === 2 && target.length === 3 && target[0] === 1 && target[1] === 1) return this.g.reshape(one(), [this.n, target[2], 1, 1], layer.name);
        throw new Unsupported(`reshape ${JSON.stringify(inT.shape)} → ${JSON.stringify(outT.shape)}`);
      }
      case 'Flatten': {
        const x = one();
        if (x.shape.length === 2) return x;
        if (x.tfOrder) return this.g.reshape(this.plain(x, layer.name), [this.n, x.shape.slice(1).reduce((a, b) => a * b, 1)], layer.name);
        if (x.shape.length === 4 && x.shape[2] === 1 && x.shape[3] === 1) return this.g.reshape(x, [this.n, x.shape[1]], layer.name);
        // Keras order (H, W, C) matters here.
        const t = this.g.transpose(this.plain(x, layer.name), [0, 2, 3, 1], `${layer.name}_nhwc`);
        return this.g.reshape(t, [this.n, t.shape[1] * t.shape[2] * t.shape[3]], layer.name);
      }
      case 'Permute': {
        const dims = (layer.getConfig() as { dims: number[] }).dims;
        const x = one();
        const rank = x.shape.length;
        // TF.js' permutation of its own axes, as a permutation of the value as stored.
        const tfPerm = [0, ...dims];
        const perm = rank === 4 && !x.tfOrder ? tfPerm.map((a) => NCHW.indexOf(a)) : tfPerm;
        const src = bare(this.plain(x, layer.name));
        const y = perm.every((a, i) => a === i) ? src : this.g.transpose(src, perm, layer.name);
        return rank === 4 ? { ...y, tfOrder: true } : y;
      }
      default:
        throw new Unsupported('this layer type has no ONNX training translation in Refit');
    }
  }

  run(): TrainGraphSpec {
    const { model, g, n } = this;
    if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error(`ONNX training graph: model ${model.name} must have one input and one output`);
    const inT = model.inputs[0];
    if (inT.shape.length !== 4 || inT.shape.slice(1).some((d) => d == null)) throw new Error(`ONNX training graph: model ${model.name} must take [batch, H, W, C] of known size`);
    const [, h, w, c] = inT.shape as number[];
    const x = g.input(TRAIN_INPUT, [n, h, w, c]);
    const xNchw: TValue = { name: g.node('Transpose', [x.name], 'x_nchw', { perm: { ints: NCHW } }), shape: [n, c, h, w], grad: false };
    this.values.set(inT.id, xNchw);
    let activationFloats = 0;
    for (const node of this.nodes) {
      const layer = node.outboundLayer;
      if (layer.getClassName() === 'InputLayer') continue;
      if (node.outputTensors.length !== 1) throw new Error(`ONNX training graph: layer "${layer.name}" has ${node.outputTensors.length} outputs`);
      let v: Val;
      try {
        v = this.layer(layer, node);
      } catch (err) {
        if (err instanceof Unsupported) throw new Error(`ONNX training graph: layer "${layer.name}" (${layer.getClassName()}) is not supported: ${err.message}`);
        throw new Error(`ONNX training graph: layer "${layer.name}" (${layer.getClassName()}) failed: ${(err as Error).message}`, { cause: err });
      }
      this.values.set(node.outputTensors[0].id, v);
      if (v.grad) activationFloats += v.shape.reduce((a, b) => a * b, 1);
    }
    const logits = this.logits;
    if (!logits) throw new Error(`ONNX training graph: model ${model.name} must end in a softmax`);
    const k = logits.shape[1];
    const labels = g.input(TRAIN_LABELS, [n, k]);
    const cw = g.input(TRAIN_CLASS_WEIGHTS, [k]);

    // Loss as TF.js' weightedLoss: mean over the batch of w[label] · −Σ labels · log(clip(p, 1e-7, 1)).
    const p = g.node('Softmax', [logits.name], 'softmax', { axis: { i: 1 } });
    const logp = g.node('Log', [g.node('Clip', [p, g.scalar(1e-7), g.scalar(1)], 'p_clip')], 'logp');
    const perEx = g.node('Neg', [g.node('ReduceSum', [g.node('Mul', [labels.name, logp], 'ylogp'), g.ints([1])], 'sum_ylogp', { keepdims: { i: 0 } })], 'per_example');
    const exW = g.node('ReduceSum', [g.node('Mul', [labels.name, cw.name], 'yw'), g.ints([1])], 'example_weight', { keepdims: { i: 1 } }); // [N,1]
    const exW1 = g.node('Reshape', [exW, g.ints([n])], 'example_weight_n');
    const loss = g.node('ReduceMean', [g.node('Mul', [perEx, exW1], 'weighted')], 'loss_value', { keepdims: { i: 0 } });
    g.output({ name: loss, shape: [] }, TRAIN_LOSS);
    g.output({ name: p, shape: [n, k] }, TRAIN_PROBS);

    // d loss / d logits = (w/N) · (p · Σ t − t), t = labels where p ≥ 1e-7 (clip passes the gradient there).
    const inRange = g.node('Cast', [g.node('GreaterOrEqual', [p, g.scalar(1e-7)], 'p_in_range')], 'p_in_range_f', { to: { i: 1 } });
    const t = g.node('Mul', [labels.name, inRange], 't');
    const sumT = g.node('ReduceSum', [t, g.ints([1])], 'sum_t', { keepdims: { i: 1 } });
    const diff = g.node('Sub', [g.node('Mul', [p, sumT], 'p_sum_t'), t], 'p_minus_t');
    const coef = g.node('Mul', [exW, g.scalar(1 / n)], 'coef');
    const dLogits = g.node('Mul', [diff, coef], 'grad_logits');

    const grads = g.backward(new Map([[logits.name, dLogits]]), this.weightValues);
    for (const wt of this.weights) g.output({ name: grads.get(wt.name)!, shape: wt.shape }, gradName(wt.name));
    return {
      bytes: g.encode(`${model.name}_train`, `training graph of ${model.name}, batch ${n}`),
      batchSize: n,
      inputShape: [n, h, w, c],
      numClasses: k,
      weights: this.weights,
      runningStats: this.runningStats,
      dropouts: this.dropouts,
      momentum: this.momentum,
      activationFloats,
      workspaceFloats: this.workspaceFloats,
      frozenFloats: g.initializers.reduce((sum, t) => sum + (t.dataType === 1 && t.rawData ? t.rawData.byteLength / 4 : 0), 0),
    };
  }
}

/**
 * The training graph of `model` (a functional TF.js model ending in a softmax) for batches of
 * `batchSize`. Trainable weights are those of trainable layers (layer.trainable and the weight's own
 * flag), read by name when the graph runs; frozen ones are baked in now.
 */
export function buildTrainGraph(model: tf.LayersModel, options: BuildTrainGraphOptions): TrainGraphSpec {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new Error(`ONNX training graph: batch size must be a positive integer, got ${options.batchSize}`);
  return new TrainBuilder(model, modelNodes(model), options.batchSize, options.graph).run();
}
