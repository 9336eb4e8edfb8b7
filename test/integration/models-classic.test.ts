// Xception, GoogLeNet, VGG-16 and Inception-v4 backbones: published parameter counts, structure, forward passes at
// small sizes, the torch-equivalent pooling emulations, and plain-tfjs save/load.
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildGoogLeNet } from '../../models/googlenet';
import { buildInceptionV4 } from '../../models/inception-v4';
import { getBackboneSpec } from '../../models/catalog';
import { getBackbone } from '../../models/registry';
import { adaptiveAvgPoolToChw, buildVgg16 } from '../../models/vgg';
import { buildXception } from '../../models/xception';

const XCEPTION = getBackboneSpec('xception');
const GOOGLENET = getBackboneSpec('googlenet');
const VGG16 = getBackboneSpec('vgg16');
const INCEPTION_V4 = getBackboneSpec('inceptionv4');

interface Case {
  id: string;
  build: (o: { inputSize: number }) => tf.LayersModel;
  featureDim: number;
  minInput: number;
  stages: readonly string[];
  /** Model name the size error must mention. */
  label: RegExp;
  /** Two forward sizes, kept small: VGG-16 alone is 30 GFLOPs per image at 224². */
  forwardSizes: [number, number];
  /**
   * Published count with a 1000-class dense head. Keras (Xception) counts every weight, BN moving
   * statistics included; torchvision (GoogLeNet, VGG) counts parameters only, not BN running stats.
   */
  params: { count: number; convention: 'all weights' | 'trainable' };
}

const CASES: Case[] = [
  {
    id: 'xception',
    build: buildXception,
    featureDim: XCEPTION.featureDim,
    minInput: XCEPTION.minInputSize,
    stages: XCEPTION.stages,
    label: /Xception/,
    forwardSizes: [XCEPTION.minInputSize, 96],
    params: { count: 22_910_480, convention: 'all weights' },
  },
  {
    id: 'googlenet',
    build: buildGoogLeNet,
    featureDim: GOOGLENET.featureDim,
    minInput: GOOGLENET.minInputSize,
    stages: GOOGLENET.stages,
    label: /GoogLeNet/,
    forwardSizes: [GOOGLENET.minInputSize, 64],
    params: { count: 6_624_904, convention: 'trainable' },
  },
  {
    id: 'vgg16',
    build: buildVgg16,
    featureDim: VGG16.featureDim,
    minInput: VGG16.minInputSize,
    stages: VGG16.stages,
    label: /VGG-16/,
    forwardSizes: [VGG16.minInputSize, 64],
    params: { count: 138_357_544, convention: 'trainable' },
  },
  {
    id: 'inceptionv4',
    build: buildInceptionV4,
    featureDim: INCEPTION_V4.featureDim,
    minInput: INCEPTION_V4.minInputSize,
    stages: INCEPTION_V4.stages,
    label: /Inception-v4/,
    forwardSizes: [INCEPTION_V4.minInputSize, 107],
    params: { count: 42_679_816, convention: 'trainable' }, // timm inception_v4
  },
];

const size = (w: tf.LayerVariable): number => w.shape.reduce<number>((a, d) => a * (d as number), 1);

/** Parameters of backbone + a plain 1000-class dense head, counted the way `convention` says. */
function countWithHead(backbone: tf.LayersModel, convention: Case['params']['convention']): number {
  const head = tf.layers.dense({ units: 1000, name: 'head_fc' });
  const full = tf.model({ inputs: backbone.inputs, outputs: head.apply(backbone.outputs[0]) as tf.SymbolicTensor });
  const count = convention === 'all weights' ? full.countParams() : full.trainableWeights.reduce<number>((a, w) => a + size(w), 0);
  head.dispose(); // the backbone's layers are disposed with the backbone
  return count;
}

async function predictArray(model: tf.LayersModel, input: tf.Tensor): Promise<Float32Array> {
  const out = model.predict(input) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  out.dispose();
  return values;
}

function randomImages(batch: number, side: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([batch, side, side, 3], -1, 1, 'float32', seed);
}

describe.each(CASES)('$id', (c) => {
  let tensorsBefore = 0;
  beforeEach(() => {
    tensorsBefore = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors, 'tensors leaked').toBe(tensorsBefore);
  });

  it('has the published parameter count with a 1000-class head at 224² (and 299² for Xception), and stage-named layers', () => {
    for (const inputSize of c.id === 'xception' ? [224, 299] : [224]) {
      const model = c.build({ inputSize });
      expect(model.outputs[0].shape).toEqual([null, c.featureDim]);
      expect(countWithHead(model, c.params.convention)).toBe(c.params.count);

      const unstaged = model.layers
        .map((l) => l.name)
        .filter((name) => name !== 'features_pool' && !c.stages.some((stage) => name.startsWith(`${stage}_`)));
      expect(unstaged).toEqual([]);
      for (const stage of c.stages) {
        expect(model.layers.some((l) => l.name.startsWith(`${stage}_`) && l.countParams() > 0), `${stage} owns weights`).toBe(true);
      }
      model.dispose();
    }
  });

  it('gives finite [batch, featureDim] features at two input sizes', async () => {
    for (const [i, side] of c.forwardSizes.entries()) {
      const model = c.build({ inputSize: side });
      const x = randomImages(2, side, i);
      const out = model.predict(x) as tf.Tensor;
      expect(out.shape).toEqual([2, c.featureDim]);
      const values = await out.data();
      expect(values.every(Number.isFinite)).toBe(true);
      // Not collapsed to a constant: the two images give different features.
      expect(values.slice(0, c.featureDim)).not.toEqual(values.slice(c.featureDim));
      tf.dispose([x, out]);
      model.dispose();
    }
  });

  it('rejects an input below the minimum with an error naming the model, the size and the minimum', () => {
    const tooSmall = c.minInput - 1;
    const info = getBackbone(c.id);
    expect(() => info.build({ inputSize: tooSmall })).toThrow(c.label);
    expect(() => info.build({ inputSize: tooSmall })).toThrow(new RegExp(`at least ${c.minInput}×${c.minInput}.*got ${tooSmall}×${tooSmall}`));
  });

  it('saves and loads with plain tfjs and gives identical outputs', async () => {
    // VGG-16 at its minimum ends its convs at 1×1, so the fixed adaptive-pool maps are saved and loaded too.
    const side = c.minInput;
    const model = c.build({ inputSize: side });
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    expect(loaded.trainableWeights.length).toBe(model.trainableWeights.length);

    const x = randomImages(2, side, 7);
    expect(await predictArray(loaded, x)).toEqual(await predictArray(model, x));
    x.dispose();
    loaded.dispose();
    model.dispose();
  });
});

describe('Xception structure', () => {
  it('has 2 regular + 34 separable convolutions, plus four 1×1/2 shortcut convolutions', () => {
    const model = buildXception({ inputSize: XCEPTION.minInputSize });
    const byClass = (cls: string) => model.layers.filter((l) => l.getClassName() === cls);
    const regular = byClass('Conv2D');
    expect(regular.filter((l) => !l.name.endsWith('_shortcut')).map((l) => l.name)).toEqual(['entry_block1_conv1', 'entry_block1_conv2']);
    expect(regular.filter((l) => l.name.endsWith('_shortcut')).map((l) => l.name)).toEqual([
      'entry_block2_shortcut',
      'entry_block3_shortcut',
      'entry_block4_shortcut',
      'exit_block13_shortcut',
    ]);
    const separable = byClass('SeparableConv2D');
    expect(separable).toHaveLength(34);
    expect(separable.filter((l) => l.name.startsWith('middle_'))).toHaveLength(24);
    expect(separable.at(-1)!.name).toBe('exit_block14_sepconv2');
    expect(model.getLayer('middle_block5_sepconv3_bn').getClassName()).toBe('BatchNormalization');
    model.dispose();
  });
});

describe('GoogLeNet structure', () => {
  it('has 9 inception modules, 3a–5b', () => {
    const model = buildGoogLeNet({ inputSize: GOOGLENET.minInputSize });
    const modules = model.layers.filter((l) => l.getClassName() === 'Concatenate').map((l) => l.name.replace(/_concat$/, ''));
    expect(modules).toEqual(
      ['stage3_inception3a', 'stage3_inception3b']
        .concat(['a', 'b', 'c', 'd', 'e'].map((m) => `stage4_inception4${m}`))
        .concat(['stage5_inception5a', 'stage5_inception5b']),
    );
    // torchvision's third branch is 3×3, not 5×5.
    expect((model.getLayer('stage3_inception3a_branch3_conv2') as unknown as { kernelSize: number[] }).kernelSize).toEqual([3, 3]);
    model.dispose();
  });

  /** torch MaxPool2d(k, s, ceil_mode=True) computed directly on a [h, w, c] array. */
  function torchCeilMaxPool(x: number[][][], k: number, s: number): number[][][] {
    const out = (n: number) => Math.ceil((n - k) / s) + 1;
    const [h, w, ch] = [x.length, x[0].length, x[0][0].length];
    return Array.from({ length: out(h) }, (_, i) =>
      Array.from({ length: out(w) }, (_, j) =>
        Array.from({ length: ch }, (_, c) => {
          let m = -Infinity;
          for (let r = i * s; r < Math.min(i * s + k, h); r++) for (let q = j * s; q < Math.min(j * s + k, w); q++) m = Math.max(m, x[r][q][c]);
          return m;
        }),
      ),
    );
  }

  it('emulates ceil-mode max-pooling exactly, including windows that overhang the edge', async () => {
    // At 59: conv1 → 30 → pool 15 → 7 → 3 → 2. TF's 'same' would give 8 after the second pool, and
    // the first and last pools need one row/column of overhang.
    const model = buildGoogLeNet({ inputSize: 59 });
    const sides = ['stem_pool1', 'stage3_pool', 'stage4_pool', 'stage5_pool'].map((n) => model.getLayer(n).outputShape[1]);
    expect(sides).toEqual([15, 7, 3, 2]);
    expect(model.getLayer('stem_conv1').outputShape[1]).toBe(30);

    const pools = [
      { input: 'stem_conv1_relu', output: 'stem_pool1', k: 3, s: 2 },
      { input: 'stage4_inception4e_concat', output: 'stage5_pool', k: 2, s: 2 },
    ];
    const probe = tf.model({
      inputs: model.inputs,
      outputs: pools.flatMap((p) => [model.getLayer(p.input).output as tf.SymbolicTensor, model.getLayer(p.output).output as tf.SymbolicTensor]),
    });
    const x = randomImages(1, 59, 3);
    const outs = probe.predict(x) as tf.Tensor[];
    for (const [i, p] of pools.entries()) {
      const before = ((await outs[2 * i].array()) as number[][][][])[0];
      const after = ((await outs[2 * i + 1].array()) as number[][][][])[0];
      expect(after).toEqual(torchCeilMaxPool(before, p.k, p.s));
    }
    tf.dispose([x, ...outs]);
    model.dispose();
  });
});

describe('VGG-16 adaptive average pool', () => {
  /** torch AdaptiveAvgPool2d((7, 7)) computed directly from its bin rule, on [h, w, c], returned as [c, 7, 7]. */
  function torchAdaptiveAvgPool(x: number[][][], out = 7): number[][][] {
    const n = x.length;
    const bin = (i: number) => [Math.floor((i * n) / out), Math.ceil(((i + 1) * n) / out)];
    return Array.from({ length: x[0][0].length }, (_, c) =>
      Array.from({ length: out }, (_, i) =>
        Array.from({ length: out }, (_, j) => {
          const [r0, r1] = bin(i);
          const [q0, q1] = bin(j);
          let sum = 0;
          for (let r = r0; r < r1; r++) for (let q = q0; q < q1; q++) sum += x[r][q][c];
          return sum / ((r1 - r0) * (q1 - q0));
        }),
      ),
    );
  }

  it.each([10, 1, 7, 16])('matches torch AdaptiveAvgPool2d(7) from %i×%i', async (side) => {
    const input = tf.input({ shape: [side, side, 4] });
    const pooled = tf.model({ inputs: input, outputs: adaptiveAvgPoolToChw(input, 'fc') });
    // At 7×7 it is only the NCHW layout change; elsewhere two frozen maps (width, height).
    expect(pooled.layers.map((l) => l.name).slice(1)).toEqual(
      side === 7 ? ['fc_to_chw'] : ['fc_to_chw', 'fc_avgpool_w', 'fc_avgpool_swap_hw', 'fc_avgpool_h', 'fc_avgpool_to_hw'],
    );
    expect(pooled.countParams()).toBe(side === 7 ? 0 : 2 * side * 7);
    expect(pooled.trainableWeights).toHaveLength(0);

    const x = tf.randomNormal([1, side, side, 4], 0, 1, 'float32', side) as tf.Tensor4D;
    const y = pooled.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 4, 7, 7]);
    const expected = torchAdaptiveAvgPool(((await x.array()) as number[][][][])[0]).flat(2);
    const actual = Array.from(await y.data());
    expect(actual.length).toBe(expected.length);
    for (const [i, v] of actual.entries()) expect(v).toBeCloseTo(expected[i], 5);
    tf.dispose([x, y]);
    pooled.dispose();
  });
});
