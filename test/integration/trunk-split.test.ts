// Fine-tune mode splits the classifier in front of its trainable stage: a frozen trunk (run forward
// only, through onnxruntime when it is available) and a trainable top. For every registry backbone
// the two halves must compute exactly what the classifier computes, the trunk must hold no weight
// of the trainable stage, and the top must hold every trainable weight.
import { describe, it, expect } from 'vitest';
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { decodeImage } from '../../main/engine/image-decode';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { freezeBackbone, lastStages, stageOf } from '../../models/freeze';
import { preprocess } from '../../models/preprocess';
import { backboneIds, getBackbone } from '../../models/registry';
import { splitAtStages } from '../../models/trunk';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const SIZE: Record<string, number> = { xception: 71, googlenet: 64, vgg16: 64, inceptionv4: 75, seinceptionv4: 75 };

async function photos(size: number, n: number): Promise<tf.Tensor4D> {
  const classes = ['birds', 'fruit', 'mammals', 'flowers'].slice(0, n);
  const files = await Promise.all(classes.map(async (c) => path.join(PHOTOS, c, (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort()[0])));
  const pixels = await Promise.all(files.map((f) => decodeImage(f, size)));
  const flat = new Float32Array(n * size * size * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  return tf.tensor4d(flat, [n, size, size, 3]);
}

describe('splitting a classifier in front of its trainable stage', () => {
  it.each(backboneIds())('%s: trunk then top equals the classifier', async (id) => {
    const info = getBackbone(id);
    const size = SIZE[id] ?? 64;
    const backbone = info.build({ inputSize: size });
    const classifier = attachHead(backbone, buildHead(info.featureDim, 3, { kind: 'linear' }, 1));
    const stages = lastStages(info, 1);
    freezeBackbone(classifier, info, { trainableStages: stages });
    const { trunk, top } = splitAtStages(classifier, info, stages);

    const trunkStages = new Set(trunk.layers.filter((l) => l.weights.length > 0).map((l) => stageOf(l.name, info.stages)));
    expect(trunkStages.has(stages[0])).toBe(false);
    expect(trunkStages.size).toBeGreaterThan(0);
    const names = (ws: tf.LayerVariable[]) => ws.map((w) => w.name).sort();
    expect(names(top.trainableWeights)).toEqual(names(classifier.trainableWeights));
    expect(top.trainableWeights.length).toBeGreaterThan(0);

    const pixels = await photos(size, 3);
    const [whole, split] = tf.tidy(() => {
      const x = preprocess(pixels, info.preprocessing);
      return [classifier.predict(x) as tf.Tensor, top.predict(trunk.predict(x) as tf.Tensor) as tf.Tensor];
    });
    const a = await whole.data();
    const b = await split.data();
    let worst = 0;
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]))));
    expect(worst).toBeLessThan(1e-6);
    tf.dispose([pixels, whole, split]);
    disposeAll(classifier);
  }, 120_000);

  it('refuses a split with nothing frozen before it', () => {
    const info = getBackbone('resnet18');
    const classifier = attachHead(info.build({ inputSize: 32 }), buildHead(info.featureDim, 2, { kind: 'linear' }, 1));
    expect(() => splitAtStages(classifier, info, info.stages)).toThrow(/nothing before it is frozen/);
    expect(() => splitAtStages(classifier, info, [])).toThrow(/does not depend on a trainable stage/);
    disposeAll(classifier);
  });
});
