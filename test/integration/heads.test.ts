import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { attachHead, buildHead, classCount, disposeAll, growHead, splitClassifier } from '../../models/heads';
import { freezeBackbone, lastStages, unfreezeAll } from '../../models/freeze';
import { getBackbone } from '../../models/registry';

const resnet18 = getBackbone('resnet18');
const SIZE = 32;

afterEach(() => {
  expect(tf.memory().numTensors).toBe(0);
});

function snapshot(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync().slice() as Float32Array]));
}

function expectBitIdentical(before: Map<string, Float32Array>, after: Map<string, Float32Array>): void {
  expect([...after.keys()]).toEqual([...before.keys()]);
  for (const [name, values] of before) expect(Buffer.from(after.get(name)!.buffer).equals(Buffer.from(values.buffer)), name).toBe(true);
}

function images(batch = 2, seed = 3): tf.Tensor4D {
  return tf.randomUniform([batch, SIZE, SIZE, 3], -100, 100, 'float32', seed) as tf.Tensor4D;
}

function predict(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

describe('buildHead', () => {
  it('linear: one dense softmax layer named head_*', () => {
    const head = buildHead(512, 7);
    expect(head.layers.map((l) => [l.name, l.getClassName()])).toEqual([['head_classifier', 'Dense']]);
    expect(head.layers[0].getConfig()).toMatchObject({ units: 7, activation: 'softmax' });
    const probs = tf.tidy(() => (head.predict(tf.randomNormal([3, 512])) as tf.Tensor).sum(1).dataSync());
    probs.forEach((p) => expect(p).toBeCloseTo(1, 5));
    head.dispose();
  });

  it('mlp: hidden dense (ReLU) and dropout before the softmax layer', () => {
    const head = buildHead(2048, 4, { kind: 'mlp', hidden: 256, dropout: 0.3 });
    expect(head.layers.map((l) => l.name)).toEqual(['head_hidden', 'head_dropout', 'head_classifier']);
    expect(head.layers[0].getConfig()).toMatchObject({ units: 256, activation: 'relu' });
    expect(head.layers[1].getConfig()).toMatchObject({ rate: 0.3 });
    expect(head.layers[2].getConfig()).toMatchObject({ units: 4, activation: 'softmax' });
    expect(head.countParams()).toBe(2048 * 256 + 256 + 256 * 4 + 4);
    head.dispose();
  });

  it('rejects nonsense configurations', () => {
    expect(() => buildHead(512, 1)).toThrow(/at least 2 classes/);
    expect(() => buildHead(512, 3, { kind: 'mlp', hidden: 0, dropout: 0.1 })).toThrow(/hidden/);
    expect(() => buildHead(512, 3, { kind: 'mlp', hidden: 8, dropout: 1 })).toThrow(/dropout/);
  });
});

describe('classifier = backbone + head', () => {
  it('is one flat model whose features feed the head', () => {
    const backbone = resnet18.build({ inputSize: SIZE });
    const head = buildHead(resnet18.featureDim, 5);
    const classifier = attachHead(backbone, head);
    expect(classifier.layers.some((l) => l instanceof tf.LayersModel)).toBe(false);
    expect(classifier.layers.at(-1)!.name).toBe('head_classifier');
    expect(classCount(classifier)).toBe(5);
    const mismatched = buildHead(100, 5);
    expect(() => attachHead(backbone, mismatched)).toThrow(/expects 100 features but backbone .* gives 512/);
    mismatched.dispose();

    const x = images();
    const viaParts = tf.tidy(() => (head.predict(backbone.predict(x) as tf.Tensor) as tf.Tensor).dataSync());
    expect(Array.from(predict(classifier, x))).toEqual(Array.from(viaParts));
    x.dispose();
    disposeAll(classifier);
  });

  it('a grown head keeps the backbone and each surviving class, and adds fresh classes', () => {
    const backbone = resnet18.build({ inputSize: SIZE });
    const head = buildHead(resnet18.featureDim, 3, { kind: 'mlp', hidden: 32, dropout: 0.2 }, 1);
    const classifier = attachHead(backbone, head);
    const before = snapshot(backbone);
    const x = images();
    const featuresBefore = predict(backbone, x);

    const grown = growHead(head, ['a', 'b', 'c'], ['c', 'a', 'd', 'e'], { kind: 'mlp', hidden: 32, dropout: 0.2 }, 2);
    expect(classCount(grown)).toBe(4);
    const next = attachHead(backbone, grown);
    const probs = tf.tidy(() => next.predict(x) as tf.Tensor);
    expect(probs.shape).toEqual([2, 4]);
    probs.dispose();
    // hidden layer copied; classifier columns of c and a moved to 0 and 1; d and e fresh
    const [oldHidden, oldOut] = head.layers.filter((l) => l.getWeights().length > 0);
    const [newHidden, newOut] = grown.layers.filter((l) => l.getWeights().length > 0);
    expect(newHidden.getWeights()[0].arraySync()).toEqual(oldHidden.getWeights()[0].arraySync());
    const ok = oldOut.getWeights()[0].arraySync() as number[][];
    const nk = newOut.getWeights()[0].arraySync() as number[][];
    expect(nk.map((row) => row[0])).toEqual(ok.map((row) => row[2]));
    expect(nk.map((row) => row[1])).toEqual(ok.map((row) => row[0]));
    expect(nk.map((row) => row[2])).not.toEqual(ok.map((row) => row[1]));
    expect((newOut.getWeights()[1].arraySync() as number[]).slice(0, 2)).toEqual([2, 0].map((c) => (oldOut.getWeights()[1].arraySync() as number[])[c]));

    const { backbone: inner } = splitClassifier(next);
    expectBitIdentical(before, snapshot(inner));
    expect(Array.from(predict(inner, x))).toEqual(Array.from(featuresBefore));
    expect(() => growHead(head, ['a', 'b', 'c'], ['a', 'b'], { kind: 'linear' })).toThrow(/head kind differs/);
    x.dispose();
    disposeAll(classifier);
    disposeAll(grown);
  });

  it('round-trips through plain tfjs save / loadLayersModel with identical outputs', async () => {
    const classifier = attachHead(resnet18.build({ inputSize: SIZE }), buildHead(resnet18.featureDim, 4, { kind: 'mlp', hidden: 16, dropout: 0.5 }));
    let artifacts: tf.io.ModelArtifacts | undefined;
    await classifier.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers.map((l) => l.name)).toEqual(classifier.layers.map((l) => l.name));

    const x = images();
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(classifier, x)));

    // the loaded classifier splits back into backbone and head
    const { backbone, head } = splitClassifier(loaded);
    expect(backbone.outputs[0].shape).toEqual([null, 512]);
    expect(head.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name)).toEqual(['head_hidden', 'head_dropout', 'head_classifier']);
    expect(Array.from(predict(backbone, x))).toEqual(Array.from(predict(splitClassifier(classifier).backbone, x)));
    x.dispose();
    disposeAll(loaded);
    disposeAll(classifier);
  });
});

describe('freezeBackbone', () => {
  const isStatistic = (name: string) => /moving_(mean|variance)$/.test(name);
  const learnableOf = (model: tf.LayersModel, prefixes: string[]) =>
    model.weights.map((w) => w.originalName).filter((n) => !isStatistic(n) && prefixes.some((p) => n.startsWith(p))).sort();
  const trainable = (model: tf.LayersModel) => model.trainableWeights.map((w) => w.originalName).sort();

  it('leaves exactly the chosen stages (and the head) trainable', () => {
    const classifier = attachHead(resnet18.build({ inputSize: SIZE }), buildHead(resnet18.featureDim, 3));

    freezeBackbone(classifier, resnet18, { trainableStages: ['stage4'] });
    expect(trainable(classifier)).toEqual(learnableOf(classifier, ['stage4_', 'head_']));
    expect(trainable(classifier).length).toBeGreaterThan(2);

    freezeBackbone(classifier, resnet18, { trainableStages: lastStages(resnet18, 2) });
    expect(trainable(classifier)).toEqual(learnableOf(classifier, ['stage3_', 'stage4_', 'head_']));

    freezeBackbone(classifier, resnet18);
    expect(trainable(classifier)).toEqual(['head_classifier/bias', 'head_classifier/kernel']);

    freezeBackbone(classifier, resnet18, { trainableStages: ['stem'] });
    expect(trainable(classifier)).toEqual(['head_classifier/bias', 'head_classifier/kernel', 'stem_bn/beta', 'stem_bn/gamma', 'stem_conv/kernel']);

    unfreezeAll(classifier);
    expect(trainable(classifier)).toEqual(learnableOf(classifier, ['']));
    disposeAll(classifier);
  });

  it('a training step changes only the unfrozen weights; frozen BatchNorm keeps its statistics', async () => {
    const classifier = attachHead(resnet18.build({ inputSize: SIZE }), buildHead(resnet18.featureDim, 3));
    freezeBackbone(classifier, resnet18, { trainableStages: ['stage4'] });
    classifier.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    const before = snapshot(classifier);
    const x = images(4);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3));
    await classifier.trainOnBatch(x, y);
    const after = snapshot(classifier);
    for (const [name, values] of before) {
      const changed = !Buffer.from(after.get(name)!.buffer).equals(Buffer.from(values.buffer));
      expect(changed, name).toBe(name.startsWith('stage4_') || name.startsWith('head_'));
    }
    x.dispose();
    y.dispose();
    classifier.optimizer.dispose();
    disposeAll(classifier);
  });

  it('rejects unknown stage names, listing the valid ones', () => {
    const backbone = resnet18.build({ inputSize: SIZE });
    expect(() => freezeBackbone(backbone, resnet18, { trainableStages: ['stage5', 'stage4'] })).toThrow(
      'resnet18 has no stage "stage5"; valid stages are stem, stage1, stage2, stage3, stage4',
    );
    expect(() => lastStages(resnet18, 6)).toThrow(/5 stages/);
    disposeAll(backbone);
  });
});
