// A small ONNX graph builder with reverse-mode differentiation, for training graphs that run on
// onnxruntime-node's inference build (which has no gradient kernels): every forward op records how its
// gradient is written in standard ONNX ops, and backward() walks that tape in reverse.
//
// Values are plain ONNX tensor names with their full static shape (the batch size is fixed per graph)
// and whether a gradient flows to them. Feature maps are NCHW. Opset 17 (ScatterElements with
// reduction='add' needs ≥ 16; ReduceMean still takes `axes` as an attribute there).
import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';
import { uniqueName } from '../onnx-export';

const { onnx } = onnxProto;

export const TRAIN_OPSET = 17;

export interface TValue {
  name: string;
  shape: number[];
  /** A gradient flows to this value (it depends on a trainable weight). */
  grad: boolean;
  /** Known to be ≥ 0 (after ReLU / sigmoid / a max-pool of such). */
  nonNegative?: boolean;
}

type AttrValue = { i: number } | { f: number } | { s: string } | { ints: number[] } | { floats: number[] };
type Attrs = Record<string, AttrValue>;

interface TapeEntry {
  inputs: TValue[];
  output: TValue;
  /** Gradient of the output → gradient of each input (null where none is needed). */
  backward: (gy: string) => (string | null)[];
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Default largest set of cut windows a strided filter gradient builds in one piece: 64M floats = 256 MiB. */
const MAX_UNFOLDED = 64 * 1024 * 1024;

export interface TrainGraphOptions {
  /** Largest set of cut windows (floats) a strided filter gradient builds in one piece; above it, one Gemm per kernel offset. */
  maxUnfolded?: number;
  /**
   * onnxruntime's NCHWc channel block on this CPU (nchwcBlockSize()); 0 or absent: plain Conv only. With
   * it, spatial convolutions whose channels fit the block run as com.microsoft.nchwc Conv.
   */
  nchwcBlock?: number;
  /** Fewest output pixels (per image) a convolution needs to run as NCHWc (default 7², ResNet's last stage at 224²). */
  nchwcMinPixels?: number;
}

const NCHWC_DOMAIN = 'com.microsoft.nchwc';

export class TrainGraph {
  readonly nodes: O.INodeProto[] = [];
  readonly initializers: O.ITensorProto[] = [];
  readonly inputs: O.IValueInfoProto[] = [];
  readonly outputs: O.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly tape: TapeEntry[] = [];
  private readonly scalars = new Map<string, string>();
  private readonly int64s = new Map<string, string>();
  private readonly maxUnfolded: number;
  private readonly nchwcBlock: number;
  private readonly nchwcMinPixels: number;

  constructor(options: TrainGraphOptions = {}) {
    this.maxUnfolded = options.maxUnfolded ?? MAX_UNFOLDED;
    this.nchwcBlock = options.nchwcBlock && options.nchwcBlock > 1 ? options.nchwcBlock : 0;
    this.nchwcMinPixels = options.nchwcMinPixels ?? 7 * 7;
  }

  uniq(base: string): string {
    return uniqueName(this.used, base);
  }

  private info(name: string, shape: readonly number[], elemType: number = onnx.TensorProto.DataType.FLOAT): O.IValueInfoProto {
    return { name, type: { tensorType: { elemType, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
  }

  /** A float graph input of this exact name. */
  input(name: string, shape: number[], grad = false): TValue {
    if (this.used.has(name)) throw new Error(`duplicate graph input ${name}`);
    this.used.add(name);
    this.inputs.push(this.info(name, shape));
    return { name, shape, grad };
  }

  /** Marks `v` as a graph output under `name` (an Identity when the name differs). */
  output(v: TValue | { name: string; shape: number[] }, name: string, elemType?: number): void {
    if (v.name !== name) {
      this.used.add(name);
      this.nodes.push({ opType: 'Identity', input: [v.name], output: [name], name: this.uniq(`${name}/Identity`) });
    }
    this.outputs.push(this.info(name, v.shape, elemType));
  }

  floatConst(base: string, dims: number[], data: Float32Array | number[]): string {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    if (arr.length !== numel(dims)) throw new Error(`constant ${base}: ${arr.length} values for dims [${dims}]`);
    const name = this.uniq(base);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength)) });
    return name;
  }

  /** A shared float scalar constant. */
  scalar(v: number): string {
    const key = String(v);
    let name = this.scalars.get(key);
    if (!name) {
      name = this.floatConst(`c_${key}`, [], [v]);
      this.scalars.set(key, name);
    }
    return name;
  }

  /** A shared int64 vector constant. */
  ints(values: number[]): string {
    const key = values.join(',');
    let name = this.int64s.get(key);
    if (!name) {
      name = this.uniq(`i64_${values.join('_').replace(/-/g, 'm')}`.slice(0, 60));
      const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
      this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(arr.buffer) });
      this.int64s.set(key, name);
    }
    return name;
  }

  /** A raw node; returns its output names (one per `outputs` count). */
  nodeN(op: string, inputs: string[], outBase: string, nOut: number, attrs: Attrs = {}, domain?: string): string[] {
    const outs = Array.from({ length: nOut }, (_, i) => this.uniq(nOut === 1 ? outBase : `${outBase}_${i}`));
    const A = onnx.AttributeProto.AttributeType;
    const attribute = Object.entries(attrs).map(([name, v]): O.IAttributeProto => {
      if ('i' in v) return { name, type: A.INT, i: v.i };
      if ('f' in v) return { name, type: A.FLOAT, f: v.f };
      if ('s' in v) return { name, type: A.STRING, s: new TextEncoder().encode(v.s) };
      if ('ints' in v) return { name, type: A.INTS, ints: v.ints };
      return { name, type: A.FLOATS, floats: v.floats };
    });
    this.nodes.push({ opType: op, input: inputs, output: outs, name: this.uniq(`${outs[0]}/${op}`), attribute, ...(domain ? { domain } : {}) });
    return outs;
  }

  node(op: string, inputs: string[], outBase: string, attrs: Attrs = {}, domain?: string): string {
    return this.nodeN(op, inputs, outBase, 1, attrs, domain)[0];
  }

  private record(inputs: TValue[], output: TValue, backward: TapeEntry['backward']): TValue {
    if (output.grad) this.tape.push({ inputs, output, backward });
    return output;
  }

  /** Sum of gradient contributions. */
  private sum(parts: string[], base: string): string {
    return parts.length === 1 ? parts[0] : this.node('Sum', parts, `${base}_gsum`);
  }

  /**
   * Reverse pass from `seeds` (value name → its gradient). Returns the gradient of each of `wanted`
   * (graph inputs that take a gradient); throws when one receives none.
   */
  backward(seeds: Map<string, string>, wanted: TValue[]): Map<string, string> {
    const grads = new Map<string, string[]>();
    for (const [k, g] of seeds) grads.set(k, [g]);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const e = this.tape[i];
      const parts = grads.get(e.output.name);
      if (!parts) continue;
      const gy = this.sum(parts, e.output.name);
      const gx = e.backward(gy);
      e.inputs.forEach((x, j) => {
        const g = gx[j];
        if (!x.grad || g == null) return;
        const list = grads.get(x.name) ?? [];
        list.push(g);
        grads.set(x.name, list);
      });
    }
    const out = new Map<string, string>();
    for (const w of wanted) {
      const parts = grads.get(w.name);
      if (!parts) throw new Error(`internal: no gradient reaches ${w.name}`);
      out.set(w.name, this.sum(parts, w.name));
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Differentiable ops

  /** Elementwise y = f(x) whose gradient is gy · d(x, y). */
  private unary(x: TValue, op: string, base: string, attrs: Attrs, grad: (gy: string, y: string) => string, nonNegative?: boolean): TValue {
    const y: TValue = { name: this.node(op, [x.name], base, attrs), shape: x.shape, grad: x.grad, nonNegative };
    return this.record([x], y, (gy) => [grad(gy, y.name)]);
  }

  relu(x: TValue, base: string): TValue {
    return this.unary(x, 'Relu', base, {}, (gy, y) => {
      // TF: gy where x > 0 (y > 0 is the same set). The mask as Cast(y > 0): onnxruntime's Sign is
      // unvectorised (16 ms on [16,64,56,56] where Greater + Cast take 2).
      const mask = this.node('Cast', [this.node('Greater', [y, this.scalar(0)], `${base}_pos`)], `${base}_mask`, { to: { i: onnx.TensorProto.DataType.FLOAT } });
      return this.node('Mul', [gy, mask], `${base}_grad`);
    }, true);
  }

  sigmoid(x: TValue, base: string): TValue {
    return this.unary(x, 'Sigmoid', base, {}, (gy, y) => {
      const oneMinus = this.node('Sub', [this.scalar(1), y], `${base}_1my`);
      const d = this.node('Mul', [y, oneMinus], `${base}_dy`);
      return this.node('Mul', [gy, d], `${base}_grad`);
    }, true);
  }

  /** x · c + b with constants broadcast over x (c, b may be null). */
  affineConst(x: TValue, scale: string | null, shift: string | null, base: string): TValue {
    let name = x.name;
    if (scale) name = this.node('Mul', [name, scale], shift ? `${base}_scaled` : base);
    if (shift) name = this.node('Add', [name, shift], base);
    const y: TValue = { name, shape: x.shape, grad: x.grad };
    return this.record([x], y, (gy) => [scale ? this.node('Mul', [gy, scale], `${base}_grad`) : gy]);
  }

  /** Sum of same-shape values. */
  add(xs: TValue[], base: string): TValue {
    let name = xs[0].name;
    for (let i = 1; i < xs.length; i++) name = this.node('Add', [name, xs[i].name], i === xs.length - 1 ? base : `${base}_${i}`);
    const y: TValue = { name, shape: xs[0].shape, grad: xs.some((x) => x.grad), nonNegative: xs.every((x) => x.nonNegative) };
    return this.record(xs, y, (gy) => xs.map(() => gy));
  }

  /** a [N,C,H,W] · s [N,C,1,1] (or same shape). */
  mulBroadcast(a: TValue, s: TValue, base: string): TValue {
    const y: TValue = { name: this.node('Mul', [a.name, s.name], base), shape: a.shape, grad: a.grad || s.grad, nonNegative: a.nonNegative && s.nonNegative };
    return this.record([a, s], y, (gy) => {
      const ga = a.grad ? this.node('Mul', [gy, s.name], `${base}_ga`) : null;
      let gs: string | null = null;
      if (s.grad) {
        const prod = this.node('Mul', [gy, a.name], `${base}_gsfull`);
        const axes = s.shape.map((d, i) => (d === 1 && a.shape[i] !== 1 ? i : -1)).filter((i) => i >= 0);
        gs = axes.length ? this.node('ReduceSum', [prod, this.ints(axes)], `${base}_gs`, { keepdims: { i: 1 } }) : prod;
      }
      return [ga, gs];
    });
  }

  reshape(x: TValue, shape: number[], base: string): TValue {
    if (numel(shape) !== numel(x.shape)) throw new Error(`reshape ${x.shape} → ${shape}`);
    const y: TValue = { name: this.node('Reshape', [x.name, this.ints(shape)], base), shape, grad: x.grad, nonNegative: x.nonNegative };
    return this.record([x], y, (gy) => [this.node('Reshape', [gy, this.ints(x.shape)], `${base}_grad`)]);
  }

  transpose(x: TValue, perm: number[], base: string): TValue {
    const shape = perm.map((p) => x.shape[p]);
    const y: TValue = { name: this.node('Transpose', [x.name], base, { perm: { ints: perm } }), shape, grad: x.grad, nonNegative: x.nonNegative };
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return this.record([x], y, (gy) => [this.node('Transpose', [gy], `${base}_grad`, { perm: { ints: inv } })]);
  }

  /** Zero padding of H and W ([top, left, bottom, right]); its gradient is a Slice. */
  pad(x: TValue, pads: [number, number, number, number], base: string): TValue {
    const [t, l, b, r] = pads;
    const [n, c, h, w] = x.shape;
    const y: TValue = {
      name: this.node('Pad', [x.name, this.ints([0, 0, t, l, 0, 0, b, r])], base, { mode: { s: 'constant' } }),
      shape: [n, c, h + t + b, w + l + r],
      grad: x.grad,
      nonNegative: x.nonNegative,
    };
    return this.record([x], y, (gy) => [this.node('Slice', [gy, this.ints([t, l]), this.ints([t + h, l + w]), this.ints([2, 3])], `${base}_grad`)]);
  }

  concat(xs: TValue[], axis: number, base: string): TValue {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
    const y: TValue = { name: this.node('Concat', xs.map((x) => x.name), base, { axis: { i: axis } }), shape, grad: xs.some((x) => x.grad), nonNegative: xs.every((x) => x.nonNegative) };
    return this.record(xs, y, (gy) => {
      const parts = this.nodeN('Split', [gy, this.ints(xs.map((x) => x.shape[axis]))], `${base}_grad`, xs.length, { axis: { i: axis } });
      return parts;
    });
  }

  /** Dropout with a mask fed in (already scaled by 1/(1 − rate)): y = x · mask. */
  maskMul(x: TValue, mask: string, base: string): TValue {
    const y: TValue = { name: this.node('Mul', [x.name, mask], base), shape: x.shape, grad: x.grad, nonNegative: x.nonNegative };
    return this.record([x], y, (gy) => [this.node('Mul', [gy, mask], `${base}_grad`)]);
  }

  /** [N,C,H,W] → [N,C] mean over H, W. */
  globalAvgPool(x: TValue, base: string): TValue {
    const [n, c, h, w] = x.shape;
    const pooled = this.node('GlobalAveragePool', [x.name], `${base}_nc11`);
    const y: TValue = { name: this.node('Flatten', [pooled], base, { axis: { i: 1 } }), shape: [n, c], grad: x.grad, nonNegative: x.nonNegative };
    return this.record([x], y, (gy) => {
      const g4 = this.node('Reshape', [gy, this.ints([n, c, 1, 1])], `${base}_g4`);
      const scaled = this.node('Mul', [g4, this.scalar(1 / (h * w))], `${base}_gs`);
      return [this.node('Expand', [scaled, this.ints(x.shape)], `${base}_grad`)];
    });
  }

  /** MaxPool (pads as the window may hang over; −∞ padding); gradient by Indices + ScatterElements(add). */
  maxPool(x: TValue, kernel: [number, number], strides: [number, number], pads: number[], base: string): TValue {
    const [n, c, h, w] = x.shape;
    const oh = Math.floor((h + pads[0] + pads[2] - kernel[0]) / strides[0]) + 1;
    const ow = Math.floor((w + pads[1] + pads[3] - kernel[1]) / strides[1]) + 1;
    const attrs: Attrs = { kernel_shape: { ints: kernel }, strides: { ints: strides }, pads: { ints: pads } };
    const [yName, idx] = x.grad ? this.nodeN('MaxPool', [x.name], base, 2, attrs) : [this.node('MaxPool', [x.name], base, attrs), ''];
    const y: TValue = { name: yName, shape: [n, c, oh, ow], grad: x.grad, nonNegative: x.nonNegative };
    return this.record([x], y, (gy) => {
      const total = numel(x.shape);
      const zeros = this.node('ConstantOfShape', [this.ints([total])], `${base}_zeros`, {});
      const flatIdx = this.node('Reshape', [idx, this.ints([-1])], `${base}_idx`);
      const flatG = this.node('Reshape', [gy, this.ints([-1])], `${base}_gflat`);
      const scattered = this.node('ScatterElements', [zeros, flatIdx, flatG], `${base}_scatter`, { axis: { i: 0 }, reduction: { s: 'add' } });
      return [this.node('Reshape', [scattered, this.ints(x.shape)], `${base}_grad`)];
    });
  }

  /** y = x · W (+ b): x [N,F], W [F,U], b [U]. */
  gemm(x: TValue, wt: TValue, b: TValue | null, base: string): TValue {
    const [n] = x.shape;
    const [, u] = wt.shape;
    const ins = b ? [x.name, wt.name, b.name] : [x.name, wt.name];
    const y: TValue = { name: this.node('Gemm', ins, base), shape: [n, u], grad: x.grad || wt.grad || !!b?.grad };
    const inputs = b ? [x, wt, b] : [x, wt];
    return this.record(inputs, y, (gy) => {
      const gx = x.grad ? this.node('Gemm', [gy, wt.name], `${base}_gx`, { transB: { i: 1 } }) : null;
      const gw = wt.grad ? this.node('Gemm', [x.name, gy], `${base}_gw`, { transA: { i: 1 } }) : null;
      const gb = b?.grad ? this.node('ReduceSum', [gy, this.ints([0])], `${base}_gb`, { keepdims: { i: 0 } }) : null;
      return b ? [gx, gw, gb] : [gx, gw];
    });
  }

  /**
   * 2-D convolution, dilation 1: x [N,C,H,W], w [O,C/g,kh,kw] (g = 1 or g = C = O, depthwise), b [O].
   * Input gradient: ConvTranspose. Filter gradient: a convolution with batch and channel roles swapped
   * (the output gradient as the filter, the stride as its dilation).
   */
  conv(x: TValue, wt: TValue, b: TValue | null, strides: [number, number], pads: [number, number, number, number], group: number, base: string): TValue {
    const [n, c, h, w] = x.shape;
    const [o, cg, kh, kw] = wt.shape;
    if (group !== 1 && !(group === c && cg === 1 && o === c)) throw new Error(`conv ${base}: only plain or depthwise (multiplier 1) convolutions, got group ${group}`);
    if (cg * group !== c) throw new Error(`conv ${base}: weight [${wt.shape}] does not fit ${c} input channels`);
    const [pt, pl, pb, pr] = pads;
    const oh = Math.floor((h + pt + pb - kh) / strides[0]) + 1;
    const ow = Math.floor((w + pl + pr - kw) / strides[1]) + 1;
    const attrs: Attrs = { kernel_shape: { ints: [kh, kw] }, strides: { ints: strides }, pads: { ints: pads }, dilations: { ints: [1, 1] }, group: { i: group } };
    const ins = b ? [x.name, wt.name, b.name] : [x.name, wt.name];
    const fwd = group === 1 && this.nchwcFits(c, o, kh, kw, oh * ow) ? this.nchwcConv(x.name, this.blockedWeight(wt.name, [o, c, kh, kw], false, base), o, b?.name ?? null, attrs, base) : this.node('Conv', ins, base, attrs);
    const y: TValue = { name: fwd, shape: [n, o, oh, ow], grad: x.grad || wt.grad || !!b?.grad };
    const inputs = b ? [x, wt, b] : [x, wt];
    return this.record(inputs, y, (gy) => {
      let gx: string | null = null;
      if (x.grad && group === 1 && strides[0] === 1 && strides[1] === 1 && pads.every((p, i) => p <= (i % 2 === 0 ? kh : kw) - 1)) {
        // Stride 1: a forward convolution of the output gradient with the flipped kernel, input and
        // output channels swapped (runs at forward-conv speed; ConvTranspose's col2im is slower).
        const gxAttrs: Attrs = {
          kernel_shape: { ints: [kh, kw] },
          strides: { ints: [1, 1] },
          pads: { ints: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] },
          dilations: { ints: [1, 1] },
          group: { i: 1 },
        };
        if (this.nchwcFits(o, c, kh, kw, h * w)) {
          gx = this.nchwcConv(gy, this.blockedWeight(wt.name, [o, c, kh, kw], true, `${base}_gx`), c, null, gxAttrs, `${base}_gx`);
        } else {
          const flipped = kh === 1 && kw === 1 ? wt.name : this.node('Slice', [wt.name, this.ints([kh - 1, kw - 1]), this.ints([-kh - 1, -kw - 1]), this.ints([2, 3]), this.ints([-1, -1])], `${base}_wflip`);
          const wT = this.node('Transpose', [flipped], `${base}_wT`, { perm: { ints: [1, 0, 2, 3] } }); // [C, O, kh, kw]
          gx = this.node('Conv', [gy, wT], `${base}_gx`, gxAttrs);
        }
      } else if (x.grad) {
        const rh = h + pt + pb - kh - (oh - 1) * strides[0];
        const rw = w + pl + pr - kw - (ow - 1) * strides[1];
        gx = this.node('ConvTranspose', [gy, wt.name], `${base}_gx`, {
          kernel_shape: { ints: [kh, kw] },
          strides: { ints: strides },
          pads: { ints: pads },
          output_padding: { ints: [rh, rw] },
          group: { i: group },
        });
      }
      let gw: string | null = null;
      if (wt.grad) gw = this.convFilterGrad(x, gy, [o, cg, kh, kw], [oh, ow], strides, pads, group, base);
      const gb = b?.grad ? this.node('ReduceSum', [gy, this.ints([0, 2, 3])], `${base}_gb`, { keepdims: { i: 0 } }) : null;
      return b ? [gx, gw, gb] : [gx, gw];
    });
  }

  /**
   * Whether a plain convolution (in → out channels, kernel kh×kw, `pixels` output pixels per image) runs
   * as an NCHWc Conv. Measured on 2 cores at batch 16 (.probe → bench/train-vs-torch.ts profile):
   * 3×3 at 56²/28²/14² 1.3–1.4× the plain Conv with the weight as a graph input, reorders included; at 7²
   * the convolution itself 1.7× (10.9 against 18.8 ms for 512 channels), a whole ResNet-18 step 2% faster
   * with it than without; 1×1 convolutions gain nothing (the activations' reorders eat it). Inputs below a
   * channel block (the 3-channel stems) stay plain: NCHWc gained 1.2× there (0.7% of a ResNet-18 step)
   * but moved ResNet-18's stem filter gradient 1.1e-4 from TF.js' on real photos, 10× TF.js' own
   * float32 sensitivity.
   */
  private nchwcFits(cin: number, cout: number, kh: number, kw: number, pixels: number): boolean {
    const b = this.nchwcBlock;
    return b > 1 && kh * kw > 1 && cout % b === 0 && cin % b === 0 && pixels >= this.nchwcMinPixels;
  }

  private readonly channelBlocksCache = new Map<string, string>();

  /**
   * A weight [O, C, kh, kw] in NCHWc filter order, OIHWBiBo (shape unchanged: [O/B, C/B, kh, kw, B, B] in
   * memory). `swapped`: the result is the [C, O, kh, kw] filter of the input gradient (input and output
   * channels exchanged, the kernel flipped).
   */
  private blockedWeight(wt: string, [o, c, kh, kw]: number[], swapped: boolean, base: string): string {
    const b = this.nchwcBlock;
    // ReorderInput moves a block of channels innermost, multithreaded: [O, C, kh, kw] → [O, C/B, kh, kw, Bc]
    // (a generic 6-D Transpose did the whole reorder 3–4× slower: 13 ms for a 512×512×3×3 weight); one
    // per weight, shared by the forward and the input-gradient filters.
    let inner = this.channelBlocksCache.get(wt);
    if (!inner) {
      inner = this.node('ReorderInput', [wt], `${base}_wcblocks`, {}, NCHWC_DOMAIN);
      this.channelBlocksCache.set(wt, inner);
    }
    let t: string;
    if (swapped) {
      // [O/B, Bo, C/B, kh·kw, Bc] → [C/B, O/B, kh·kw, Bo, Bc]: whole 16-float rows move; then the kernel
      // flipped by gathering the kh·kw blocks of B·B floats in reverse (a Slice with negative steps on
      // the OIHW weight took 25 ms a ResNet-18 step).
      t = this.node('Transpose', [this.node('Reshape', [inner, this.ints([o / b, b, c / b, kh * kw, b])], `${base}_wsplit`)], `${base}_wblocked`, { perm: { ints: [2, 0, 3, 1, 4] } });
      if (kh * kw > 1) t = this.node('Gather', [t, this.ints(Array.from({ length: kh * kw }, (_, i) => kh * kw - 1 - i))], `${base}_wflip`, { axis: { i: 2 } });
    } else {
      // Bo innermost too: [O/B, Bo, C/B·kh·kw·Bc] read as [batch, channels, H, 1] by a second ReorderInput.
      t = this.node('ReorderInput', [this.node('Reshape', [inner, this.ints([o / b, b, (c / b) * kh * kw * b, 1])], `${base}_wsplit`)], `${base}_wblocked`, {}, NCHWC_DOMAIN);
    }
    return this.node('Reshape', [t, this.ints(swapped ? [c, o, kh, kw] : [o, c, kh, kw])], `${base}_wnchwc`);
  }

  /** An NCHWc convolution between NCHW tensors: the input reordered to channel blocks, the output back. */
  private nchwcConv(x: string, blockedW: string, cout: number, bias: string | null, attrs: Attrs, base: string): string {
    const xb = this.node('ReorderInput', [x], `${base}_xnchwc`, {}, NCHWC_DOMAIN);
    const yb = this.node('Conv', bias ? [xb, blockedW, bias] : [xb, blockedW], `${base}_nchwc`, attrs, NCHWC_DOMAIN);
    return this.node('ReorderOutput', [yb], base, { channels: { i: cout } }, NCHWC_DOMAIN);
  }

  private readonly cnhwCache = new Map<string, string>();

  /** x [N,C,H,W] as [C,N,H,W] (one Transpose per value, shared by every filter gradient that reads it). */
  private cnhw(x: TValue): string {
    let name = this.cnhwCache.get(x.name);
    if (!name) {
      name = this.node('Transpose', [x.name], `${x.name}_cnhw`, { perm: { ints: [1, 0, 2, 3] } });
      this.cnhwCache.set(x.name, name);
    }
    return name;
  }

  /**
   * The filter gradient Σ over batch and output pixels of gy · (the input window). Formulations, measured
   * with onnxruntime 1.30 on 2 cores at batch 16 (see bench/train-vs-torch.ts):
   * - stride 1: one contiguous run of a flat padded input per kernel offset, one Gemm each
   *   (flatShiftFilterGrad);
   * - 1×1 stride 1: the input itself, one Gemm;
   * - strided: the input's windows cut by a convolution with unit kernels, one Gemm (a strided Slice per
   *   window is slow); when the cut windows would be large (VGG's 224² layers), one strided window and one
   *   Gemm per kernel offset keeps memory flat;
   * - strided convolutions of a few input channels (the stems): a convolution with batch and channel roles
   *   swapped (the output gradient as the filter, the stride as its dilation), 1.4–1.6× the unfolded Gemm
   *   there, but 2–4× slower for wide layers;
   * - depthwise: the same roles-swapped convolution, grouped per channel (memory-bound; windows times the
   *   output gradient summed by a batched MatMul, or by Mul + ReduceSum per offset, measured no faster on
   *   Xception's shapes).
   */
  private convFilterGrad(x: TValue, gy: string, wShape: number[], out: [number, number], strides: [number, number], pads: number[], group: number, base: string): string {
    const [n, c, h, w] = x.shape;
    const [o, , kh, kw] = wShape;
    const [oh, ow] = out;
    const [pt, pl, pb, pr] = pads;
    // Only as much bottom/right padding as the last window reaches (never negative: the windows end sooner).
    const needB = (oh - 1) * strides[0] + kh - h - pt;
    const needR = (ow - 1) * strides[1] + kw - w - pl;
    const strided = strides[0] > 1 || strides[1] > 1;
    if (group === 1 && !strided && kh * kw > 1) return this.flatShiftFilterGrad(x, gy, wShape, out, pads, base);
    if (group === 1 && !(c < 8 && strided)) {
      const m = n * oh * ow;
      const g2 = this.node('Reshape', [this.node('Transpose', [gy], `${base}_gyT`, { perm: { ints: [1, 0, 2, 3] } }), this.ints([o, m])], `${base}_gy2`);
      const gemm = (cols: string, rows: number, k: string) => this.node('Gemm', [g2, this.node('Reshape', [cols, this.ints([rows, m])], `${base}_cols${k}`)], `${base}_gw${k}`, { transB: { i: 1 } });
      if (strided && kh * kw * c * m <= this.maxUnfolded) {
        // Strided: a strided Slice per window is slow; a convolution of each channel with the kh·kw unit
        // kernels cuts the windows instead ([N·C, kh·kw, oh, ow]), then one Transpose to rows (c, offset).
        const k = kh * kw;
        const eye = new Float32Array(k * k);
        for (let i = 0; i < k; i++) eye[i * k + i] = 1;
        const perChannel = this.node('Reshape', [x.name, this.ints([n * c, 1, h, w])], `${base}_xch`);
        const cut = this.node('Conv', [perChannel, this.floatConst(`${base}_unit_kernels`, [k, 1, kh, kw], eye)], `${base}_cut`, {
          kernel_shape: { ints: [kh, kw] },
          strides: { ints: strides },
          pads: { ints: pads },
          dilations: { ints: [1, 1] },
          group: { i: 1 },
        });
        const rows = this.node('Transpose', [this.node('Reshape', [cut, this.ints([n, c * k, oh * ow])], `${base}_cut3`)], `${base}_cutT`, { perm: { ints: [1, 0, 2] } });
        return this.node('Reshape', [gemm(rows, c * k, ''), this.ints([o, c, kh, kw])], `${base}_gw`); // [O, C·kh·kw]: already OIHW
      }
      const xc = this.cnhw(x);
      const padded =
        pt || pl || needB > 0 || needR > 0
          ? this.node('Pad', [xc, this.ints([0, 0, pt, pl, 0, 0, Math.max(0, needB), Math.max(0, needR)])], `${base}_xpad`, { mode: { s: 'constant' } })
          : xc;
      const whole = kh === 1 && kw === 1 && !strided && oh === h && ow === w && padded === xc;
      const window = (u: number, v: number) =>
        whole
          ? xc
          : this.node('Slice', [padded, this.ints([u, v]), this.ints([u + (oh - 1) * strides[0] + 1, v + (ow - 1) * strides[1] + 1]), this.ints([2, 3]), this.ints(strides)], `${base}_win${u}_${v}`);
      let gw: string; // [O, kh·kw·C], kernel offset major
      if (kh * kw === 1) gw = gemm(window(0, 0), c, '');
      else {
        // Strided and above the unfolding limit.
        const parts: string[] = [];
        for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) parts.push(gemm(window(u, v), c, `${u}_${v}`));
        gw = this.node('Concat', parts, `${base}_gwflat`, { axis: { i: 1 } });
      }
      if (kh === 1 && kw === 1) return this.node('Reshape', [gw, this.ints([o, c, 1, 1])], `${base}_gw`);
      return this.node('Transpose', [this.node('Reshape', [gw, this.ints([o, kh, kw, c])], `${base}_gwhwc`)], `${base}_gw`, { perm: { ints: [0, 3, 1, 2] } });
    }
    const eb = Math.max(0, Math.min(pb, needB));
    const er = Math.max(0, Math.min(pr, needR));
    const outH = h + pt + eb - (oh - 1) * strides[0];
    const outW = w + pl + er - (ow - 1) * strides[1];
    const convAttrs = (g: number): Attrs => ({
      kernel_shape: { ints: [oh, ow] },
      dilations: { ints: strides },
      strides: { ints: [1, 1] },
      pads: { ints: [pt, pl, eb, er] },
      group: { i: g },
    });
    let raw: string;
    if (group === 1) {
      const gT = this.node('Transpose', [gy], `${base}_gyT`, { perm: { ints: [1, 0, 2, 3] } }); // [O, N, oh, ow]
      raw = this.node('Conv', [this.cnhw(x), gT], `${base}_gwT`, convAttrs(1)); // [C, O, outH, outW]
    } else {
      // Depthwise: each channel's filter gradient is its own correlation over the batch.
      const xT = this.node('Reshape', [this.cnhw(x), this.ints([1, c * n, h, w])], `${base}_xTr`);
      const gT = this.node('Transpose', [gy], `${base}_gyT`, { perm: { ints: [1, 0, 2, 3] } }); // [C, N, oh, ow]
      raw = this.node('Conv', [xT, gT], `${base}_gwT`, convAttrs(c)); // [1, C, outH, outW]
    }
    if (outH !== kh || outW !== kw) {
      if (outH < kh || outW < kw) throw new Error(`internal: filter gradient of ${base} is ${outH}×${outW}, smaller than ${kh}×${kw}`);
      raw = this.node('Slice', [raw, this.ints([0, 0]), this.ints([kh, kw]), this.ints([2, 3])], `${base}_gwS`);
    }
    return this.node('Transpose', [raw], `${base}_gw`, { perm: { ints: [1, 0, 2, 3] } });
  }

  /**
   * Stride-1 filter gradient without cutting windows row by row: x as [C, (N+1)·Hr·Wr], each image padded
   * with Zr zero rows on top and Z zero columns on the left (Zr, Z ≥ the padding and the overhang), then
   * zero images (one, or more for maps smaller than the kernel's reach). In that flat layout the window
   * of kernel offset (u, v) for every output pixel is ONE contiguous run starting at
   * (u − pt + Zr)·Wr + (v − pl + Z): a row's overhang lands in the next row's
   * zero columns, an image's in the next image's zero rows. The output gradient, laid out on the same
   * Hr×Wr grid (zeros past oh, ow), meets each run in one Gemm. 1.6–1.8× the row-by-row windows +
   * Concat + one Gemm on ResNet-18's 3×3 layers (.probe A/B, 2 cores, batch 16), and nothing is
   * unfolded, so no size limit applies.
   */
  private flatShiftFilterGrad(x: TValue, gy: string, [o, c, kh, kw]: number[], [oh, ow]: [number, number], pads: number[], base: string): string {
    const [n, , h, w] = x.shape;
    const [pt, pl] = pads;
    const Zr = Math.max(pt, oh - 1 + kh - h - pt, 0);
    const Z = Math.max(pl, ow - 1 + kw - w - pl, 0);
    const hr = h + Zr;
    const wr = w + Z;
    const len = n * hr * wr;
    // Zero images after the last, enough for the furthest run (one, unless the maps are tiny).
    const lastStart = (kh - 1 - pt + Zr) * wr + (kw - 1 - pl + Z);
    const zeroImages = Math.max(1, Math.ceil(lastStart / (hr * wr)));
    const xFlat = this.node('Reshape', [this.node('Pad', [this.cnhw(x), this.ints([0, 0, Zr, Z, 0, zeroImages, 0, 0])], `${base}_xgrid`, { mode: { s: 'constant' } }), this.ints([c, (n + zeroImages) * hr * wr])], `${base}_xflat`);
    const gyT = this.node('Transpose', [gy], `${base}_gyT`, { perm: { ints: [1, 0, 2, 3] } }); // [O, N, oh, ow]
    const gyGrid = hr === oh && wr === ow ? gyT : this.node('Pad', [gyT, this.ints([0, 0, 0, 0, 0, 0, hr - oh, wr - ow])], `${base}_gygrid`, { mode: { s: 'constant' } });
    const gyFlat = this.node('Reshape', [gyGrid, this.ints([o, len])], `${base}_gyflat`);
    const parts: string[] = [];
    for (let u = 0; u < kh; u++)
      for (let v = 0; v < kw; v++) {
        const start = (u - pt + Zr) * wr + (v - pl + Z);
        const run = this.node('Slice', [xFlat, this.ints([start]), this.ints([start + len]), this.ints([1])], `${base}_run${u}_${v}`);
        parts.push(this.node('Gemm', [gyFlat, run], `${base}_gw${u}_${v}`, { transB: { i: 1 } })); // [O, C]
      }
    const gw = this.node('Concat', parts, `${base}_gwflat`, { axis: { i: 1 } }); // [O, kh·kw·C], kernel offset major
    return this.node('Transpose', [this.node('Reshape', [gw, this.ints([o, kh, kw, c])], `${base}_gwhwc`)], `${base}_gw`, { perm: { ints: [0, 3, 1, 2] } });
  }

  /**
   * Batch normalization in training mode over N, H, W of x [N,C,H,W] (biased variance, as TF):
   * returns y and the batch mean and variance ([C], for the running statistics; no gradient).
   */
  batchNormTrain(x: TValue, gamma: TValue, beta: TValue, epsilon: number, base: string): { y: TValue; mean: string; variance: string } {
    const [n, c, h, w] = x.shape;
    const m = n * h * w;
    const axes = { axes: { ints: [0, 2, 3] }, keepdims: { i: 1 } };
    const mean = this.node('ReduceMean', [x.name], `${base}_mean`, axes);
    const xc = this.node('Sub', [x.name, mean], `${base}_xc`);
    const sq = this.node('Mul', [xc, xc], `${base}_sq`);
    const variance = this.node('ReduceMean', [sq], `${base}_var`, axes);
    const invstd = this.node('Reciprocal', [this.node('Sqrt', [this.node('Add', [variance, this.scalar(epsilon)], `${base}_vareps`)], `${base}_std`)], `${base}_invstd`);
    const g4 = this.node('Reshape', [gamma.name, this.ints([1, c, 1, 1])], `${base}_g4`);
    const b4 = this.node('Reshape', [beta.name, this.ints([1, c, 1, 1])], `${base}_b4`);
    const k = this.node('Mul', [g4, invstd], `${base}_k`);
    const y: TValue = { name: this.node('Add', [this.node('Mul', [xc, k], `${base}_xk`), b4], base), shape: x.shape, grad: true };
    this.record([x, gamma, beta], y, (gy) => {
      const sumAxes = this.ints([0, 2, 3]);
      const sgy = this.node('ReduceSum', [gy, sumAxes], `${base}_sgy`, { keepdims: { i: 1 } });
      const sgx = this.node('ReduceSum', [this.node('Mul', [gy, xc], `${base}_gyxc`), sumAxes], `${base}_sgx`, { keepdims: { i: 1 } });
      const gGamma = gamma.grad ? this.node('Reshape', [this.node('Mul', [sgx, invstd], `${base}_ggamma4`), this.ints([c])], `${base}_ggamma`) : null;
      const gBeta = beta.grad ? this.node('Reshape', [sgy, this.ints([c])], `${base}_gbeta`) : null;
      let gx: string | null = null;
      if (x.grad) {
        // dx = k · (gy − Σgy/M − xc · invstd² · Σ(gy·xc)/M)
        const c1 = this.node('Mul', [this.node('Mul', [sgy, this.scalar(1 / m)], `${base}_c1a`), k], `${base}_c1`);
        const inv2 = this.node('Mul', [invstd, invstd], `${base}_inv2`);
        const c2 = this.node('Mul', [this.node('Mul', [this.node('Mul', [sgx, inv2], `${base}_c2a`), this.scalar(1 / m)], `${base}_c2b`), k], `${base}_c2`);
        const t1 = this.node('Mul', [gy, k], `${base}_gyk`);
        const t2 = this.node('Mul', [xc, c2], `${base}_xcc2`);
        gx = this.node('Sub', [this.node('Sub', [t1, t2], `${base}_gx1`), c1], `${base}_gx`);
      }
      return [gx, gGamma, gBeta];
    });
    return {
      y,
      mean: this.node('Reshape', [mean, this.ints([c])], `${base}_batch_mean`),
      variance: this.node('Reshape', [variance, this.ints([c])], `${base}_batch_var`),
    };
  }

  /** Elementwise product with a constant of broadcastable shape (for weights, e.g. BN folded into a conv). */
  mulConst(x: TValue, c: string, base: string): TValue {
    const y: TValue = { name: this.node('Mul', [x.name, c], base), shape: x.shape, grad: x.grad };
    return this.record([x], y, (gy) => [this.node('Mul', [gy, c], `${base}_grad`)]);
  }

  addConst(x: TValue, c: string, base: string): TValue {
    const y: TValue = { name: this.node('Add', [x.name, c], base), shape: x.shape, grad: x.grad };
    return this.record([x], y, (gy) => [gy]);
  }

  /**
   * Average pool not counting padded cells (TF's AvgPool; ONNX AveragePool with count_include_pad 0).
   * Gradient: gy divided by each window's cell count (a constant), then the window sum's transpose —
   * at stride 1 a window sum again (AveragePool counting the flipped padding, times kh·kw), else a
   * ConvTranspose with a kernel of ones per channel.
   */
  avgPool(x: TValue, kernel: [number, number], strides: [number, number], pads: [number, number, number, number], base: string): TValue {
    const [n, c, h, w] = x.shape;
    const [kh, kw] = kernel;
    const [pt, pl, pb, pr] = pads;
    const oh = Math.floor((h + pt + pb - kh) / strides[0]) + 1;
    const ow = Math.floor((w + pl + pr - kw) / strides[1]) + 1;
    const attrs: Attrs = { kernel_shape: { ints: kernel }, strides: { ints: strides }, pads: { ints: pads }, count_include_pad: { i: 0 } };
    const y: TValue = { name: this.node('AveragePool', [x.name], base, attrs), shape: [n, c, oh, ow], grad: x.grad, nonNegative: x.nonNegative };
    return this.record([x], y, (gy) => {
      const inside = (o: number, stride: number, pad: number, k: number, size: number) => Math.min(o * stride - pad + k, size) - Math.max(o * stride - pad, 0);
      const inv = new Float32Array(oh * ow);
      for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) inv[i * ow + j] = 1 / (inside(i, strides[0], pt, kh, h) * inside(j, strides[1], pl, kw, w));
      const g1 = this.node('Mul', [gy, this.floatConst(`${base}_inv_count`, [1, 1, oh, ow], inv)], `${base}_gmean`);
      const flipped = [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr];
      if (strides[0] === 1 && strides[1] === 1 && flipped.every((p) => p >= 0)) {
        const mean = this.node('AveragePool', [g1], `${base}_gwin`, { kernel_shape: { ints: kernel }, strides: { ints: [1, 1] }, pads: { ints: flipped }, count_include_pad: { i: 1 } });
        return [this.node('Mul', [mean, this.scalar(kh * kw)], `${base}_grad`)];
      }
      const ones = this.floatConst(`${base}_ones`, [c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1));
      const rh = h + pt + pb - kh - (oh - 1) * strides[0];
      const rw = w + pl + pr - kw - (ow - 1) * strides[1];
      return [
        this.node('ConvTranspose', [g1, ones], `${base}_grad`, {
          kernel_shape: { ints: kernel },
          strides: { ints: strides },
          pads: { ints: pads },
          output_padding: { ints: [rh, rw] },
          group: { i: c },
        }),
      ];
    });
  }

  encode(name: string, doc = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: TRAIN_OPSET }, ...(this.nodes.some((n) => n.domain === NCHWC_DOMAIN) ? [{ domain: NCHWC_DOMAIN, version: 1 }] : [])],
      producerName: 'refit-train',
      docString: doc,
      graph: { name, docString: doc, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
