// Our ResNet-50 with the folded Keras ImageNet weights must compute what the reference Keras
// ResNet50 (loaded from the package's own model.json) computes, on real photos.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyImagenet, imagenetClassifier } from '../../main/engine/classify-imagenet';
import { decodeImage } from '../../main/engine/image-decode';
import { attachHead, buildHead } from '../../models/heads';
import { imagenetLabels, imagenetResNet50Dir, loadImagenetResNet50, type ImagenetResNet50 } from '../../models/imagenet';
import { preprocess } from '../../models/preprocess';
import { tfjsFolderHandler } from '../../models/tfjs-folder';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const BIRDS = ['pelican', 'ostrich', 'peacock', 'pink_flamingo', 'tucan', 'owl'].map((n) => path.join(PHOTOS, 'birds', `${n}.png`));
const OTHERS = [
  'fruit/banana.png',
  'fruit/pineapple.png',
  'flowers/daffodil.png',
  'vegetables/tomato.png',
  'mammals/cats/tiger.png',
  'mammals/bears/bear.png',
].map((p) => path.join(PHOTOS, p));
const IMAGES = [...BIRDS, ...OTHERS];

/** ImageNet class indices of birds. */
const isBird = (i: number) => (i >= 7 && i <= 24) || (i >= 80 && i <= 100) || (i >= 127 && i <= 146);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function predictInBatches(model: tf.LayersModel, x: tf.Tensor4D, batch = 4): Promise<Float32Array> {
  const out: Float32Array[] = [];
  for (let i = 0; i < x.shape[0]; i += batch) {
    const y = tf.tidy(() => model.predict(x.slice(i, Math.min(batch, x.shape[0] - i))) as tf.Tensor);
    out.push((await y.data()) as Float32Array);
    y.dispose();
  }
  return Float32Array.from(out.flatMap((a) => [...a]));
}

describe('ImageNet weights for our ResNet-50', () => {
  let ours: ImagenetResNet50;
  let input: tf.Tensor4D;
  let ourProbs: Float32Array;

  beforeAll(async () => {
    ours = await loadImagenetResNet50();
    const pixels = await Promise.all(IMAGES.map((f) => decodeImage(f, 224)));
    const raw = tf.tensor4d(Float32Array.from(pixels.flatMap((p) => [...p])), [IMAGES.length, 224, 224, 3]);
    input = preprocess(raw, ours.info.preprocessing);
    raw.dispose();
  });

  afterAll(() => {
    input?.dispose();
    ours?.classifier.dispose();
  });

  it('maps every layer of the Keras model onto ours', () => {
    expect(ours.report.matched).toBe(53 + 53 + 1);
    expect(ours.report.byMap).toBe(107);
    expect(ours.report.skipped).toEqual([]);
    expect(ours.labels).toHaveLength(1000);
    expect(ours.labels[144]).toBe('pelican');
  });

  it('reproduces the reference Keras ResNet50 probabilities (max abs diff ≤ 1e-3)', async () => {
    const start = performance.now();
    ourProbs = await predictInBatches(ours.classifier, input);
    const perImage = (performance.now() - start) / IMAGES.length;

    const reference = await tf.loadLayersModel(tfjsFolderHandler(imagenetResNet50Dir()));
    const refProbs = await predictInBatches(reference, input);
    reference.dispose();

    const diff = maxAbsDiff(ourProbs, refProbs);
    console.log(`ResNet-50 ImageNet: max |p_ours − p_ref| = ${diff.toExponential(2)} over ${IMAGES.length} photos; ${perImage.toFixed(0)} ms/image`);
    expect(ourProbs).toHaveLength(IMAGES.length * 1000);
    expect(diff).toBeLessThanOrEqual(1e-3);
  });

  it('puts bird classes in the top 5 for bird photos', async () => {
    expect(ourProbs).toBeDefined();
    const labels = await imagenetLabels();
    BIRDS.forEach((file, n) => {
      const row = ourProbs.subarray(n * 1000, (n + 1) * 1000);
      const top5 = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, 5);
      expect(top5.some(isBird), `${path.basename(file)}: ${top5.map((i) => labels[i]).join(', ')}`).toBe(true);
    });
    const pelican = ourProbs.subarray(0, 1000);
    expect(pelican.indexOf(Math.max(...pelican))).toBe(144);
  });

  it('classifyImagenet reports labels per file and an error entry for a bad file', async () => {
    const missing = path.join(PHOTOS, 'birds', 'no-such-bird.png');
    const seen: string[] = [];
    const classifier = await imagenetClassifier(ours);
    const results = await classifyImagenet([BIRDS[0], missing], { topK: 3, classifier, onResult: (r) => seen.push(r.file) }).finally(() => classifier.forward.dispose());
    expect(seen).toEqual([BIRDS[0], missing]);
    expect(results[0].top.map((t) => t.label)[0]).toBe('pelican');
    expect(results[0].top).toHaveLength(3);
    expect(results[1]).toMatchObject({ file: missing, top: [] });
    expect(results[1].error).toContain('no-such-bird.png');
  });
});

describe('fine-tuning the ImageNet ResNet-50', () => {
  it('trains only the head when the backbone is frozen, and the backbone too when not', async () => {
    const { backbone, info } = await loadImagenetResNet50({ inputSize: 64 });
    const classifier = attachHead(backbone, buildHead(info.featureDim, 2));
    const files = [BIRDS[0], OTHERS[0]];
    const pixels = await Promise.all(files.map((f) => decodeImage(f, 64)));
    const x = tf.tidy(() => preprocess(tf.tensor4d(Float32Array.from(pixels.flatMap((p) => [...p])), [2, 64, 64, 3]), info.preprocessing));
    const y = tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2);
    const snapshot = (layer: string) => classifier.getLayer(layer).getWeights()[0].dataSync().slice();

    for (const layer of backbone.layers) layer.trainable = false;
    classifier.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
    const convBefore = snapshot('stage4_block3_conv3');
    const stemBefore = snapshot('stem_conv');
    const gammaBefore = snapshot('stage4_block3_bn3');
    const headBefore = snapshot('head_classifier');
    await classifier.trainOnBatch(x, y);
    expect(maxAbsDiff(snapshot('stage4_block3_conv3'), convBefore)).toBe(0);
    // Trainable weights only: TF.js BatchNormalization ignores `trainable` and still updates its
    // moving mean/variance whenever it runs with training=true (tfjs-layers 4.22 normalization.js).
    expect(maxAbsDiff(snapshot('stage4_block3_bn3'), gammaBefore)).toBe(0);
    expect(maxAbsDiff(snapshot('head_classifier'), headBefore)).toBeGreaterThan(0);

    for (const layer of backbone.layers) layer.trainable = true;
    classifier.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
    const loss = (await classifier.trainOnBatch(x, y)) as number;
    expect(Number.isFinite(loss)).toBe(true);
    expect(maxAbsDiff(snapshot('stage4_block3_conv3'), convBefore)).toBeGreaterThan(0);
    expect(maxAbsDiff(snapshot('stem_conv'), stemBefore)).toBeGreaterThan(0);

    tf.dispose([x, y]);
    classifier.dispose();
  });
});
