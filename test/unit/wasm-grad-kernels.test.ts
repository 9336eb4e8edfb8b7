// The composed wasm gradient kernels must agree with the cpu backend's reference kernels.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerWasmGradKernels } from '../../main/engine/wasm-grad-kernels';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

// The wasm kernels as the stock backend registers them, before registerWasmGradKernels runs (test files
// are collected before the setup file's beforeAll initialises the backend).
const COMPOSED = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
const REPLACED = ['Conv2DBackpropInput', 'BatchMatMul', 'MaxPoolGrad', 'AvgPoolGrad'];
const stock = new Map([...COMPOSED, ...REPLACED].map((k) => [k, tf.getKernel(k, 'wasm')?.kernelFunc]));

let original = '';
beforeAll(async () => {
  original = tf.getBackend();
  await tf.setBackend('wasm');
  registerWasmGradKernels();
});
afterAll(async () => {
  await tf.setBackend(original);
});

/** Deterministic data in [-1, 1), identical on every backend. */
function data(shape: number[], seed: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function on<T>(backend: string, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  try {
    return f();
  } finally {
    await tf.setBackend('wasm');
  }
}

/** Runs f on cpu and on wasm; every output must agree within 1e-4 of its magnitude. */
async function expectSameOnBackends(label: string, f: () => tf.Tensor[]) {
  const run = () => tf.tidy(() => f()).map((t) => {
    const v = t.dataSync().slice();
    t.dispose();
    return v;
  });
  const ref = await on('cpu', run);
  const got = await on('wasm', run);
  expect(got.length).toBe(ref.length);
  ref.forEach((r, i) => {
    let err = 0;
    let scale = 1;
    for (let j = 0; j < r.length; j++) {
      err = Math.max(err, Math.abs(got[i][j] - r[j]));
      scale = Math.max(scale, Math.abs(r[j]));
    }
    expect(got[i].length, `${label} output ${i}`).toBe(r.length);
    expect(err / scale, `${label} output ${i}`).toBeLessThanOrEqual(1e-4);
  });
}

const grid = <T>(...axes: T[][]): T[][] =>
  axes.reduce<T[][]>((acc, axis) => acc.flatMap((prefix) => axis.map((v) => [...prefix, v])), [[]]);

describe('wasm conv gradient kernels vs cpu', () => {
  it('registration is idempotent and replaces the slow Conv2DBackpropInput / BatchMatMul and the wrong MaxPoolGrad / AvgPoolGrad quietly', () => {
    // The stock backend lacks the three training kernels and has slow versions of the other two.
    for (const k of COMPOSED) expect(stock.get(k), `stock wasm ${k}`).toBeUndefined();
    for (const k of REPLACED) expect(stock.get(k), `stock wasm ${k}`).toBeTypeOf('function');
    const registered = () => new Map([...stock.keys()].map((k) => [k, tf.getKernel(k, 'wasm')?.kernelFunc]));
    const before = registered();
    for (const [k, f] of before) {
      expect(f, k).toBeTypeOf('function');
      expect(f, `${k} is Refit's kernel, not the stock one`).not.toBe(stock.get(k));
    }
    const warn = vi.spyOn(console, 'warn');
    registerWasmGradKernels();
    registerWasmGradKernels();
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(registered()).toEqual(before);
    for (const [k, f] of registered()) expect(f, k).toBe(before.get(k));
  });

  // tf.grad through the forward ops exercises the kernels with the attrs real training passes.
  it('conv2d input and filter gradients (strides, padding, non-square shapes, batch, channels)', async () => {
    const cases = grid<number | string | number[]>([1, 2], ['same', 'valid'], [[3, 2], [1, 1], [3, 3]], [1, 3],
      [[3, 4], [5, 2]]);
    for (const [stride, pad, [fh, fw], batch, [ci, co]] of cases as [number, 'same' | 'valid', number[], number, number[]][]) {
      const xShape: Shape4 = [batch, 7, 10, ci];
      const fShape: Shape4 = [fh, fw, ci, co];
      await expectSameOnBackends(`conv2d s${stride} ${pad} f${fh}x${fw} n${batch} ${ci}->${co}`, () => {
        const x = tf.tensor4d(data(xShape, 1), xShape);
        const f = tf.tensor4d(data(fShape, 2), fShape);
        const outShape = tf.conv2d(x, f, stride, pad).shape;
        const w = tf.tensor(data(outShape, 3), outShape);
        return tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), w)))([x, f]);
      });
    }
  });

  it('depthwise input and filter gradients (multipliers 1 and 2)', async () => {
    const cases = grid<number | string | number[]>([1, 2], ['same', 'valid'], [[3, 2], [3, 3]], [1, 3], [1, 4],
      [1, 2]);
    for (const [stride, pad, [fh, fw], batch, c, m] of cases as [number, 'same' | 'valid', number[], number, number, number][]) {
      const xShape: Shape4 = [batch, 7, 10, c];
      const fShape: Shape4 = [fh, fw, c, m];
      await expectSameOnBackends(`depthwise s${stride} ${pad} f${fh}x${fw} n${batch} c${c} m${m}`, () => {
        const x = tf.tensor4d(data(xShape, 4), xShape);
        const f = tf.tensor4d(data(fShape, 5), fShape);
        const outShape = tf.depthwiseConv2d(x, f, stride, pad).shape;
        const w = tf.tensor(data(outShape, 6), outShape);
        return tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), w)))([x, f]);
      });
    }
  });

  it('max-pool gradients go to the first maximum of each window, also when the window is all negative', async () => {
    // The stock wasm kernel sent this window's gradient to −3 (its running maximum started at 0).
    const x = tf.tensor4d([-3, -1, -2, -4], [1, 2, 2, 1]);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid')))(x);
    expect(Array.from(dx.dataSync())).toEqual([0, 1, 0, 0]);
    tf.dispose([x, dx]);
    // Overlapping windows (3×3 stride 2, as ResNet's stem and Xception), 'same' and 'valid', sizes whose
    // last rows no window reaches, negative inputs (data in [−1, 1) shifted down), ties (rounded values).
    const cases = grid<number | string | number[]>([[3, 2], [2, 2], [3, 1], [1, 1]], ['same', 'valid'], [[7, 10], [8, 9], [5, 5]], [0, -1.5], [0, 1]);
    for (const [[f, stride], pad, [h, w], shift, round] of cases as [number[], 'same' | 'valid', number[], number, number][]) {
      const shape: Shape4 = [2, h, w, 3];
      await expectSameOnBackends(`maxPool f${f} s${stride} ${pad} ${h}x${w} shift ${shift}${round ? ' ties' : ''}`, () => {
        const values = data(shape, 7).map((v) => (round ? Math.round(v * 2) / 2 : v) + shift);
        const xs = tf.tensor4d(values, shape);
        const outShape = tf.maxPool(xs, f, stride, pad).shape;
        const wts = tf.tensor(data(outShape, 8), outShape);
        return [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, f, stride, pad), wts)))(xs)];
      });
    }
  });

  it('explicit and numeric padding, stride 3 and NCHW, called as kernels', async () => {
    const run = (k: string, inputs: tf.NamedTensorMap, attrs: object) =>
      tf.engine().runKernel(k, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    const pads: Pad[] = [[[0, 0], [2, 0], [1, 2], [0, 0]], 1];
    for (const [pad, stride] of grid<Pad | number>(pads, [1, 2, 3]) as [Pad, number][]) {
      const xShape: Shape4 = [2, 7, 10, 3];
      // A numeric pad needs a square filter: tfjs-core 4.22 then sizes the output width from the filter
      // height, and the forward wasm conv writes out of bounds.
      const fw = typeof pad === 'number' ? 3 : 2;
      const fShape: Shape4 = [3, fw, 3, 4];
      const dwShape: Shape4 = [3, fw, 3, 2];
      await expectSameOnBackends(`kernels pad ${JSON.stringify(pad)} s${stride}`, () => {
        const x = tf.tensor4d(data(xShape, 7), xShape);
        const f = tf.tensor4d(data(fShape, 8), fShape);
        const df = tf.tensor4d(data(dwShape, 9), dwShape);
        const yShape = tf.conv2d(x, f, stride, pad).shape;
        const dy = tf.tensor4d(data(yShape, 10), yShape);
        const ydShape = tf.depthwiseConv2d(x, df, stride, pad).shape;
        const dyd = tf.tensor4d(data(ydShape, 11), ydShape);
        const conv = { strides: stride, pad, dataFormat: 'NHWC' };
        const nchw = { strides: stride, pad: pad === 1 ? 1 : 'valid', dataFormat: 'NCHW' };
        const toNCHW = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);
        const nchwShape = [xShape[0], xShape[3], xShape[1], xShape[2]];
        const nhwcDyShape = tf.conv2d(x, f, stride, nchw.pad as Pad).shape;
        const nchwDy = toNCHW(tf.tensor4d(data(nhwcDyShape, 12), nhwcDyShape));
        return [
          run('Conv2DBackpropFilter', { x, dy }, { ...conv, filterShape: fShape }),
          run('Conv2DBackpropInput', { dy, filter: f }, { ...conv, inputShape: xShape }),
          run('DepthwiseConv2dNativeBackpropFilter', { x, dy: dyd }, { strides: stride, pad, dilations: 1, filterShape: dwShape }),
          run('DepthwiseConv2dNativeBackpropInput', { dy: dyd, filter: df }, { strides: stride, pad, dilations: 1, inputShape: xShape }),
          run('Conv2DBackpropFilter', { x: toNCHW(x), dy: nchwDy }, { ...nchw, filterShape: fShape }),
          run('Conv2DBackpropInput', { dy: nchwDy, filter: f }, { ...nchw, inputShape: nchwShape }),
        ];
      });
    }
  });

  // The cpu kernels ignore dilations, so the reference is the same convolution with a zero-inflated
  // filter: the dilated filter's gradient is the inflated filter's gradient at every d-th tap.
  it('dilated depthwise and conv filter/input gradients match the inflated-filter reference', async () => {
    const d = 2;
    const xShape: Shape4 = [2, 9, 11, 3];
    const x = tf.tensor4d(data(xShape, 13), xShape);
    const inflate = (f: tf.Tensor4D) => {
      const [fh, fw, a, b] = f.shape;
      const big = tf.pad(tf.reshape(f, [fh, 1, fw, 1, a, b]), [[0, 0], [0, d - 1], [0, 0], [0, d - 1], [0, 0], [0, 0]]);
      return tf.slice(tf.reshape(big, [fh * d, fw * d, a, b]), [0, 0, 0, 0], [(fh - 1) * d + 1, (fw - 1) * d + 1, a, b]);
    };
    const every = (g: tf.Tensor) => tf.stridedSlice(g, [0, 0, 0, 0], g.shape, [d, d, 1, 1]);
    for (const pad of ['same', 'valid'] as const) {
      const f = tf.tensor4d(data([3, 2, 3, 2], 14), [3, 2, 3, 2]);
      const yShape = tf.depthwiseConv2d(x, f, 1, pad, 'NHWC', d).shape;
      const dy = tf.tensor4d(data(yShape, 15), yShape);
      const dilated = (k: string) => tf.engine().runKernel(k, k.endsWith('Filter') ? { x, dy } : { dy, filter: f },
        { strides: 1, pad, dilations: d, filterShape: f.shape, inputShape: xShape }) as tf.Tensor;
      const ref = await on('cpu', () => {
        const big = inflate(f);
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), dy)))([x, big]);
        return [gx.arraySync(), every(gf).arraySync()];
      });
      const got = [dilated('DepthwiseConv2dNativeBackpropInput').arraySync(),
        dilated('DepthwiseConv2dNativeBackpropFilter').arraySync()];
      got.forEach((g, i) => expect(maxRelErr(g, ref[i]), `depthwise ${pad} ${i}`).toBeLessThanOrEqual(1e-4));

      const cf = tf.tensor4d(data([3, 2, 3, 4], 16), [3, 2, 3, 4]);
      const cyShape = tf.conv2d(x, cf, 1, pad, 'NHWC', d).shape;
      const cdy = tf.tensor4d(data(cyShape, 17), cyShape);
      const cref = await on('cpu', () => {
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), cdy)))([x, inflate(cf)]);
        return [gx.arraySync(), every(gf).arraySync()];
      });
      const attrs = { strides: 1, pad, dilations: d, dataFormat: 'NHWC', filterShape: cf.shape, inputShape: xShape };
      const cgot = [
        (tf.engine().runKernel('Conv2DBackpropInput', { dy: cdy, filter: cf }, attrs) as tf.Tensor).arraySync(),
        (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: cdy }, attrs) as tf.Tensor).arraySync(),
      ];
      cgot.forEach((g, i) => expect(maxRelErr(g, cref[i]), `conv ${pad} ${i}`).toBeLessThanOrEqual(1e-4));
    }
  });
});

/**
 * Average pooling written out: window (i, j) covers rows i·s − top … and columns j·s − left …, and its
 * value is the mean over the cells inside the input (TF's 'same' leaves padding out). Returns the
 * pooled values and the gradient of Σ wts · pooled with respect to x, both by brute force.
 */
function avgPoolReference(x: Float32Array, [n, h, w, c]: Shape4, f: number, s: number, pad: 'same' | 'valid', wts?: Float32Array) {
  const oh = pad === 'same' ? Math.ceil(h / s) : Math.floor((h - f) / s) + 1;
  const ow = pad === 'same' ? Math.ceil(w / s) : Math.floor((w - f) / s) + 1;
  const top = pad === 'same' ? Math.floor(Math.max((oh - 1) * s + f - h, 0) / 2) : 0;
  const left = pad === 'same' ? Math.floor(Math.max((ow - 1) * s + f - w, 0) / 2) : 0;
  const y = new Float32Array(n * oh * ow * c);
  const dx = new Float32Array(x.length);
  const at = (b: number, r: number, q: number, k: number) => ((b * h + r) * w + q) * c + k;
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < c; k++) {
          const cells: number[] = [];
          for (let r = i * s - top; r < i * s - top + f; r++)
            for (let q = j * s - left; q < j * s - left + f; q++) if (r >= 0 && r < h && q >= 0 && q < w) cells.push(at(b, r, q, k));
          const o = ((b * oh + i) * ow + j) * c + k;
          y[o] = cells.reduce((a, idx) => a + x[idx], 0) / cells.length;
          if (wts) for (const idx of cells) dx[idx] += wts[o] / cells.length;
        }
  return { y, dx, outShape: [n, oh, ow, c] };
}

const maxRelDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return d / scale;
};

describe('wasm AvgPoolGrad', () => {
  it('is the gradient of the forward average pool, borders of \'same\' windows included', () => {
    // 3×3 stride 1 'same' on 2×2: every window overhangs; corner cell (0, 0) is in all 4 windows of 4 cells.
    const one = tf.ones([1, 2, 2, 1]) as tf.Tensor4D;
    const d = tf.grad((t: tf.Tensor) => tf.sum(tf.avgPool(t as tf.Tensor4D, 3, 1, 'same')))(one);
    expect(Array.from(d.dataSync())).toEqual([1, 1, 1, 1]);
    tf.dispose([one, d]);
    const cases = grid<number | string | number[]>([[3, 1], [3, 2], [2, 1], [2, 2]], ['same', 'valid'], [[7, 10], [8, 9], [5, 5], [2, 3]]);
    for (const [[f, stride], pad, [h, w]] of cases as [number[], 'same' | 'valid', number[]][]) {
      if (pad === 'valid' && (h < f || w < f)) continue;
      const shape: Shape4 = [2, h, w, 3];
      const x = data(shape, 11);
      const probe = avgPoolReference(x, shape, f, stride, pad);
      const wts = data(probe.outShape, 12);
      const ref = avgPoolReference(x, shape, f, stride, pad, wts);
      const label = `avgPool f${f} s${stride} ${pad} ${h}x${w}`;
      const [y, dx] = tf.tidy(() => {
        const xs = tf.tensor4d(x, shape);
        const w8 = tf.tensor(wts, probe.outShape);
        return [tf.avgPool(xs, f, stride, pad), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(t as tf.Tensor4D, f, stride, pad), w8)))(xs)];
      });
      expect(y.shape, label).toEqual(probe.outShape);
      expect(maxRelDiff(y.dataSync(), ref.y), `${label} forward`).toBeLessThanOrEqual(1e-5);
      expect(maxRelDiff(dx.dataSync(), ref.dx), `${label} gradient`).toBeLessThanOrEqual(1e-5);
      tf.dispose([y, dx]);
    }
  });
});

describe('wasm BatchMatMul with transpose flags', () => {
  it('matches cpu for 2-D and batched operands, every flag combination', async () => {
    const shapes: [number[], number[]][] = [[[5, 7], [7, 3]], [[2, 5, 7], [2, 7, 3]], [[2, 5, 7], [1, 7, 3]]];
    for (const [[aShape, bShape], ta, tb] of grid<unknown>(shapes, [false, true], [false, true]) as
      [[number[], number[]], boolean, boolean][]) {
      const swap = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s);
      await expectSameOnBackends(`matMul ${aShape} ${bShape} ${ta} ${tb}`, () => [
        tf.matMul(tf.tensor(data(aShape, 41), swap(aShape, ta)), tf.tensor(data(bShape, 42), swap(bShape, tb)), ta, tb),
      ]);
    }
  });
});

function maxRelErr(a: unknown, b: unknown): number {
  const x = (a as number[]).flat(4) as number[];
  const y = (b as number[]).flat(4) as number[];
  expect(x.length).toBe(y.length);
  let err = 0;
  let scale = 1;
  y.forEach((v, i) => {
    err = Math.max(err, Math.abs(x[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return err / scale;
}

/** conv2d(s2) → BN → relu → depthwise(×2) → BN → separable → global pool → dense. */
function smallNet(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 10, 3], filters: 6, kernelSize: [3, 2], strides: 2, padding: 'same',
        kernelInitializer: init(1) }),
      tf.layers.batchNormalization({ axis: -1 }),
      tf.layers.reLU(),
      tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'valid', depthwiseInitializer: init(2) }),
      tf.layers.batchNormalization({ axis: -1 }),
      tf.layers.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', depthwiseInitializer: init(3),
        pointwiseInitializer: init(4), activation: 'relu' }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 3, kernelInitializer: init(5) }),
    ],
  });
}

describe('training a small conv net on wasm', () => {
  const xShape: Shape4 = [4, 12, 10, 3];

  it('parameter gradients through conv2d + depthwise + separable + BN match cpu', async () => {
    await expectSameOnBackends('smallNet', () => {
      const model = smallNet();
      const x = tf.tensor4d(data(xShape, 21), xShape);
      const labels = tf.oneHot(tf.tensor1d([0, 2, 1, 2], 'int32'), 3);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(() =>
        tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      expect(vars.length).toBe(13); // conv, depthwise, dense: kernel + bias; BN ×2: γ, β; separable: 2 kernels + bias
      const out = vars.map((v) => grads[v.name]);
      model.dispose();
      return out;
    });
  });

  it('a few Adam steps reduce the loss', async () => {
    await tf.setBackend('wasm');
    const model = smallNet();
    const optimizer = tf.train.adam(0.02);
    // Label = which half of the image is brighter.
    const x = tf.tensor4d(data([16, 12, 10, 3], 31), [16, 12, 10, 3]);
    const left = tf.sum(tf.slice(x, [0, 0, 0, 0], [16, 12, 5, 3]), [1, 2, 3]);
    const right = tf.sum(tf.slice(x, [0, 0, 5, 0], [16, 12, 5, 3]), [1, 2, 3]);
    const labels = tf.oneHot(tf.cast(tf.greater(left, right), 'int32'), 3);
    const loss = () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    let last = first;
    for (let i = 0; i < 15; i++) last = tf.tidy(() => optimizer.minimize(loss, true)!.dataSync()[0]);
    expect(Number.isFinite(last)).toBe(true);
    expect(last).toBeLessThan(first * 0.7);
    model.dispose();
  });
});
