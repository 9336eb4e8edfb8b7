// Times the composed wasm gradient kernels against the forward convolution of the same shape
// (ResNet-18 / Xception-like layers at 128², batch 16), and the transposed-matmul cost of dense backprop.
// Run: npx tsx bench/wasm-grads.ts [--reps N]
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels } from '../main/engine/wasm-grad-kernels';

const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 3;

function ms(f: () => tf.Tensor): number {
  const once = () => tf.tidy(() => void f().dataSync()); // never return the array: tidy would walk it
  once();
  const t0 = performance.now();
  for (let i = 0; i < REPS; i++) once();
  return (performance.now() - t0) / REPS;
}

const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: object) =>
  tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

type Row = Record<string, string | number>;
const round = (v: number) => Math.round(v * 10) / 10;

await tf.setBackend('wasm');
await tf.ready();

// [input NHWC, kernel, out channels, stride]
const convShapes: [[number, number, number, number], number, number, number][] = [
  [[16, 128, 128, 3], 7, 64, 2],
  [[16, 32, 32, 64], 3, 64, 1],
  [[16, 32, 32, 64], 3, 128, 2],
  [[16, 32, 32, 64], 1, 128, 2],
  [[16, 16, 16, 128], 3, 128, 1],
  [[16, 8, 8, 256], 3, 256, 1],
  [[16, 4, 4, 512], 3, 512, 1],
];
// [input NHWC, kernel, multiplier, stride]
const dwShapes: [[number, number, number, number], number, number, number][] = [
  [[16, 64, 64, 128], 3, 1, 1],
  [[16, 64, 64, 64], 3, 1, 2],
  [[16, 32, 32, 256], 3, 1, 1],
  [[16, 8, 8, 728], 3, 1, 1],
  [[16, 32, 32, 64], 3, 2, 1],
];

const convSetup = convShapes.map(([xs, k, co, s]) => {
  const x = tf.randomNormal(xs) as tf.Tensor4D;
  const f = tf.randomNormal([k, k, xs[3], co]) as tf.Tensor4D;
  const dy = tf.randomNormal(tf.conv2d(x, f, s, 'same').shape) as tf.Tensor4D;
  const attrs = { strides: s, pad: 'same', dataFormat: 'NHWC', inputShape: xs, filterShape: f.shape };
  return { label: `conv ${xs.join('x')} k${k} ->${co} s${s}`, x, f, dy, s, attrs };
});

// Dense backprop: dW = xᵀ·dy and dx = dy·Wᵀ, via the transpose flags, on the stock BatchMatMul and then on
// the override (which transposes explicitly first).
function denseRows(): Row[] {
  return [[16, 512, 10], [16, 2048, 1000], [64, 2048, 1000]].map(([n, i, o]) => tf.tidy(() => {
    const x = tf.randomNormal([n, i]) as tf.Tensor2D;
    const w = tf.randomNormal([i, o]) as tf.Tensor2D;
    const dy = tf.randomNormal([n, o]) as tf.Tensor2D;
    return { dense: `${n}x${i} -> ${o}`, forwardMs: round(ms(() => tf.matMul(x, w))),
      dWms: round(ms(() => tf.matMul(x, dy, true, false))), dXms: round(ms(() => tf.matMul(dy, w, false, true))) };
  }));
}
const stockDense = denseRows();
// The stock wasm Conv2DBackpropInput, timed before registerWasmGradKernels replaces it.
const stockInput = convSetup.map(({ f, dy, attrs }) => ms(() => run('Conv2DBackpropInput', { dy, filter: f }, attrs)));
registerWasmGradKernels();

const rows: Row[] = convSetup.map(({ label, x, f, dy, s, attrs }, i) => {
  const fwd = ms(() => tf.conv2d(x, f, s, 'same'));
  const input = ms(() => run('Conv2DBackpropInput', { dy, filter: f }, attrs));
  const filter = ms(() => run('Conv2DBackpropFilter', { x, dy }, attrs));
  return { layer: label, forwardMs: round(fwd), inputGradMs: round(input), stockInputGradMs: round(stockInput[i]),
    filterGradMs: round(filter), backwardOverForward: round((input + filter) / fwd) };
});

for (const [xs, k, m, s] of dwShapes) {
  const x = tf.randomNormal(xs) as tf.Tensor4D;
  const f = tf.randomNormal([k, k, xs[3], m]) as tf.Tensor4D;
  const dy = tf.randomNormal(tf.depthwiseConv2d(x, f, s, 'same').shape) as tf.Tensor4D;
  const attrs = { strides: s, pad: 'same', dilations: 1, inputShape: xs, filterShape: f.shape };
  const fwd = ms(() => tf.depthwiseConv2d(x, f, s, 'same'));
  const input = ms(() => run('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, attrs));
  const filter = ms(() => run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, attrs));
  rows.push({ layer: `depthwise ${xs.join('x')} k${k} x${m} s${s}`, forwardMs: round(fwd), inputGradMs: round(input),
    stockInputGradMs: '-', filterGradMs: round(filter), backwardOverForward: round((input + filter) / fwd) });
}

const dense = denseRows().map((r, i) => ({ dense: r.dense, forwardMs: r.forwardMs, stockDWms: stockDense[i].dWms,
  dWms: r.dWms, stockDXms: stockDense[i].dXms, dXms: r.dXms }));

console.table(rows);
console.table(dense);
console.log(JSON.stringify({ backend: tf.getBackend(), reps: REPS, conv: rows, dense }));
