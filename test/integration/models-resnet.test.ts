import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildResNet } from '../../models/resnet';
import { PREPROCESSING, RESNET_STAGES } from '../../models/catalog';
import { squeezeExcitation } from '../../models/layers';
import { conv2d, imageInput, maxPool } from '../../models/layers';
import { countFlops, countParams, flopsByLayer } from '../../models/flops';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { preprocess } from '../../models/preprocess';
import { stageOf } from '../../models/freeze';

let liveTensors = 0;
beforeEach(() => {
  liveTensors = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(liveTensors);
});

/** Names of the layers feeding `layerName`'s (only) call inside `model`. */
function inputsOf(model: tf.LayersModel, layerName: string): string[] {
  const node = model.getLayer(layerName).inboundNodes[0];
  return node.inboundLayers.map((l) => l.name);
}

function withModel<T>(model: tf.LayersModel, fn: (m: tf.LayersModel) => T): T {
  try {
    return fn(model);
  } finally {
    disposeAll(model);
  }
}

describe('ResNet structure', () => {
  it('names every layer after its stage and uses the published layer names', () => {
    withModel(buildResNet({ depth: 18, inputSize: 64 }), (m) => {
      const names = m.layers.map((l) => l.name);
      for (const name of names) {
        if (name === 'input' || name === 'features_pool') continue;
        expect(stageOf(name, RESNET_STAGES), name).toBeDefined();
      }
      expect(names.slice(0, 7)).toEqual(['input', 'stem_pad', 'stem_conv', 'stem_bn', 'stem_relu', 'stem_pool_pad', 'stem_pool']);
      expect(names.at(-1)).toBe('features_pool');
      // basic unit: two conv/bn pairs, projection shortcut only where the shape changes
      expect(names).toEqual(expect.arrayContaining(['stage1_block2_conv2', 'stage1_block2_bn2', 'stage1_block2_add', 'stage1_block2_out']));
      expect(names).not.toContain('stage1_block1_shortcut_conv');
      expect(names).not.toContain('stage1_block1_conv3');
      expect(names).toEqual(expect.arrayContaining(['stage2_block1_shortcut_conv', 'stage2_block1_shortcut_bn', 'stage2_block1_pad1']));
      expect(names.filter((n) => /^stage\d_block\d+_out$/.test(n))).toHaveLength(8);
      expect(inputsOf(m, 'stage2_block1_add').sort()).toEqual(['stage2_block1_bn2', 'stage2_block1_shortcut_bn']);
    });
  });

  describe('ResNet-50 at 64²', () => {
    let m: tf.LayersModel;
    beforeAll(() => {
      m = buildResNet({ depth: 50, inputSize: 64 });
    });
    afterAll(() => disposeAll(m));

    it('puts the bottleneck stride on the first 1×1 conv and projects the first shortcut of stage 1', () => {
      const strides = (name: string) => (m.getLayer(name).getConfig() as { strides: number[] }).strides;
      expect(strides('stage2_block1_conv1')).toEqual([2, 2]);
      expect(strides('stage2_block1_conv2')).toEqual([1, 1]);
      expect(strides('stage2_block1_shortcut_conv')).toEqual([2, 2]);
      expect(m.getLayer('stage2_block1_conv1').outputShape).toEqual([null, 8, 8, 128]);
      expect(m.getLayer('stage1_block1_shortcut_conv').outputShape).toEqual([null, 16, 16, 256]);
      expect(m.getLayer('stage4_block3_out').outputShape).toEqual([null, 2, 2, 2048]);
      expect(m.layers.filter((l) => /_conv\d$/.test(l.name))).toHaveLength(3 * (3 + 4 + 6 + 3));
    });

    it('never uses TF "same" padding for a strided convolution or pool; convs have no bias; BN ε = 1e-5', () => {
      for (const layer of m.layers) {
        const config = layer.getConfig() as { strides?: number[]; padding?: string };
        if (config.strides && config.strides.some((s) => s > 1)) expect(config.padding, layer.name).toBe('valid');
      }
      const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D');
      expect(convs.every((l) => (l.getConfig() as { useBias: boolean }).useBias === false)).toBe(true);
      const bns = m.layers.filter((l) => l.getClassName() === 'BatchNormalization');
      expect(bns.every((l) => (l.getConfig() as { epsilon: number }).epsilon === 1e-5)).toBe(true);
    });
  });

  it('inserts SE on the residual branch, after the last BN and before the addition', () => {
    withModel(buildResNet({ depth: 50, attention: squeezeExcitation(16), inputSize: 64 }), (m) => {
      expect(inputsOf(m, 'stage3_block2_se_pool')).toEqual(['stage3_block2_bn3']);
      expect(inputsOf(m, 'stage3_block2_se_scale')).toEqual(['stage3_block2_bn3', 'stage3_block2_se_reshape']);
      expect(inputsOf(m, 'stage3_block2_add')).toEqual(['stage3_block2_se_scale', 'stage3_block1_out']);
      expect(m.getLayer('stage3_block2_se_reduce').outputShape).toEqual([null, 1024 / 16]);
      expect(m.getLayer('stage3_block2_se_expand').getConfig()).toMatchObject({ units: 1024, activation: 'sigmoid', useBias: true });
    });
  });
});

describe('layer builders', () => {
  it('pads stride-2 convolutions symmetrically (torch/Keras), not like TF "same"', () => {
    // One hot pixel at (2, 2) of an 8×8 image, a 3×3 all-ones kernel, stride 2, padding 1.
    // Symmetric padding: output (0,0) sees rows/cols −1..1 (misses it), output (1,1) sees 1..3 (hits it).
    // TF 'same' would pad only bottom/right, so output (0,0) would see rows 0..2 and hit it.
    const input = imageInput(8);
    const model = tf.model({ inputs: input, outputs: conv2d(input, { name: 'probe', filters: 1, kernel: 3, stride: 2, padding: 'same' }) });
    tf.tidy(() => model.getLayer('probe').setWeights([tf.ones([3, 3, 3, 1])]));
    const image = tf.buffer([1, 8, 8, 3]);
    image.set(1, 0, 2, 2, 0);
    const out = tf.tidy(() => model.predict(image.toTensor()) as tf.Tensor);
    expect(out.shape).toEqual([1, 4, 4, 1]);
    const grid = out.arraySync() as number[][][][];
    expect(grid[0][0][0][0]).toBe(0);
    expect(grid[0][1][1][0]).toBe(1);
    out.dispose();
    disposeAll(model);
  });

  it('max-pools with padding 1 like torch (3×3/2 on 16² gives 8²)', () => {
    const input = imageInput(16);
    const model = tf.model({ inputs: input, outputs: maxPool(input, { name: 'p', pool: 3, stride: 2, padding: 1 }) });
    expect(model.outputs[0].shape).toEqual([null, 8, 8, 3]);
    expect(model.layers.map((l) => l.name)).toEqual(['input', 'p_pad', 'p']);
  });
});

describe('FLOP and parameter counting', () => {
  it('counts 2×MACs of conv, depthwise, separable and dense layers', () => {
    const input = imageInput(8);
    let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor; // 8·8·4·9·3
    x = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor; // 8·8·4·9
    x = tf.layers.separableConv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid' }).apply(x) as tf.SymbolicTensor; // 3·3·4·9 + 3·3·4·6
    x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dense({ units: 10 }).apply(x) as tf.SymbolicTensor; // 6·10
    withModel(tf.model({ inputs: input, outputs: x }), (m) => {
      expect(countFlops(m)).toBe(2 * (8 * 8 * 4 * 9 * 3 + 8 * 8 * 4 * 9 + (3 * 3 * 4 * 9 + 3 * 3 * 4 * 6) + 6 * 10));
      // conv 3·3·3·4+4, depthwise 3·3·4+4, separable 3·3·4 + 4·6 + 6, BN γβ 12 (+12 statistics), dense 6·10+10
      const learnable = 112 + 40 + 66 + 12 + 70;
      expect(countParams(m)).toBe(learnable);
      expect(countParams(m, { bnStatistics: true })).toBe(learnable + 12);
    });
  });

  it('counts a head shared with its classifier once, and reproduces ResNet-18 at 224²', () => {
    const backbone = buildResNet({ depth: 18, inputSize: 224 });
    const head = buildHead(512, 1000);
    withModel(attachHead(backbone, head), (classifier) => {
      expect(countFlops(head)).toBe(2 * 512 * 1000);
      expect(countFlops(classifier)).toBe(countFlops(backbone) + countFlops(head));
      // 1.81 G multiply-adds, as published for ResNet-18
      expect(countFlops(classifier) / 2 / 1e9).toBeCloseTo(1.814, 3);
      expect(flopsByLayer(classifier)[0].className).toBe('Conv2D');
    });
  });
});

describe('preprocess', () => {
  const pixel = () => tf.tensor4d([10, 20, 30], [1, 1, 1, 3]);
  const run = (p: Parameters<typeof preprocess>[1]) => {
    const input = pixel();
    const out = preprocess(input, p);
    const values = Array.from(out.dataSync());
    input.dispose();
    out.dispose();
    return values;
  };

  it('caffe: RGB→BGR minus the BGR mean, no scaling', () => {
    const [b, g, r] = run(PREPROCESSING.caffe);
    expect(b).toBeCloseTo(30 - 103.939, 4);
    expect(g).toBeCloseTo(20 - 116.779, 4);
    expect(r).toBeCloseTo(10 - 123.68, 4);
  });

  it('torch: /255 then per-channel mean/std', () => {
    const out = run(PREPROCESSING.torch);
    [10, 20, 30].forEach((v, c) => expect(out[c]).toBeCloseTo((v / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c], 5));
  });

  it('tf: /127.5 − 1', () => {
    expect(run(PREPROCESSING.tf).map((v) => Number(v.toFixed(6)))).toEqual([10, 20, 30].map((v) => Number((v / 127.5 - 1).toFixed(6))));
  });

  it('rejects non-RGB input', () => {
    const gray = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    expect(() => preprocess(gray, PREPROCESSING.tf)).toThrow(/\[batch, H, W, 3\]/);
    gray.dispose();
  });
});
