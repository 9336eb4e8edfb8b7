// Inception-v4 trains in fine-tune mode with both engines: the trainable top (stage3 = Reduction-B +
// 3 × Inception-C, and the head) after the frozen trunk, on real photos. TF.js: SGD steps lower the
// loss and change only the top's weights. onnxruntime: the training graph's loss and every gradient
// equal TF.js autodiff's with exact average-pool gradients (the pools leave the padding out, as TF's do).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../main/engine/image-decode';
import { trainStep } from '../../main/engine/training/step';
import { freezeBackbone, lastStages } from '../../models/freeze';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { splitAtStages } from '../../models/trunk';
import { compareStep, seeded } from './onnx-train-check';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const CLASSES = ['birds', 'flowers', 'fruit', 'mammals'];
// stage3 then runs on 5×5 → 2×2 maps, where every 3×3 average pool's window overhangs the border.
const SIZE = 107;
const TOL = 1e-4;

let classifier: tf.LayersModel;
let trunk: tf.LayersModel;
let top: tf.LayersModel;
let boundary: tf.Tensor;
const labels = CLASSES.map((_, i) => i);

beforeAll(async () => {
  const info = getBackbone('inceptionv4');
  classifier = attachHead(info.build({ inputSize: SIZE, seed: 3 }), buildHead(info.featureDim, CLASSES.length, { kind: 'linear' }, 3));
  // Non-trivial frozen BN (a fresh one is the identity), γ small enough that the logits do not saturate.
  const r = seeded(5);
  for (const layer of classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    layer.setWeights(
      layer.weights.map((w) => {
        const short = w.originalName.split('/').pop();
        const n = w.shape[0] as number;
        return tf.tensor1d(Float32Array.from({ length: n }, () => (short === 'moving_variance' ? 0.5 + r() : short === 'gamma' ? 0.3 * (1 + r()) : (r() - 0.5) * 0.4)));
      }),
    );
  }
  const stages = lastStages(info, 1);
  expect(stages).toEqual(['stage3']);
  freezeBackbone(classifier, info, { trainableStages: stages });
  classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
  ({ trunk, top } = splitAtStages(classifier, info, stages));
  const files = await Promise.all(CLASSES.map(async (c) => path.join(PHOTOS, c, (await readdir(path.join(PHOTOS, c), { recursive: true })).filter((f) => f.endsWith('.png')).sort()[0])));
  const pixels = await Promise.all(files.map((f) => decodeImage(f, SIZE)));
  const flat = new Float32Array(files.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  boundary = tf.tidy(() => trunk.predict(preprocess(tf.tensor4d(flat, [files.length, SIZE, SIZE, 3]), info.preprocessing)) as tf.Tensor);
}, 120_000);

afterAll(() => {
  boundary?.dispose();
  if (classifier) disposeAll(classifier);
});

describe('Inception-v4 fine-tune top', () => {
  it('TF.js: SGD steps lower the loss and change only stage3 and the head', async () => {
    expect(boundary.shape).toEqual([CLASSES.length, 5, 5, 1024]);
    const trunkBefore = trunk.getWeights().map((w) => w.dataSync().slice());
    const variables = top.trainableWeights.map((w) => w.read() as tf.Variable);
    expect(variables.length).toBeGreaterThan(0);
    const topBefore = top.trainableWeights.map((w) => w.read().dataSync().slice());
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES.length).toFloat() as tf.Tensor2D;
    const weights = tf.ones([CLASSES.length]) as tf.Tensor1D;
    const optimizer = tf.train.sgd(0.05);
    const losses: number[] = [];
    for (let step = 0; step < 4; step++) {
      const { loss } = await trainStep(optimizer, variables, (xs) => top.apply(xs, { training: true }) as tf.Tensor2D, boundary as tf.Tensor4D, y, weights, Infinity);
      losses.push(loss);
    }
    console.log(`[inceptionv4] fine-tune top losses: ${losses.map((l) => l.toFixed(4)).join(' → ')}`);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]);
    const changed = top.trainableWeights.filter((w, i) => w.read().dataSync().some((v, j) => v !== topBefore[i][j]));
    expect(changed.length).toBe(top.trainableWeights.length);
    expect(trunk.getWeights().every((w, i) => w.dataSync().every((v, j) => v === trunkBefore[i][j]))).toBe(true);
    tf.dispose([y, weights]);
    optimizer.dispose();
  }, 120_000);

  it('onnxruntime training graph: loss and every gradient as TF.js within 1e-4', async () => {
    // Every 3×3 average pool's window overhangs the border here: TF.js' stock AvgPoolGrad would divide by
    // 9 there; Refit's wasm kernel (main/engine/wasm-grad-kernels) divides as the forward pass does.
    const c = await compareStep(top, { batch: CLASSES.length, classes: CLASSES.length, x: Float32Array.from(boundary.dataSync()), labels });
    const worst = c.grads.reduce((a, g) => (g.rel > a.rel ? g : a));
    console.log(`[inceptionv4] ONNX fine-tune top: loss ${c.loss[0].toFixed(6)} vs ${c.loss[1].toFixed(6)} (TF.js); ${c.grads.length} gradients, worst ${worst.name} ${worst.rel.toExponential(2)}`);
    for (const g of c.grads) if (g.rel > TOL) console.log(`  ${g.name}: rel ${g.rel.toExponential(2)}`);
    expect(c.grads.length).toBe(top.trainableWeights.length);
    for (const g of c.grads) {
      expect(g.scale, `${g.name}: TF.js gradient is zero`).toBeGreaterThan(0);
      expect(g.rel, `gradient of ${g.name}`).toBeLessThan(TOL);
    }
    expect(Math.abs(c.loss[0] - c.loss[1]) / c.loss[1]).toBeLessThan(TOL);
  }, 120_000);
});
