// Per-operator gradients of the ONNX training graph (models/onnx-train) against TF.js autodiff on the
// cpu backend: each small network isolates one operator in every attribute combination the zoo uses,
// and one step's loss, every trainable weight's gradient and the BN running statistics must agree
// within 1e-4 relative (max |Δ| / max |TF.js value|, per tensor).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { activationLayer, add, batchNorm, conv2d, conv2dBn, globalAvgPool, maxPool, separableConv2dBn, squeezeExcite, dense, withInitSeed } from '../../models/layers';
import { compareStep, seeded } from './onnx-train-check';

const TOL = 1e-4;
let previous: string;

beforeAll(async () => {
  previous = tf.getBackend();
  await tf.setBackend('cpu');
});
afterAll(async () => {
  await tf.setBackend(previous);
});

type Sym = tf.SymbolicTensor;

/** input → body → GAP → dense softmax (classes). */
/** Initial weights are seeded per layer name (the same net every run: no unit starts dead by chance). */
function net(size: number, channels: number, body: (x: Sym) => Sym, classes = 3, name = 'net'): tf.LayersModel {
  return withInitSeed(2026, () => {
    const input = tf.input({ shape: [size, size, channels], name: 'input' });
    let y = body(input);
    if (y.shape.length === 4) y = globalAvgPool(y, 'gap');
    y = dense(y, { name: 'head_classifier', units: classes, activation: 'softmax' });
    return tf.model({ inputs: input, outputs: y, name });
  });
}

/** Randomizes BN statistics and affine weights, so that frozen BN is not the identity. */
function randomizeBn(model: tf.LayersModel, seed = 3): void {
  const r = seeded(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    layer.setWeights(
      layer.getWeights().map((w) => {
        const short = w.shape[0];
        const name = layer.weights[layer.getWeights().indexOf(w)]?.originalName ?? '';
        const vals = Float32Array.from({ length: short }, () => (name.includes('variance') ? 0.5 + r() : name.includes('gamma') ? 0.5 + r() : r() - 0.5));
        return tf.tensor1d(vals);
      }),
    );
  }
}

async function expectClose(model: tf.LayersModel, opts: Parameters<typeof compareStep>[1], label: string): Promise<void> {
  const c = await compareStep(model, opts);
  const detail = c.grads.map((g) => `${g.name} ${g.rel.toExponential(1)}`).join(', ');
  console.log(`${label}: loss ${c.loss[0].toFixed(6)} vs ${c.loss[1].toFixed(6)}; worst rel ${c.worst.toExponential(2)} (${c.grads.length} grads${c.stats.length ? `, ${c.stats.length} stats` : ''}) — ${detail}`);
  expect(c.grads.length).toBeGreaterThan(0);
  for (const g of c.grads) {
    expect(g.scale, `${g.name} has a zero gradient in TF.js`).toBeGreaterThan(0);
    expect(g.rel, `${label}: gradient of ${g.name}`).toBeLessThan(TOL);
  }
  for (const s of c.stats) expect(s.rel, `${label}: running statistic ${s.name}`).toBeLessThan(TOL);
  expect(Math.abs(c.loss[0] - c.loss[1]) / Math.abs(c.loss[1])).toBeLessThan(TOL);
  model.dispose();
}

describe('ONNX training graph: gradients per operator against TF.js', () => {
  it('Dense/Gemm, ReLU, softmax cross-entropy with class weights', async () => {
    const model = net(4, 6, (x) => {
      let y = globalAvgPool(x, 'pool');
      y = dense(y, { name: 'hidden', units: 5, activation: 'relu' });
      return y;
    }, 4);
    await expectClose(model, { batch: 4, classes: 4, labels: [0, 3, 1, 3] }, 'dense');
  });

  for (const [label, opts] of [
    ['conv 3×3 same stride 1', { kernel: 3, stride: 1, padding: 'same' as const }],
    ['conv 7×7 stride 2 pad 3 (stem)', { kernel: 7, stride: 2, padding: 3 }],
    ['conv 3×3 stride 2 pad 1', { kernel: 3, stride: 2, padding: 1 }],
    ['conv 1×1 stride 2 valid (shortcut)', { kernel: 1, stride: 2, padding: 'valid' as const }],
    ['conv 1×1 stride 1 valid', { kernel: 1, stride: 1, padding: 'valid' as const }],
    ['conv 3×3 stride 2 valid (odd input)', { kernel: 3, stride: 2, padding: 'valid' as const, size: 9 }],
  ] as const) {
    it(`${label}, with bias and ReLU; with frozen BN folded in`, async () => {
      const size = 'size' in opts ? opts.size : 8;
      // Two convs so that the first one's input gradient is exercised too.
      const plain = net(size, 3, (x) => {
        const y = conv2d(x, { name: 'c1', filters: 4, kernel: opts.kernel, stride: opts.stride, padding: opts.padding, bias: true, activation: 'relu' });
        return conv2d(y, { name: 'c2', filters: 5, kernel: opts.kernel, stride: opts.stride, padding: opts.padding, bias: true });
      });
      await expectClose(plain, { batch: 3, classes: 3 }, `${label} + bias`);
      const withBn = net(size, 3, (x) => {
        const y = conv2dBn(x, { name: 'c1', filters: 4, kernel: opts.kernel, stride: opts.stride, padding: opts.padding });
        return conv2dBn(y, { name: 'c2', filters: 5, kernel: opts.kernel, stride: opts.stride, padding: opts.padding, activation: 'linear' });
      });
      randomizeBn(withBn);
      withBn.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
      // TF.js runs a frozen BN in inference mode only through freezeBackbone's patch; do the same here.
      for (const l of withBn.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
        const call = l.call.bind(l);
        l.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
      }
      await expectClose(withBn, { batch: 3, classes: 3 }, `${label} + frozen BN`);
    });
  }

  it('Add (residual) with a frozen standalone BN on the shortcut and a frozen conv', async () => {
    const model = net(8, 4, (x) => {
      const a = conv2d(x, { name: 'branch', filters: 4, kernel: 3, padding: 'same' });
      const s = batchNorm(x, 'shortcut_bn');
      return activationLayer(add([a, s], 'sum'), 'out', 'relu');
    });
    randomizeBn(model);
    const bn = model.getLayer('shortcut_bn');
    bn.trainable = false;
    const call = bn.call.bind(bn);
    bn.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
    await expectClose(model, { batch: 3, classes: 3 }, 'add');
  });

  for (const [label, o] of [
    ['max-pool 3×3/2 after zero pad 1 (ResNet stem)', { pool: 3, stride: 2, padding: 1, size: 8 }],
    ['max-pool 2×2/2 valid (VGG)', { pool: 2, stride: 2, padding: 'valid' as const, size: 8 }],
    ['max-pool 3×3/2 valid, odd input', { pool: 3, stride: 2, padding: 'valid' as const, size: 9 }],
  ] as const) {
    it(label, async () => {
      const model = net(o.size, 3, (x) => {
        const y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
        return maxPool(y, { name: 'pool', pool: o.pool, stride: o.stride, padding: o.padding });
      });
      await expectClose(model, { batch: 3, classes: 3 }, label);
    });
  }

  it("max-pool 3×3 'same' stride 2 and stride 1 (Xception, GoogLeNet)", async () => {
    const model = net(9, 3, (x) => {
      let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
      y = tf.layers.maxPooling2d({ name: 'p1', poolSize: 3, strides: 1, padding: 'same' }).apply(y) as Sym;
      return tf.layers.maxPooling2d({ name: 'p2', poolSize: 3, strides: 2, padding: 'same' }).apply(y) as Sym;
    });
    await expectClose(model, { batch: 2, classes: 3 }, 'max-pool same');
  });

  it('batch norm in training mode, with running statistics', async () => {
    const model = net(6, 3, (x) => {
      const y = conv2dBn(x, { name: 'c1', filters: 4, kernel: 3 });
      return conv2dBn(y, { name: 'c2', filters: 5, kernel: 3, stride: 2, padding: 1, activation: 'linear' });
    });
    randomizeBn(model, 5);
    await expectClose(model, { batch: 4, classes: 3 }, 'BN training');
  });

  it('squeeze-and-excitation (GAP, dense ReLU, dense sigmoid, reshape, broadcast multiply)', async () => {
    const model = net(6, 3, (x) => {
      const y = conv2d(x, { name: 'c1', filters: 8, kernel: 3, padding: 'same', activation: 'relu' });
      return squeezeExcite(y, 'se', 4);
    });
    await expectClose(model, { batch: 3, classes: 3 }, 'SE');
  });

  it('concatenate (GoogLeNet branches)', async () => {
    const model = net(6, 3, (x) => {
      const a = conv2d(x, { name: 'a', filters: 3, kernel: 1, padding: 'valid', activation: 'relu' });
      const b = conv2d(x, { name: 'b', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
      return tf.layers.concatenate({ name: 'cat', axis: -1 }).apply([a, b]) as Sym;
    });
    await expectClose(model, { batch: 3, classes: 3 }, 'concat');
  });

  it('separable and depthwise convolutions', async () => {
    const model = net(8, 3, (x) => {
      let y = conv2d(x, { name: 'c0', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
      y = separableConv2dBn(y, { name: 'sep', filters: 6, kernel: 3, activation: 'relu' });
      y = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, padding: 'same', useBias: true }).apply(y) as Sym;
      return y;
    });
    randomizeBn(model, 9);
    await expectClose(model, { batch: 3, classes: 3 }, 'separable/depthwise');
  });

  it('dropout with a mask fed in (MLP head)', async () => {
    const r = seeded(11);
    const hidden = 6;
    const mask = Float32Array.from({ length: 4 * hidden }, () => (r() < 0.5 ? 0 : 2));
    const model = net(4, 5, (x) => {
      let y = globalAvgPool(x, 'pool');
      y = dense(y, { name: 'head_hidden', units: hidden, activation: 'relu' });
      return tf.layers.dropout({ name: 'head_dropout', rate: 0.5 }).apply(y) as Sym;
    });
    await expectClose(model, { batch: 4, classes: 3, masks: new Map([['head_dropout', mask]]) }, 'dropout');
  });
});
