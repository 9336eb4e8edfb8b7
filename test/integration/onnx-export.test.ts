// ONNX export of every registry backbone (+ a small 3-class linear head): onnxruntime-node, with
// full graph optimisation, must give the same probabilities as TF.js on the same real photos.
//
// The BatchNorm statistics and affine parameters are randomised (a freshly built network has
// mean 0 / variance 1 / γ 1 / β 0, under which a wrong BN fold would go unnoticed), and the head is
// scaled so that the softmax is not saturated (saturated probabilities would hide errors).
import { describe, it, expect, beforeAll } from 'vitest';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { decodeImage } from '../../main/engine/image-decode';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { toOnnx, tfPadding, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../models/onnx-export';
import { preprocess } from '../../models/preprocess';
import { backboneIds, getBackbone } from '../../models/registry';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const FILES = ['birds/crow.png', 'fruit', 'mammals', 'flowers'];
const TOLERANCE = 1e-4;
/** Small but not degenerate sizes; Xception needs 71 at least. */
const SIZE: Record<string, number> = { xception: 71, googlenet: 64, vgg16: 64, inceptionv4: 75, seinceptionv4: 75 };
const sizeOf = (id: string) => SIZE[id] ?? 64;

let images: string[];

beforeAll(async () => {
  const { readdir } = await import('node:fs/promises');
  images = [];
  for (const f of FILES) {
    if (f.endsWith('.png')) images.push(path.join(PHOTOS, f));
    else images.push(path.join(PHOTOS, f, (await readdir(path.join(PHOTOS, f))).filter((n) => n.endsWith('.png')).sort()[0]));
  }
});

/** A deterministic pseudo-random stream in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Non-trivial BN parameters and statistics. The BNs that end a ResNet residual branch get small γ,
 * as in trained ResNets (and "zero-γ" initialisation): a random deep SE-ResNet without that is
 * numerically chaotic — TF.js's own wasm and cpu backends then disagree by 7% at SE-ResNet-101's
 * output, so no exporter could match within 1e-4.
 */
function randomizeBatchNorms(model: tf.LayersModel, seed: number): void {
  const r = rng(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const n = layer.weights[0].shape[0] as number;
    const vec = (f: () => number) => tf.tensor1d(Array.from({ length: n }, f));
    const gammaScale = /^stage\d+_block\d+_bn[23]$/.test(layer.name) ? 0.2 : 1;
    const values = layer.weights.map((w) => {
      const short = w.originalName.split('/').pop();
      if (short === 'gamma') return vec(() => gammaScale * (0.5 + r()));
      if (short === 'beta') return vec(() => (r() - 0.5) * 0.4);
      if (short === 'moving_mean') return vec(() => (r() - 0.5) * 0.4);
      return vec(() => 0.5 + 1.5 * r()); // moving_variance
    });
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}

async function batchOf(size: number, id: string): Promise<tf.Tensor4D> {
  const pixels = await Promise.all(images.map((f) => decodeImage(f, size)));
  const flat = new Float32Array(pixels.length * size * size * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  return tf.tidy(() => preprocess(tf.tensor4d(flat, [pixels.length, size, size, 3]), getBackbone(id).preprocessing));
}

/** Scales the head's kernel so that the logits span a few units (softmax neither flat nor saturated). */
function calibrateHead(classifier: tf.LayersModel, backbone: tf.LayersModel, x: tf.Tensor4D): void {
  const dense = classifier.getLayer('head_classifier');
  const [kernel, bias] = dense.getWeights();
  const spread = tf.tidy(() => {
    const logits = tf.matMul(backbone.predict(x) as tf.Tensor2D, kernel as tf.Tensor2D);
    return tf.sub(tf.max(logits), tf.min(logits)).dataSync()[0];
  });
  tf.tidy(() => dense.setWeights([tf.mul(kernel, 4 / Math.max(spread, 1e-6)), bias]));
}

describe('tfPadding (TF "same")', () => {
  it('pads asymmetrically, more at the end, for even inputs with stride 2', () => {
    expect(tfPadding('same', 64, 3, 2)).toEqual([0, 1]);
    expect(tfPadding('same', 65, 3, 2)).toEqual([1, 1]);
    expect(tfPadding('same', 64, 3, 1)).toEqual([1, 1]);
    expect(tfPadding('same', 64, 1, 2)).toEqual([0, 0]);
    expect(tfPadding('same', 7, 3, 1, 2)).toEqual([2, 2]);
    expect(tfPadding('valid', 64, 7, 2)).toEqual([0, 0]);
  });
});

describe('toOnnx refuses what it cannot translate exactly', () => {
  it('names the layer and its class', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const y = tf.layers.conv2d({ name: 'c', filters: 2, kernelSize: 3 }).apply(input) as tf.SymbolicTensor;
    const z = tf.layers.upSampling2d({ name: 'my_upsample', size: [2, 2] }).apply(y) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: z });
    expect(() => toOnnx(model, { inputSize: 8 })).toThrow(/layer "my_upsample" \(UpSampling2D\) is not supported/);
    const wrongAct = tf.model({ inputs: input, outputs: tf.layers.activation({ name: 'act', activation: 'elu' }).apply(y) as tf.SymbolicTensor });
    expect(() => toOnnx(wrongAct, { inputSize: 8 })).toThrow(/layer "act" \(Activation\) is not supported: activation "elu"/);
    expect(() => toOnnx(model, { inputSize: 9 })).toThrow(/8×8 images, not 9×9/);
    // Zero padding before a max-pool on values that may be negative has no exact ONNX form that
    // onnxruntime's optimiser leaves intact: refused.
    const padded = tf.layers.zeroPadding2d({ name: 'zp', padding: 1 }).apply(y) as tf.SymbolicTensor;
    const pooled = tf.layers.maxPooling2d({ name: 'pool', poolSize: 3, strides: 2 }).apply(padded) as tf.SymbolicTensor;
    expect(() => toOnnx(tf.model({ inputs: input, outputs: pooled }), { inputSize: 8 })).toThrow(/layer "pool" \(MaxPooling2D\) is not supported: zero padding before a max-pool/);
    expect(() => toOnnx(model, { inputSize: 8, opset: 11 })).toThrow(/opset/);
    model.dispose();
  });
});

/** Every layer type and option the exporter handles that the registry backbones do not all use. */
function kitchenSink(): tf.LayersModel {
  const L = tf.layers;
  const input = tf.input({ shape: [20, 20, 3], name: 'input' });
  const ap = <T extends tf.layers.Layer>(l: T, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;
  let x = ap(L.depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, useBias: true }), input); // 10×10×6
  x = ap(L.batchNormalization({ name: 'dw_bn' }), x); // folded into dw
  const r = ap(L.reLU({ name: 'relu6', maxValue: 6 }), x);
  x = ap(L.batchNormalization({ name: 'standalone_bn', epsilon: 1e-3 }), r); // after an activation: Mul + Add
  const a1 = ap(L.averagePooling2d({ name: 'avg', poolSize: 3, strides: 2, padding: 'same' }), x); // 5×5×6
  const a2 = ap(L.averagePooling2d({ name: 'avg_valid', poolSize: 3, strides: 2 }), ap(L.zeroPadding2d({ name: 'zp_avg', padding: 1 }), x)); // 5×5×6
  const a = ap(L.add({ name: 'avg_sum' }), [a1, a2]);
  let b = ap(L.zeroPadding2d({ name: 'zp', padding: [[1, 0], [0, 1]] }), r); // 11×11, ≥ 0: becomes the max-pool's pads
  b = ap(L.maxPooling2d({ name: 'mp', poolSize: 2, strides: 2, padding: 'valid' }), b); // 5×5
  b = ap(L.zeroPadding2d({ name: 'zp2', padding: [[0, 0], [1, 1]] }), b); // 5×7: folded into the separable conv
  b = ap(L.separableConv2d({ name: 'sep', filters: 6, kernelSize: 3, padding: 'valid', depthMultiplier: 2, useBias: true, activation: 'tanh' }), b); // 3×5
  b = ap(L.zeroPadding2d({ name: 'zp3', padding: [[1, 1], [0, 0]] }), b); // 5×5: feeds Add, so a real Pad
  let y = ap(L.add({ name: 'sum' }), [a, b]);
  const c = ap(L.conv2d({ name: 'dil', filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'sigmoid' }), y);
  y = ap(L.maximum({ name: 'max' }), [y, c]);
  y = ap(L.concatenate({ name: 'cat', axis: -1 }), [y, ap(L.activation({ name: 'act', activation: 'relu' }), y)]); // 5×5×12
  const g = ap(L.globalMaxPooling2d({ name: 'gmp' }), y); // 12
  const se = ap(L.reshape({ name: 'se_reshape', targetShape: [1, 1, 12] }), ap(L.dense({ name: 'se_dense', units: 12, activation: 'sigmoid' }), g));
  y = ap(L.multiply({ name: 'se_mul' }), [y, se]);
  y = ap(L.permute({ name: 'perm', dims: [3, 1, 2] }), y); // [12, 5, 5]
  y = ap(L.dense({ name: 'rows', units: 4 }), y); // [12, 5, 4]: Dense on a rank-4 tensor
  y = ap(L.reshape({ name: 'reshape', targetShape: [20, 12] }), y);
  y = ap(L.permute({ name: 'perm2', dims: [2, 1] }), y); // [12, 20]
  y = ap(L.flatten({ name: 'flat' }), y);
  y = ap(L.dropout({ name: 'drop', rate: 0.5 }), y);
  y = ap(L.dense({ name: 'logits', units: 5 }), y);
  y = ap(L.softmax({ name: 'prob' }), y);
  return tf.model({ inputs: input, outputs: y, name: 'kitchen_sink' });
}

describe('toOnnx on every supported layer type', () => {
  it('matches TF.js on a model using depthwise/separable/dilated convs, BN (folded and not), pads, pools, merges, permute, reshape', async () => {
    const model = kitchenSink();
    randomizeBatchNorms(model, 3);
    const x = tf.randomNormal([3, 20, 20, 3], 0, 1, 'float32', 5);
    const want = (model.predict(x) as tf.Tensor).dataSync();
    const bytes = toOnnx(model, { inputSize: 20 });
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
    const out = (await session.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, [3, 20, 20, 3]) })).output.data as Float32Array;
    await session.release();
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - want[i]));
    console.log(`[onnx] kitchen sink: max |Δp| = ${maxDiff.toExponential(2)}`);
    expect(out.length).toBe(15);
    expect(maxDiff).toBeLessThan(TOLERANCE);
    x.dispose();
    model.dispose();
  });
});

describe.each(backboneIds())('ONNX export of %s', (id) => {
  it(`matches TF.js within ${TOLERANCE} on real photos (onnxruntime, graphOptimizationLevel 'all')`, async () => {
    const size = sizeOf(id);
    const info = getBackbone(id);
    const started = performance.now();
    const backbone = info.build({ inputSize: size });
    const classifier = attachHead(backbone, buildHead(info.featureDim, 3, { kind: 'linear' }, 7));
    randomizeBatchNorms(classifier, 11);
    const x = await batchOf(size, id);
    try {
      calibrateHead(classifier, backbone, x);
      const expected = tf.tidy(() => classifier.predict(x) as tf.Tensor2D);
      const want = await expected.data();
      expected.dispose();

      for (const layout of ['NHWC', 'NCHW'] as const) {
        const bytes = toOnnx(classifier, { inputSize: size, layout });
        const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 2 });
        try {
          expect(session.inputNames).toEqual([ONNX_INPUT_NAME]);
          expect(session.outputNames).toEqual([ONNX_OUTPUT_NAME]);
          const feed = layout === 'NHWC' ? x : tf.transpose(x, [0, 3, 1, 2]);
          const data = (await feed.data()) as Float32Array;
          if (feed !== x) feed.dispose();
          const dims = layout === 'NHWC' ? [images.length, size, size, 3] : [images.length, 3, size, size];
          const result = await session.run({ [ONNX_INPUT_NAME]: new ort.Tensor('float32', data, dims) });
          const got = result[ONNX_OUTPUT_NAME];
          expect(got.dims).toEqual([images.length, 3]);
          const out = got.data as Float32Array;
          let maxDiff = 0;
          for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - want[i]));
          // The probabilities must be informative: not all ~1/3 and not all saturated.
          const maxProb = Math.max(...want);
          const minProb = Math.min(...want);
          console.log(
            `[onnx] ${id} ${size}² ${layout}: max |Δp| = ${maxDiff.toExponential(2)} (p ∈ [${minProb.toFixed(3)}, ${maxProb.toFixed(3)}]), ` +
              `${(bytes.byteLength / 1e6).toFixed(1)} MB, ${((performance.now() - started) / 1000).toFixed(1)} s so far`,
          );
          expect(maxProb).toBeLessThan(0.9999);
          expect(maxProb - minProb).toBeGreaterThan(0.05);
          expect(maxDiff).toBeLessThan(TOLERANCE);
        } finally {
          await session.release();
        }
      }
    } finally {
      x.dispose();
      disposeAll(classifier);
    }
  });
});
