// Per-operator gradients of the ONNX training graph (models/onnx-train) against TF.js autodiff on the
// cpu backend: each small network isolates one operator in every attribute combination the zoo uses,
// and one step's loss, every trainable weight's gradient and the BN running statistics must agree
// within 1e-4 relative (max |Δ| / max |TF.js value|, per tensor).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { activationLayer, add, batchNorm, conv2d, conv2dBn, globalAvgPool, maxPool, separableConv2dBn, squeezeExcite, dense, withInitSeed } from '../../models/layers';
import { adaptiveAvgPoolToChw } from '../../models/vgg';
import onnxProto from 'onnx-proto';
import { buildTrainGraph } from '../../models/onnx-train/build';
import { loadOrt, nchwcBlockSize } from '../../models/onnx-train/session';
import { compareStep, seeded } from './onnx-train-check';

const { onnx } = onnxProto;

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

  it('a ReLU read only by a max-pool runs after the pool, on plateaus of equal maxima and all-negative windows', async () => {
    // Flat patches of the input make equal conv outputs (ties at positive values: the gradient must go to
    // the first maximum only) and negative patches whole windows ≤ 0 (no gradient at all).
    const size = 10;
    const batch = 3;
    const x = new Float32Array(batch * size * size * 3);
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < size; i++)
        for (let j = 0; j < size; j++)
          for (let ch = 0; ch < 3; ch++) x[((b * size + i) * size + j) * 3 + ch] = (Math.floor(i / 4) + Math.floor(j / 3) + b) % 3 === 0 ? -1 : 0.25 * (1 + ((Math.floor(i / 4) * 3 + Math.floor(j / 3) + ch) % 4));
    for (const [label, o] of [
      ['after zero pad 1, 3×3/2 (ResNet stem)', { pool: 3, stride: 2, padding: 1 }],
      ['2×2/2 valid (VGG)', { pool: 2, stride: 2, padding: 'valid' as const }],
    ] as const) {
      const model = net(size, 3, (inp) => {
        const y = conv2d(inp, { name: 'c1', filters: 4, kernel: 3, padding: 'same', bias: true });
        return maxPool(activationLayer(y, 'c1_relu', 'relu'), { name: 'pool', pool: o.pool, stride: o.stride, padding: o.padding });
      });
      const graph = onnx.ModelProto.decode(buildTrainGraph(model, { batchSize: batch }).bytes).graph!;
      const pool = graph.node!.find((nd) => nd.opType === 'MaxPool')!;
      const reluAfter = graph.node!.find((nd) => nd.opType === 'Relu' && nd.input![0] === pool.output![0]);
      expect(reluAfter, `${label}: the ReLU should read the pool's output`).toBeTruthy();
      await expectClose(model, { batch, classes: 3, x }, `deferred ReLU, ${label}`);
    }
  });

  it("max-pool 3×3 'same' stride 2 and stride 1 (Xception, GoogLeNet)", async () => {
    const model = net(9, 3, (x) => {
      let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
      y = tf.layers.maxPooling2d({ name: 'p1', poolSize: 3, strides: 1, padding: 'same' }).apply(y) as Sym;
      return tf.layers.maxPooling2d({ name: 'p2', poolSize: 3, strides: 2, padding: 'same' }).apply(y) as Sym;
    });
    await expectClose(model, { batch: 2, classes: 3 }, 'max-pool same');
  });

  it("convolutions as onnxruntime's NCHWc Conv (3×3 same with its input gradient, strided, with bias; not the 3-channel stem), BN in training mode", async () => {
    const ort = await loadOrt();
    const block = await nchwcBlockSize(ort);
    expect(block, 'this CPU build of onnxruntime has NCHWc kernels (x64: 8 or 16 channels a block)').toBeGreaterThan(0);
    const model = net(8, 3, (x) => {
      let y = conv2dBn(x, { name: 'c1', filters: 16, kernel: 7, stride: 2, padding: 3 });
      y = conv2dBn(y, { name: 'c2', filters: 16, kernel: 3 });
      y = conv2dBn(y, { name: 'c3', filters: 32, kernel: 3, stride: 2, padding: 1 });
      return conv2d(y, { name: 'c4', filters: 32, kernel: 3, padding: 'same', bias: true });
    });
    randomizeBn(model, 9);
    // Small images: force NCHWc below its measured break-even size.
    const graph = { nchwcBlock: block, nchwcMinPixels: 0 };
    const nchwcConvs = (options: typeof graph | undefined) =>
      onnx.ModelProto.decode(buildTrainGraph(model, { batchSize: 3, graph: options }).bytes).graph!.node!.filter((nd) => nd.domain === 'com.microsoft.nchwc' && nd.opType === 'Conv').length;
    // c2–c4 forward and the stride-1 input gradients of c2 and c4 (c3's is a ConvTranspose; c1 has 3 input channels).
    expect(nchwcConvs(graph)).toBe(5);
    expect(nchwcConvs(undefined)).toBe(0);
    await expectClose(model, { batch: 3, classes: 3, graph }, 'NCHWc convolutions');
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

  // Xception's blocks with every BN in training mode (as its full mode trains them), written as
  // models/xception.ts writes them: entry/exit block [ReLU] → sepconv → BN → ReLU → sepconv → BN →
  // max-pool 3×3/2 'same' + 1×1/2 conv → BN shortcut, Add; a middle block of three ReLU → sepconv → BN
  // with an identity shortcut; block 14's sepconv → BN → ReLU twice. Odd sides pad the pool top and
  // bottom, even sides the bottom only.
  for (const size of [7, 8]) {
    it(`Xception's entry, middle and exit blocks with BN in training mode, ${size}×${size}`, async () => {
      const sep = (x: Sym, name: string, filters: number) =>
        separableConv2dBn(x, { name, names: { sepconv: name, bn: `${name}_bn` }, filters, kernel: 3, padding: 'same', epsilon: 1e-3, momentum: 0.99, activation: 'linear' });
      const relu = (x: Sym, name: string) => activationLayer(x, name, 'relu');
      const downsampling = (x: Sym, p: string, filters: number, preActivate: boolean) => {
        const shortcut = conv2dBn(x, { name: `${p}_shortcut`, names: { conv: `${p}_shortcut`, bn: `${p}_shortcut_bn` }, filters, kernel: 1, stride: 2, padding: 'valid', epsilon: 1e-3, momentum: 0.99, activation: 'linear' });
        let y = sep(preActivate ? relu(x, `${p}_act1`) : x, `${p}_sep1`, filters);
        y = sep(relu(y, `${p}_act2`), `${p}_sep2`, filters);
        y = tf.layers.maxPooling2d({ name: `${p}_pool`, poolSize: 3, strides: 2, padding: 'same' }).apply(y) as Sym;
        return add([y, shortcut], `${p}_add`);
      };
      const model = net(size, 3, (x) => {
        let y = conv2dBn(x, { name: 'stem', filters: 4, kernel: 3, padding: 'same', epsilon: 1e-3, momentum: 0.99 });
        y = downsampling(y, 'entry', 6, false);
        let m = y;
        for (const k of [1, 2, 3]) m = sep(relu(m, `middle_act${k}`), `middle_sep${k}`, 6);
        y = add([m, y], 'middle_add');
        y = downsampling(y, 'exit', 8, true);
        for (const k of [1, 2]) y = relu(sep(y, `block14_sep${k}`, 8), `block14_act${k}`);
        return y;
      });
      randomizeBn(model, 13);
      await expectClose(model, { batch: 4, classes: 3 }, `Xception blocks ${size}²`);
    });
  }

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

  /** Average pools are checked against wasm: cpu's AvgPoolGrad is not its forward pass's gradient (below). */
  async function onWasm(f: () => Promise<void>): Promise<void> {
    await tf.setBackend(previous);
    try {
      expect(tf.getBackend()).toBe('wasm');
      await f();
    } finally {
      await tf.setBackend('cpu');
    }
  }

  for (const size of [7, 8]) {
    it(`average pool 3×3/1 'same', not counting the padding (Inception-v4 branch 3), ${size}×${size}`, () =>
      onWasm(async () => {
        const model = net(size, 3, (x) => {
          let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
          y = tf.layers.averagePooling2d({ name: 'avg', poolSize: 3, strides: 1, padding: 'same' }).apply(y) as Sym;
          return conv2d(y, { name: 'c2', filters: 5, kernel: 1, padding: 'valid' });
        });
        await expectClose(model, { batch: 3, classes: 3 }, `avg pool same ${size}²`);
      }));
  }

  it("average pool 2×2/2 'valid' and 3×3/2 'same' (strided: the ConvTranspose gradient)", () =>
    onWasm(async () => {
      const model = net(9, 3, (x) => {
        let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
        y = tf.layers.averagePooling2d({ name: 'avg_same', poolSize: 3, strides: 2, padding: 'same' }).apply(y) as Sym;
        y = conv2d(y, { name: 'c2', filters: 5, kernel: 1, padding: 'valid', activation: 'relu' });
        return tf.layers.averagePooling2d({ name: 'avg_valid', poolSize: 2, strides: 2, padding: 'valid' }).apply(y) as Sym;
      });
      await expectClose(model, { batch: 3, classes: 3 }, 'avg pool strided');
    }));

  it("cpu's AvgPoolGrad is not the gradient of its forward pass at the borders; Refit's wasm kernel is (why the checks above run on wasm)", async () => {
    const x = tf.randomUniform([1, 4, 4, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
    const f = (t: tf.Tensor) => tf.sum(tf.avgPool(t as tf.Tensor4D, 3, 1, 'same'));
    const g = tf.grad(f)(x).dataSync();
    // The corner cell is in 4 windows, of 4, 6, 6 and 9 cells: d/dx = 1/4 + 2/6 + 1/9; cpu says 4 · 1/9.
    const exact = 1 / 4 + 2 / 6 + 1 / 9;
    const numeric = (f(tf.add(x, tf.oneHot([0], 16).reshape([1, 4, 4, 1]).mul(1e-2)) as tf.Tensor4D).dataSync()[0] - f(x).dataSync()[0]) / 1e-2;
    let wasm = NaN;
    await onWasm(async () => void (wasm = tf.grad(f)(tf.tensor4d(x.dataSync(), [1, 4, 4, 1])).dataSync()[0]));
    console.log(`avg pool corner gradient: exact ${exact.toFixed(4)}, finite difference ${numeric.toFixed(4)}, cpu ${g[0].toFixed(4)}, wasm ${wasm.toFixed(4)}`);
    expect(numeric).toBeCloseTo(exact, 3);
    expect(g[0]).toBeCloseTo(4 / 9, 5);
    expect(wasm).toBeCloseTo(exact, 5);
  });

  it('non-square kernels 1×7, 7×1, 1×3, 3×1 (Inception-B/C), frozen BN folded and BN in training mode', async () => {
    const body = (x: Sym) => {
      let y = conv2dBn(x, { name: 'c17', filters: 4, kernel: [1, 7] });
      y = conv2dBn(y, { name: 'c71', filters: 5, kernel: [7, 1] });
      const a = conv2dBn(y, { name: 'c13', filters: 3, kernel: [1, 3] });
      const b = conv2dBn(y, { name: 'c31', filters: 3, kernel: [3, 1] });
      return tf.layers.concatenate({ name: 'fork', axis: -1 }).apply([a, b]) as Sym;
    };
    const training = net(8, 3, body);
    randomizeBn(training, 13);
    await expectClose(training, { batch: 4, classes: 3 }, 'non-square kernels, BN training');
    const frozen = net(8, 3, body);
    randomizeBn(frozen, 14);
    for (const l of frozen.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      l.trainable = false;
      const call = l.call.bind(l);
      l.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
    }
    await expectClose(frozen, { batch: 3, classes: 3 }, 'non-square kernels, frozen BN');
  });

  for (const side of [2, 3, 7]) {
    it(`VGG's adaptive average pool ${side}×${side} → 7×7 in torch's C·H·W order (Permute, frozen Dense maps on the last axis, Flatten), then fc6`, async () => {
      // The size before the pool: VGG's five 2×2 max-pools take 2·side… here one conv and one pool.
      const model = net(2 * side, 3, (x) => {
        let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', bias: true, activation: 'relu' });
        y = maxPool(y, { name: 'pool', pool: 2, stride: 2 });
        y = adaptiveAvgPoolToChw(y, 'fc');
        y = tf.layers.flatten({ name: 'fc_flatten' }).apply(y) as Sym;
        return dense(y, { name: 'fc_fc6', units: 6, activation: 'relu' });
      });
      expect(model.layers.filter((l) => l.getClassName() === 'Permute').length).toBe(side === 7 ? 1 : 3);
      await expectClose(model, { batch: 3, classes: 3 }, `adaptive pool ${side}→7`);
    });
  }

  it('Dense on a rank-4 tensor (trainable, bias, ReLU) between Permutes, then Flatten', async () => {
    const model = net(6, 3, (x) => {
      let y = conv2d(x, { name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' });
      y = tf.layers.permute({ name: 'to_chw', dims: [3, 1, 2] }).apply(y) as Sym; // [b, 4, 6, 6]
      y = dense(y, { name: 'along_w', units: 5, activation: 'relu' }); // [b, 4, 6, 5]
      y = tf.layers.permute({ name: 'swap', dims: [1, 3, 2] }).apply(y) as Sym; // [b, 4, 5, 6]
      y = dense(y, { name: 'along_h', units: 2 }); // [b, 4, 5, 2]
      y = tf.layers.permute({ name: 'back', dims: [2, 3, 1] }).apply(y) as Sym; // [b, 5, 2, 4]
      y = conv2d(y, { name: 'c2', filters: 3, kernel: 1, padding: 'valid', activation: 'relu' }); // a feature map again
      return tf.layers.flatten({ name: 'flat' }).apply(y) as Sym;
    });
    await expectClose(model, { batch: 3, classes: 3 }, 'dense rank 4');
  });
});
