// ONNX export of our TF.js functional models (backbone + head), built from the layer types the
// backbones actually use; serialised with onnx-proto (protobufjs). No converter in between: every
// layer is translated here, and any layer or option not handled exactly is refused with an Error
// naming the layer, never exported as a silently wrong graph.
//
// Layout: TF.js is channels-last (NHWC). Inside the ONNX graph every rank-4 feature map is kept
// channels-first (NCHW), what onnxruntime and most other runtimes run fastest. Each exported value
// remembers how its axes relate to the Keras tensor it stands for (`perm`: ONNX axis j is Keras axis
// perm[j]), so Permute costs nothing, and Flatten/Reshape/Dense see the Keras element order they were
// written for (a Transpose is inserted only where the order matters).
//
// Inference-time simplifications, all exact up to float rounding: BatchNormalization that directly
// follows a convolution (its only consumer, conv without activation) is folded into the conv's
// weights and bias; a standalone BatchNormalization becomes Mul + Add; ZeroPadding2D feeding only
// convolutions becomes the convolutions' own pads; Dropout is the identity.
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';
import { modelNodes, type TfNode } from './graph';

const { onnx } = onnxProto;

export type OnnxLayout = 'NHWC' | 'NCHW';

export interface OnnxExportOptions {
  /** ONNX opset of the default domain; default 13 (the minimum this exporter writes for). */
  opset?: number;
  /** Square input side; must match the model's input shape when that is fixed. */
  inputSize?: number;
  /** Layout of the graph's image input; default 'NHWC' (as the TF.js model). */
  layout?: OnnxLayout;
  /** Graph input / output names; defaults ONNX_INPUT_NAME / ONNX_OUTPUT_NAME. */
  inputName?: string;
  outputName?: string;
  /** Appended to the generated graph doc_string (e.g. the preprocessing the input expects). */
  docString?: string;
  producerVersion?: string;
}

export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'output';
export const ONNX_MIN_OPSET = 13;

/** What the exported graph takes: one float32 image batch, batch dimension symbolic ('batch'). */
export interface OnnxInputInfo {
  name: string;
  layout: OnnxLayout;
  dtype: 'float32';
  /** null = any batch size. */
  shape: [null, number, number, number];
}

export function onnxInputInfo(inputSize: number, layout: OnnxLayout = 'NHWC', name = ONNX_INPUT_NAME): OnnxInputInfo {
  const shape: [null, number, number, number] = layout === 'NHWC' ? [null, inputSize, inputSize, 3] : [null, 3, inputSize, inputSize];
  return { name, layout, dtype: 'float32', shape };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

type KerasShape = (number | null)[];

/** An exported value: ONNX tensor `name` holds the Keras tensor transposed by `perm`. */
interface Value {
  name: string;
  perm: number[];
  /** The Keras shape of the tensor this value stands for. */
  shape: KerasShape;
  /** Zero padding (ONNX order: begin H, begin W, end H, end W) not yet applied: for a conv to take as its pads. */
  pendingPads?: [number, number, number, number];
  /** Known to be ≥ 0 (output of a ReLU, sigmoid, …): zero padding then equals max-pool's −∞ padding. */
  nonNegative?: boolean;
}

const NCHW = [0, 3, 1, 2];
const identity = (rank: number) => Array.from({ length: rank }, (_, i) => i);
const invert = (perm: number[]) => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
};
const sameArray = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return [v[0], v[0]];
  throw new Error(`unexpected ${what}: ${JSON.stringify(v)}`);
};

/** The preferred ONNX layout of a Keras tensor of this rank (NCHW for images). */
const preferredPerm = (rank: number) => (rank === 4 ? NCHW : identity(rank));

/** TF's padding for one spatial axis: [before, after]. */
export function tfPadding(mode: string, size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  if (mode === 'valid') return [0, 0];
  if (mode !== 'same') throw new Error(`padding "${mode}" is not supported`);
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

class UnsupportedLayer extends Error {}

/** Float32 weights of `layer` by short name ('kernel', 'bias', 'gamma', …). */
function weightsOf(layer: tf.layers.Layer): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const w of layer.weights) {
    const short = w.originalName.split('/').pop()!;
    const t = w.read();
    out.set(short, { data: t.dataSync() as Float32Array, shape: t.shape });
  }
  return out;
}

function need<T>(m: Map<string, T>, key: string, layer: tf.layers.Layer): T {
  const v = m.get(key);
  if (!v) throw new Error(`layer "${layer.name}" (${layer.getClassName()}) has no "${key}" weight`);
  return v;
}

/** Scale and shift per channel of a BatchNormalization layer in inference mode (float64), for folding. */
export function batchNormAffine(bn: tf.layers.Layer): { scale: Float64Array; shift: Float64Array } {
  const cfg = bn.getConfig() as { epsilon: number; center: boolean; scale: boolean };
  const w = weightsOf(bn);
  const mean = need(w, 'moving_mean', bn).data;
  const variance = need(w, 'moving_variance', bn).data;
  const n = mean.length;
  const gamma = cfg.scale ? need(w, 'gamma', bn).data : new Float32Array(n).fill(1);
  const beta = cfg.center ? need(w, 'beta', bn).data : new Float32Array(n);
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + cfg.epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

/** `base` made a valid ONNX name not yet in `used` (a numeric suffix when taken); recorded in `used`. */
export function uniqueName(used: Set<string>, base: string): string {
  const clean = base.replace(/[^A-Za-z0-9_.\-/:]/g, '_') || 'v';
  let name = clean;
  for (let k = 1; used.has(name); k++) name = `${clean}_${k}`;
  used.add(name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// Graph builder

type AttrValue = { i: number } | { f: number } | { s: string } | { ints: number[] } | { floats: number[] };

class GraphBuilder {
  readonly nodes: O.INodeProto[] = [];
  readonly initializers: O.ITensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly transposed = new Map<string, string>();

  uniq(base: string): string {
    return uniqueName(this.used, base);
  }

  reserve(name: string): void {
    if (this.used.has(name)) throw new Error(`duplicate ONNX name ${name}`);
    this.used.add(name);
  }

  floatConst(base: string, dims: number[], data: Float32Array | number[]): string {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    if (arr.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`constant ${base}: ${arr.length} values for dims [${dims}]`);
    const name = this.uniq(base);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength)) });
    return name;
  }

  int64Const(base: string, values: number[]): string {
    const name = this.uniq(base);
    const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(arr.buffer) });
    return name;
  }

  node(op: string, inputs: string[], outBase: string, attrs: Record<string, AttrValue> = {}, nodeName?: string): string {
    const output = this.uniq(outBase);
    const A = onnx.AttributeProto.AttributeType;
    const attribute = Object.entries(attrs).map(([name, v]): O.IAttributeProto => {
      if ('i' in v) return { name, type: A.INT, i: v.i };
      if ('f' in v) return { name, type: A.FLOAT, f: v.f };
      if ('s' in v) return { name, type: A.STRING, s: new TextEncoder().encode(v.s) };
      if ('ints' in v) return { name, type: A.INTS, ints: v.ints };
      return { name, type: A.FLOATS, floats: v.floats };
    });
    this.nodes.push({ opType: op, input: inputs, output: [output], name: this.uniq(`${nodeName ?? output}/${op}`), attribute });
    return output;
  }

  /** `v` in layout `perm` (a Transpose when it is not already). */
  toPerm(v: Value, perm: number[]): Value {
    if (v.pendingPads) throw new Error(`internal: padding of ${v.name} was not applied`);
    if (sameArray(v.perm, perm)) return v;
    const inv = invert(v.perm);
    const t = perm.map((k) => inv[k]);
    const key = `${v.name}|${perm.join(',')}`;
    let name = this.transposed.get(key);
    if (!name) {
      name = this.node('Transpose', [v.name], `${v.name}_T${perm.join('')}`, { perm: { ints: t } });
      this.transposed.set(key, name);
    }
    return { name, perm, shape: v.shape, nonNegative: v.nonNegative };
  }
}

// ---------------------------------------------------------------------------------------------
// The exporter

/** Layers that take a preceding ZeroPadding2D as their own pads (see conv() and pool()). */
const PAD_TAKERS = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'MaxPooling2D', 'AveragePooling2D']);

class Exporter {
  private readonly g = new GraphBuilder();
  private readonly values = new Map<number, Value>();
  /** Consumers (layer class names) of each symbolic tensor id, within this model. */
  private readonly consumers = new Map<number, tf.layers.Layer[]>();
  /** BatchNormalization layers folded into the conv before them: BN output id ← conv value. */
  private readonly foldedBn = new Set<tf.layers.Layer>();
  private readonly outputIds: Set<number>;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly nodes: TfNode[],
  ) {
    this.outputIds = new Set(model.outputs.map((o) => o.id));
    for (const node of nodes) {
      for (const t of node.inputTensors) {
        const list = this.consumers.get(t.id) ?? [];
        list.push(node.outboundLayer);
        this.consumers.set(t.id, list);
      }
    }
  }

  private consumersOf(t: tf.SymbolicTensor): tf.layers.Layer[] {
    return this.consumers.get(t.id) ?? [];
  }

  private only(t: tf.SymbolicTensor): tf.layers.Layer | null {
    const c = this.consumersOf(t);
    return c.length === 1 && !this.outputIds.has(t.id) ? c[0] : null;
  }

  private get(t: tf.SymbolicTensor, layer: tf.layers.Layer): Value {
    const v = this.values.get(t.id);
    if (!v) throw new Error(`internal: input ${t.name} of layer "${layer.name}" was not exported`);
    return v;
  }

  /** Applies pending zero padding with a Pad node (for consumers that cannot take it as pads). */
  private materialize(v: Value): Value {
    if (!v.pendingPads) return v;
    const [t, l, b, r] = v.pendingPads;
    const rank = v.perm.length;
    const begin = new Array<number>(rank).fill(0);
    const end = new Array<number>(rank).fill(0);
    // v is NCHW here: H = axis 2, W = axis 3.
    begin[2] = t;
    begin[3] = l;
    end[2] = b;
    end[3] = r;
    const pads = this.g.int64Const(`${v.name}_pads`, [...begin, ...end]);
    const name = this.g.node('Pad', [v.name, pads], `${v.name}_padded`, { mode: { s: 'constant' } });
    const shape = [...v.shape];
    if (shape[1] != null) shape[1] = shape[1] + t + b;
    if (shape[2] != null) shape[2] = shape[2] + l + r;
    return { name, perm: v.perm, shape, nonNegative: v.nonNegative };
  }

  private input(v: Value, perm?: number[]): Value {
    const m = this.materialize(v);
    return perm ? this.g.toPerm(m, perm) : m;
  }

  private activation(v: Value, act: string, layer: tf.layers.Layer, axisKeras = -1): Value {
    const base = layer.name;
    const rank = v.perm.length;
    switch (act) {
      case 'linear':
        return v;
      case 'relu':
        return { ...v, name: this.g.node('Relu', [v.name], `${base}_relu`), nonNegative: true };
      case 'relu6': {
        const lo = this.g.floatConst(`${base}_min`, [], [0]);
        const hi = this.g.floatConst(`${base}_max`, [], [6]);
        return { ...v, name: this.g.node('Clip', [v.name, lo, hi], `${base}_relu6`), nonNegative: true };
      }
      case 'sigmoid':
        return { ...v, name: this.g.node('Sigmoid', [v.name], `${base}_sigmoid`), nonNegative: true };
      case 'tanh':
        return { ...v, name: this.g.node('Tanh', [v.name], `${base}_tanh`), nonNegative: false };
      case 'softmax': {
        const k = axisKeras < 0 ? rank + axisKeras : axisKeras;
        return { ...v, name: this.g.node('Softmax', [v.name], `${base}_softmax`, { axis: { i: v.perm.indexOf(k) } }), nonNegative: true };
      }
      default:
        throw new UnsupportedLayer(`activation "${act}"`);
    }
  }

  private bnAxis(bn: tf.layers.Layer, rank: number): number {
    const axis = (bn.getConfig() as { axis: number | number[] }).axis;
    const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis;
    const k = a < 0 ? rank + a : a;
    if (!Number.isInteger(k) || k <= 0 || k >= rank) throw new UnsupportedLayer(`BatchNormalization axis ${JSON.stringify(axis)}`);
    return k;
  }

  /** The BN layer to fold into `conv`, if its output goes only to one channel-last BN. */
  private bnToFold(conv: tf.layers.Layer, out: tf.SymbolicTensor, activation: string): tf.layers.Layer | null {
    if (activation !== 'linear') return null;
    const next = this.only(out);
    if (!next || next.getClassName() !== 'BatchNormalization') return null;
    if (this.bnAxis(next, 4) !== 3) return null;
    void conv;
    return next;
  }

  private conv(layer: tf.layers.Layer, node: TfNode): Value {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as {
      filters?: number;
      kernelSize: unknown;
      strides: unknown;
      padding: string;
      dataFormat: string;
      dilationRate: unknown;
      activation: string;
      useBias: boolean;
    };
    if (cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayer(`dataFormat ${cfg.dataFormat}`);
    const inT = node.inputTensors[0];
    const outT = node.outputTensors[0];
    const src = this.get(inT, layer);
    if (src.perm.length !== 4) throw new UnsupportedLayer(`input of rank ${src.perm.length}`);
    const [kh, kw] = pair(cfg.kernelSize, 'kernelSize');
    const [sh, sw] = pair(cfg.strides, 'strides');
    const [dh, dw] = pair(cfg.dilationRate, 'dilationRate');
    if ((dh !== 1 || dw !== 1) && (sh !== 1 || sw !== 1)) throw new UnsupportedLayer('dilation together with strides');
    const [h, w] = [inT.shape[1], inT.shape[2]];
    if (h == null || w == null) throw new UnsupportedLayer('unknown spatial input size');
    const [pt, pb] = tfPadding(cfg.padding, h, kh, sh, dh);
    const [pl, pr] = tfPadding(cfg.padding, w, kw, sw, dw);
    const extra = src.pendingPads ?? [0, 0, 0, 0];
    const pads = [pt + extra[0], pl + extra[1], pb + extra[2], pr + extra[3]];
    const x = this.g.toPerm({ ...src, pendingPads: undefined }, NCHW);

    const wts = weightsOf(layer);
    const bn = this.bnToFold(layer, outT, cfg.activation);
    const cin = inT.shape[3] as number;
    const attrsFor = (group: number, k: [number, number], strides: [number, number], p: number[], dil: [number, number]) => ({
      kernel_shape: { ints: k },
      strides: { ints: strides },
      pads: { ints: p },
      dilations: { ints: dil },
      group: { i: group },
    });

    // The last conv of the layer gets the bias and any folded BN.
    let lastW: { data: Float32Array; dims: number[] };
    let lastAttrs: Record<string, AttrValue>;
    let lastInput = x.name;
    const outChannels = outT.shape[3] as number;

    if (cls === 'Conv2D') {
      const k = need(wts, 'kernel', layer);
      lastW = { data: hwioToOihw(k.data, kh, kw, cin, outChannels), dims: [outChannels, cin, kh, kw] };
      lastAttrs = attrsFor(1, [kh, kw], [sh, sw], pads, [dh, dw]);
    } else {
      const dk = need(wts, 'depthwise_kernel', layer);
      const mult = dk.shape[3];
      const dwW = { data: depthwiseToOihw(dk.data, kh, kw, cin, mult), dims: [cin * mult, 1, kh, kw] };
      const dwAttrs = attrsFor(cin, [kh, kw], [sh, sw], pads, [dh, dw]);
      if (cls === 'DepthwiseConv2D') {
        lastW = dwW;
        lastAttrs = dwAttrs;
      } else {
        const wName = this.g.floatConst(`${layer.name}.depthwise_kernel`, dwW.dims, dwW.data);
        lastInput = this.g.node('Conv', [x.name, wName], `${layer.name}_depthwise`, dwAttrs, `${layer.name}_depthwise`);
        const pk = need(wts, 'pointwise_kernel', layer);
        lastW = { data: hwioToOihw(pk.data, 1, 1, cin * mult, outChannels), dims: [outChannels, cin * mult, 1, 1] };
        lastAttrs = attrsFor(1, [1, 1], [1, 1], [0, 0, 0, 0], [1, 1]);
      }
    }
    const bias = new Float64Array(outChannels);
    if (cfg.useBias) need(wts, 'bias', layer).data.forEach((b, i) => (bias[i] = b));
    let weight = lastW.data;
    let outName = layer.name;
    if (bn) {
      const { scale, shift } = batchNormAffine(bn);
      const per = weight.length / outChannels;
      const folded = new Float32Array(weight.length);
      for (let o = 0; o < outChannels; o++) {
        for (let j = 0; j < per; j++) folded[o * per + j] = weight[o * per + j] * scale[o];
        bias[o] = bias[o] * scale[o] + shift[o];
      }
      weight = folded;
      this.foldedBn.add(bn);
      outName = bn.name;
    }
    const inputs = [lastInput, this.g.floatConst(`${layer.name}.weight`, lastW.dims, weight)];
    if (cfg.useBias || bn) inputs.push(this.g.floatConst(`${layer.name}.bias`, [outChannels], Float32Array.from(bias)));
    const y: Value = { name: this.g.node('Conv', inputs, outName, lastAttrs, layer.name), perm: NCHW, shape: outT.shape };
    return this.activation(y, cfg.activation, layer);
  }

  private pool(layer: tf.layers.Layer, node: TfNode): Value {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as { poolSize: unknown; strides: unknown; padding: string; dataFormat: string };
    if (cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayer(`dataFormat ${cfg.dataFormat}`);
    const inT = node.inputTensors[0];
    const src = this.get(inT, layer);
    const [kh, kw] = pair(cfg.poolSize, 'poolSize');
    const [sh, sw] = pair(cfg.strides ?? cfg.poolSize, 'strides');
    const [h, w] = [inT.shape[1], inT.shape[2]];
    if (h == null || w == null) throw new UnsupportedLayer('unknown spatial input size');
    const [pt, pb] = tfPadding(cfg.padding, h, kh, sh);
    const [pl, pr] = tfPadding(cfg.padding, w, kw, sw);
    // TF's 'same' pooling ignores the padded cells (max over real cells; average over real cells):
    // ONNX MaxPool pads are −∞ and AveragePool with count_include_pad = 0 does the same.
    const op = cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
    let pads = [pt, pl, pb, pr];
    let countPad = 0;
    if (src.pendingPads) {
      // A ZeroPadding2D before the pool. A separate zero Pad is no option: onnxruntime's PadFusion
      // merges a Pad into a following MaxPool/AveragePool's own (−∞ / not-counted) pads, which
      // changes the result. So it becomes the pool's pads wherever that is exact, else it is refused.
      const zero = src.pendingPads;
      const fits = zero.every((p, i) => p < (i % 2 === 0 ? kh : kw));
      if (op === 'MaxPool' && src.nonNegative && fits) {
        pads = pads.map((p, i) => p + zero[i]); // inputs ≥ 0: a zero cell never beats the real maximum
      } else if (op === 'AveragePool' && pads.every((p) => p === 0) && fits) {
        pads = [...zero];
        countPad = 1; // zero cells count in the average, as after ZeroPadding2D
      } else {
        throw new UnsupportedLayer(
          op === 'MaxPool'
            ? 'zero padding before a max-pool is exportable only when its input is known to be ≥ 0 (after a ReLU/sigmoid) and the padding is smaller than the window'
            : "zero padding before an average pool is exportable only with 'valid' pooling and padding smaller than the window",
        );
      }
    }
    const x = this.g.toPerm({ ...src, pendingPads: undefined }, NCHW);
    const attrs: Record<string, AttrValue> = { kernel_shape: { ints: [kh, kw] }, strides: { ints: [sh, sw] }, pads: { ints: pads } };
    if (op === 'AveragePool') attrs.count_include_pad = { i: countPad };
    return {
      name: this.g.node(op, [x.name], layer.name, attrs),
      perm: NCHW,
      shape: node.outputTensors[0].shape,
      nonNegative: op === 'MaxPool' ? src.nonNegative : undefined,
    };
  }

  private dense(layer: tf.layers.Layer, node: TfNode): Value {
    const cfg = layer.getConfig() as { units: number; activation: string; useBias: boolean };
    const inT = node.inputTensors[0];
    const rank = inT.shape.length;
    let x = this.input(this.get(inT, layer));
    // Dense maps the last Keras axis: it must be the last ONNX axis too.
    if (x.perm[rank - 1] !== rank - 1) x = this.g.toPerm(x, identity(rank));
    const wts = weightsOf(layer);
    const k = need(wts, 'kernel', layer);
    const [fin, units] = k.shape;
    const wName = this.g.floatConst(`${layer.name}.kernel`, [fin, units], k.data);
    const inputs = [x.name, wName];
    if (cfg.useBias) inputs.push(this.g.floatConst(`${layer.name}.bias`, [units], need(wts, 'bias', layer).data));
    let name: string;
    if (rank === 2) {
      name = this.g.node('Gemm', inputs, layer.name);
    } else {
      name = this.g.node('MatMul', inputs.slice(0, 2), `${layer.name}_matmul`);
      if (cfg.useBias) name = this.g.node('Add', [name, inputs[2]], layer.name);
    }
    return this.activation({ name, perm: x.perm, shape: node.outputTensors[0].shape }, cfg.activation, layer);
  }

  private elementwise(layer: tf.layers.Layer, node: TfNode, op: 'Add' | 'Mul' | 'Sub' | 'Max' | 'Min'): Value {
    const vals = node.inputTensors.map((t) => this.input(this.get(t, layer)));
    const rank = Math.max(...vals.map((v) => v.perm.length));
    if (vals.some((v) => v.perm.length !== rank)) throw new UnsupportedLayer('inputs of different ranks');
    // Bring every input to the layout of the first one (NCHW for feature maps).
    const perm = vals[0].perm;
    const [first, ...rest] = vals.map((v) => this.g.toPerm(v, perm));
    let name = first.name;
    rest.forEach((v, i) => {
      name = this.g.node(op, [name, v.name], i === rest.length - 1 ? layer.name : `${layer.name}_${i}`);
    });
    // Sums, products and maxima of values ≥ 0 are ≥ 0 (Min would be too; Sub is not).
    const nonNegative = op !== 'Sub' && vals.every((v) => v.nonNegative);
    return { name, perm, shape: node.outputTensors[0].shape, nonNegative };
  }

  private concat(layer: tf.layers.Layer, node: TfNode): Value {
    const axisCfg = (layer.getConfig() as { axis: number }).axis;
    const vals = node.inputTensors.map((t) => this.input(this.get(t, layer)));
    const rank = vals[0].perm.length;
    const perm = vals[0].perm;
    const k = axisCfg < 0 ? rank + axisCfg : axisCfg;
    const names = vals.map((v) => this.g.toPerm(v, perm).name);
    return {
      name: this.g.node('Concat', names, layer.name, { axis: { i: perm.indexOf(k) } }),
      perm,
      shape: node.outputTensors[0].shape,
      nonNegative: vals.every((v) => v.nonNegative),
    };
  }

  private reshape(layer: tf.layers.Layer, node: TfNode): Value {
    const inT = node.inputTensors[0];
    const outShape = node.outputTensors[0].shape;
    if (outShape.slice(1).some((d) => d == null)) throw new UnsupportedLayer('output shape not fully known');
    const x = this.input(this.get(inT, layer), identity(inT.shape.length)); // Keras (row-major) element order
    const target = preferredPerm(outShape.length);
    // Writing the result straight in the preferred layout is a plain reshape when that layout only
    // moves size-1 axes (e.g. SE's [b, C] → [b, 1, 1, C] read as NCHW [b, C, 1, 1]).
    const big = (order: number[]) => order.filter((k) => k > 0 && outShape[k] !== 1);
    const perm = sameArray(big(target), big(identity(outShape.length))) ? target : identity(outShape.length);
    const dims = perm.map((k) => (k === 0 ? 0 : (outShape[k] as number))); // 0 = copy the batch size
    const shapeName = this.g.int64Const(`${layer.name}_shape`, dims);
    return { name: this.g.node('Reshape', [x.name, shapeName], layer.name), perm, shape: outShape };
  }

  private flatten(layer: tf.layers.Layer, node: TfNode): Value {
    const inT = node.inputTensors[0];
    const rank = inT.shape.length;
    const x = this.input(this.get(inT, layer), identity(rank));
    if (rank === 2) return x;
    return { name: this.g.node('Flatten', [x.name], layer.name, { axis: { i: 1 } }), perm: [0, 1], shape: node.outputTensors[0].shape };
  }

  private permute(layer: tf.layers.Layer, node: TfNode): Value {
    const dims = (layer.getConfig() as { dims: number[] }).dims;
    const x = this.get(node.inputTensors[0], layer);
    const p = [0, ...dims];
    const pinv = invert(p);
    // Keras out axis i = Keras in axis p[i]; ONNX axis j holds Keras in axis x.perm[j] = Keras out axis pinv[x.perm[j]].
    return { ...x, perm: x.perm.map((k) => pinv[k]), shape: node.outputTensors[0].shape };
  }

  private zeroPad(layer: tf.layers.Layer, node: TfNode): Value {
    const cfg = layer.getConfig() as { padding: [[number, number], [number, number]] | number; dataFormat: string };
    if (cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayer(`dataFormat ${cfg.dataFormat}`);
    const p = cfg.padding;
    const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : p.map((q) => (typeof q === 'number' ? [q, q] : q)) as [[number, number], [number, number]];
    const inT = node.inputTensors[0];
    const outT = node.outputTensors[0];
    const x = this.input(this.get(inT, layer), NCHW);
    const consumers = this.consumersOf(outT);
    // Left pending for consumers that take it as their own pads; a Pad node otherwise (with several
    // consumers onnxruntime's PadFusion leaves it alone).
    const takers = consumers.length > 0 && !this.outputIds.has(outT.id) && consumers.every((c) => PAD_TAKERS.has(c.getClassName()));
    if (takers) return { ...x, shape: outT.shape, pendingPads: [t, l, b, r] };
    return this.materialize({ ...x, pendingPads: [t, l, b, r] });
  }

  private standaloneBn(layer: tf.layers.Layer, node: TfNode): Value {
    const inT = node.inputTensors[0];
    const rank = inT.shape.length;
    const k = this.bnAxis(layer, rank);
    const x = this.input(this.get(inT, layer));
    const { scale, shift } = batchNormAffine(layer);
    const dims = new Array<number>(rank).fill(1);
    dims[x.perm.indexOf(k)] = scale.length;
    const s = this.g.floatConst(`${layer.name}.scale`, dims, Float32Array.from(scale));
    const b = this.g.floatConst(`${layer.name}.shift`, dims, Float32Array.from(shift));
    const m = this.g.node('Mul', [x.name, s], `${layer.name}_scaled`);
    return { name: this.g.node('Add', [m, b], layer.name), perm: x.perm, shape: node.outputTensors[0].shape };
  }

  private layer(layer: tf.layers.Layer, node: TfNode): Value {
    const cls = layer.getClassName();
    const one = () => this.get(node.inputTensors[0], layer);
    switch (cls) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D':
        return this.conv(layer, node);
      case 'BatchNormalization':
        if (this.foldedBn.has(layer)) {
          // Folded into the conv before it: that conv's output already is this layer's output.
          return one();
        }
        return this.standaloneBn(layer, node);
      case 'Activation':
        return this.activation(this.input(one()), (layer.getConfig() as { activation: string }).activation, layer);
      case 'ReLU': {
        const max = (layer.getConfig() as { maxValue?: number | null }).maxValue;
        const x = this.input(one());
        if (max == null) return this.activation(x, 'relu', layer);
        const lo = this.g.floatConst(`${layer.name}_min`, [], [0]);
        const hi = this.g.floatConst(`${layer.name}_max`, [], [max]);
        return { ...x, name: this.g.node('Clip', [x.name, lo, hi], layer.name), nonNegative: true };
      }
      case 'Softmax': {
        const axis = (layer.getConfig() as { axis?: number }).axis ?? -1;
        return this.activation(this.input(one()), 'softmax', layer, axis);
      }
      case 'ZeroPadding2D':
        return this.zeroPad(layer, node);
      case 'MaxPooling2D':
      case 'AveragePooling2D':
        return this.pool(layer, node);
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const cfg = layer.getConfig() as { dataFormat?: string; keepDims?: boolean };
        if ((cfg.dataFormat ?? 'channelsLast') !== 'channelsLast') throw new UnsupportedLayer(`dataFormat ${cfg.dataFormat}`);
        if (cfg.keepDims) throw new UnsupportedLayer('keepDims');
        const x = this.input(one(), NCHW);
        const pooled = this.g.node(cls === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x.name], `${layer.name}_nchw11`);
        return { name: this.g.node('Flatten', [pooled], layer.name, { axis: { i: 1 } }), perm: [0, 1], shape: node.outputTensors[0].shape };
      }
      case 'Add':
        return this.elementwise(layer, node, 'Add');
      case 'Multiply':
        return this.elementwise(layer, node, 'Mul');
      case 'Subtract':
        return this.elementwise(layer, node, 'Sub');
      case 'Maximum':
        return this.elementwise(layer, node, 'Max');
      case 'Minimum':
        return this.elementwise(layer, node, 'Min');
      case 'Concatenate':
        return this.concat(layer, node);
      case 'Dense':
        return this.dense(layer, node);
      case 'Dropout':
        return one();
      case 'Flatten':
        return this.flatten(layer, node);
      case 'Reshape':
        return this.reshape(layer, node);
      case 'Permute':
        return this.permute(layer, node);
      default:
        throw new UnsupportedLayer('this layer type has no ONNX translation in Refit');
    }
  }

  run(options: Required<Pick<OnnxExportOptions, 'opset' | 'layout' | 'inputName' | 'outputName'>> & { inputSize: number; docString?: string; producerVersion?: string }): Uint8Array {
    const { model, g } = this;
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new Error(`ONNX export: model ${model.name} must have one input and one output (has ${model.inputs.length} and ${model.outputs.length})`);
    }
    const inT = model.inputs[0];
    const [, h, w, c] = inT.shape;
    if (inT.shape.length !== 4 || c !== 3) throw new Error(`ONNX export: model ${model.name} must take [batch, H, W, 3] images, takes [${inT.shape.join(', ')}]`);
    const size = options.inputSize;
    if ((h != null && h !== size) || (w != null && w !== size)) {
      throw new Error(`ONNX export: model ${model.name} takes ${h}×${w} images, not ${size}×${size}`);
    }
    const shape: KerasShape = [null, size, size, 3];
    g.reserve(options.inputName);
    g.reserve(options.outputName);
    const start: Value =
      options.layout === 'NCHW'
        ? { name: options.inputName, perm: NCHW, shape }
        : g.toPerm({ name: options.inputName, perm: identity(4), shape }, NCHW);
    this.values.set(inT.id, start);

    for (const node of this.nodes) {
      const layer = node.outboundLayer;
      if (layer.getClassName() === 'InputLayer') {
        if (node.outputTensors[0].id !== inT.id) throw new Error(`ONNX export: unexpected extra input layer "${layer.name}"`);
        continue;
      }
      if (node.outputTensors.length !== 1) throw new Error(`ONNX export: layer "${layer.name}" (${layer.getClassName()}) has ${node.outputTensors.length} outputs`);
      let v: Value;
      try {
        v = this.layer(layer, node);
      } catch (err) {
        if (err instanceof UnsupportedLayer) {
          throw new Error(`ONNX export: layer "${layer.name}" (${layer.getClassName()}) is not supported: ${err.message}`);
        }
        throw new Error(`ONNX export of layer "${layer.name}" (${layer.getClassName()}) failed: ${(err as Error).message}`, { cause: err });
      }
      this.values.set(node.outputTensors[0].id, v);
    }

    const outT = model.outputs[0];
    const last = this.input(this.get(outT, model as unknown as tf.layers.Layer), identity(outT.shape.length));
    g.nodes.push({ opType: 'Identity', input: [last.name], output: [options.outputName], name: g.uniq('output/Identity') });
    const outDims = outT.shape.slice(1) as number[];

    const F = onnx.TensorProto.DataType.FLOAT;
    const valueInfo = (name: string, dims: (number | string)[]): O.IValueInfoProto => ({
      name,
      type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
    });
    const inputDims: (number | string)[] = options.layout === 'NCHW' ? ['batch', 3, size, size] : ['batch', size, size, 3];
    const doc =
      `Input "${options.inputName}": float32 [batch, ${options.layout === 'NCHW' ? `3, ${size}, ${size}` : `${size}, ${size}, 3`}] ` +
      `(${options.layout}${options.layout === 'NHWC' ? '; transposed to NCHW inside the graph' : ''}). ` +
      `Output "${options.outputName}": float32 [batch, ${outDims.join(', ')}] (${model.name}).` +
      (options.docString ? ` ${options.docString}` : '');
    const modelProto = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: options.opset }],
      producerName: 'refit',
      producerVersion: options.producerVersion ?? '',
      docString: doc,
      graph: {
        name: model.name,
        docString: doc,
        node: g.nodes,
        initializer: g.initializers,
        input: [valueInfo(options.inputName, inputDims)],
        output: [valueInfo(options.outputName, ['batch', ...outDims])],
      },
    });
    return onnx.ModelProto.encode(modelProto).finish();
  }
}

/** TF conv kernel [kh, kw, cin, cout] → ONNX [cout, cin, kh, kw]. */
function hwioToOihw(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  if (k.length !== kh * kw * cin * cout) throw new Error(`kernel has ${k.length} values, expected ${kh}×${kw}×${cin}×${cout}`);
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = k[src + o];
      }
  return out;
}

/** TF depthwise kernel [kh, kw, cin, mult] → ONNX grouped conv [cin·mult, 1, kh, kw] (output channel c·mult + m, as TF). */
function depthwiseToOihw(k: Float32Array, kh: number, kw: number, cin: number, mult: number): Float32Array {
  if (k.length !== kh * kw * cin * mult) throw new Error(`depthwise kernel has ${k.length} values, expected ${kh}×${kw}×${cin}×${mult}`);
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let m = 0; m < mult; m++) out[((i * mult + m) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * mult + m];
  return out;
}

/**
 * Serialises a functional TF.js model (one [batch, H, W, 3] float input, one output) as an ONNX
 * model (opset ≥ 13). The weights are read now: later training does not change the bytes.
 */
export function toOnnx(model: tf.LayersModel, options: OnnxExportOptions = {}): Uint8Array {
  const opset = options.opset ?? ONNX_MIN_OPSET;
  if (!Number.isInteger(opset) || opset < ONNX_MIN_OPSET) throw new Error(`ONNX export: opset must be an integer ≥ ${ONNX_MIN_OPSET}, got ${opset}`);
  const layout = options.layout ?? 'NHWC';
  if (layout !== 'NHWC' && layout !== 'NCHW') throw new Error(`ONNX export: layout must be NHWC or NCHW, got ${String(layout)}`);
  const inputSize = options.inputSize ?? (model.inputs[0]?.shape[1] as number | null);
  if (inputSize == null || !Number.isInteger(inputSize) || inputSize < 1) throw new Error('ONNX export: the input size is unknown; pass inputSize');
  return new Exporter(model, modelNodes(model)).run({
    opset,
    layout,
    inputSize,
    inputName: options.inputName ?? ONNX_INPUT_NAME,
    outputName: options.outputName ?? ONNX_OUTPUT_NAME,
    docString: options.docString,
    producerVersion: options.producerVersion,
  });
}
