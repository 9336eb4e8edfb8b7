import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { backboneIds, getBackbone, listBackbones } from '../../models/registry';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { countFlops, countParams } from '../../models/flops';
import { stageOf } from '../../models/freeze';

const PUBLISHED_PARAMS: Record<string, number> = {
  resnet18: 11_689_512,
  resnet34: 21_797_672,
  resnet50: 25_557_032,
  resnet101: 44_549_160,
  resnet152: 60_192_808,
  seresnet50: 28_088_024,
  xception: 22_910_480,
  vgg16: 138_357_544,
  googlenet: 6_624_904,
  inceptionv4: 42_679_816, // timm inception_v4
};

const EXPECTED_IDS = [
  'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
  'seresnet18', 'seresnet34', 'seresnet50', 'seresnet101', 'seresnet152',
  'xception', 'googlenet', 'vgg16', 'inceptionv4', 'seinceptionv4',
];

function withClassifier<T>(info: ReturnType<typeof getBackbone>, inputSize: number, fn: (classifier: tf.LayersModel) => T): T {
  const classifier = attachHead(info.build({ inputSize }), buildHead(info.featureDim, 1000));
  try {
    return fn(classifier);
  } finally {
    disposeAll(classifier);
  }
}

function publishedCount(id: string, model: tf.LayersModel): number {
  return countParams(model, { bnStatistics: getBackbone(id).paramConvention === 'keras' });
}

describe('registry metadata', () => {
  it('lists exactly the supported backbones, each with complete metadata', () => {
    expect(backboneIds()).toEqual(EXPECTED_IDS);
    for (const info of listBackbones()) {
      expect(info.name.length).toBeGreaterThan(0);
      expect(info.description.length).toBeGreaterThan(20);
      expect(info.description).not.toContain('\n');
      expect(info.minInputSize).toBeLessThanOrEqual(info.inputSize);
      expect(info.flops).toBeGreaterThan(1e9);
      expect(info.stages.length).toBeGreaterThan(1);
      expect(getBackbone(info.id)).toBe(info);
    }
  });

  it('stores the published parameter counts', () => {
    for (const [id, params] of Object.entries(PUBLISHED_PARAMS)) expect(getBackbone(id).params, id).toBe(params);
  });

  it('assigns preprocessing, feature width and weights per family', () => {
    const mode = (id: string) => getBackbone(id).preprocessing.mode;
    for (const id of EXPECTED_IDS.filter((i) => i.includes('resnet'))) expect(mode(id), id).toBe('caffe');
    expect(mode('xception')).toBe('tf');
    expect(mode('googlenet')).toBe('torch');
    expect(mode('vgg16')).toBe('torch');
    expect(mode('inceptionv4')).toBe('tf');
    expect(mode('seinceptionv4')).toBe('tf');
    expect(getBackbone('resnet34').featureDim).toBe(512);
    expect(getBackbone('seresnet101').featureDim).toBe(2048);
    expect(getBackbone('googlenet').featureDim).toBe(1024);
    expect(getBackbone('vgg16').featureDim).toBe(4096);
    expect(listBackbones().filter((b) => b.weights.length > 0).map((b) => [b.id, b.weights])).toEqual([['resnet50', ['imagenet']]]);
  });

  it('rejects an unknown id, naming it and the valid ids', () => {
    expect(() => getBackbone('resnet99')).toThrow(/unknown backbone "resnet99".*resnet18.*vgg16/);
  });

  it('rejects inputs below the minimum size, naming the model, the size and the minimum', () => {
    expect(() => getBackbone('resnet18').build({ inputSize: 16 })).toThrow(/ResNet-18.*at least 32×32.*got 16/);
    expect(() => getBackbone('xception').build({ inputSize: 64 })).toThrow(/Xception.*at least 71×71.*got 64/);
    expect(() => getBackbone('resnet50').build({ inputSize: 64.5 })).toThrow(/got 64\.5/);
  });
});

describe.each(listBackbones().map((info) => [info.id, info] as const))('%s', (id, info) => {
  it('has the stored parameter count at 224² and the stored FLOPs at its default size', () => {
    withClassifier(info, 224, (classifier) => {
      expect(publishedCount(id, classifier)).toBe(info.params);
      if (info.inputSize === 224) expect(countFlops(classifier)).toBe(info.flops);
    });
    if (info.inputSize !== 224) withClassifier(info, info.inputSize, (classifier) => expect(countFlops(classifier)).toBe(info.flops));
    expect(tf.memory().numTensors).toBe(0);
  });

  it('maps images to [batch, featureDim] at two input sizes, every weighted layer in a stage', () => {
    for (const size of [info.minInputSize, info.minInputSize + 32]) {
      const backbone = info.build({ inputSize: size });
      try {
        const weighted = backbone.layers.filter((l) => l.weights.length > 0);
        const stagesSeen = new Set(weighted.map((l) => stageOf(l.name, info.stages)));
        expect(stagesSeen.has(undefined), `a weighted layer of ${id} has no stage`).toBe(false);
        expect([...stagesSeen].sort()).toEqual([...info.stages].sort());

        const features = tf.tidy(() => backbone.predict(tf.randomUniform([2, size, size, 3], -1, 1, 'float32', 7)) as tf.Tensor);
        expect(features.shape).toEqual([2, info.featureDim]);
        const values = features.dataSync();
        features.dispose();
        expect(values.every(Number.isFinite)).toBe(true);
        expect(values.some((v) => v !== 0)).toBe(true);
      } finally {
        disposeAll(backbone);
      }
    }
    expect(tf.memory().numTensors).toBe(0);
  });
});
