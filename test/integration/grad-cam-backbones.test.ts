// Grad-CAM on every backbone family (random weights, a real photo): the map has the size of the last
// convolutional stage's output, values in [0, 1], one per class asked for, and the prediction it
// reports is the classifier's own.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { gradCamMap, gradCamModel } from '../../main/engine/grad-cam';
import { decodeImageRgb } from '../../main/engine/image-decode';
import { preprocessInto } from '../../main/engine/preprocess-float';
import { listBackboneSpecs } from '../../models/catalog';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { getBackbone } from '../../models/registry';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

describe('Grad-CAM on every backbone family', () => {
  // One backbone per builder (depths and SE variants share their stages' structure), random weights, a small input.
  const specs = listBackboneSpecs().filter((s, i, all) => !s.id.startsWith('se') && all.findIndex((o) => o.family === s.family) === i);
  for (const spec of specs) {
    it(`${spec.id}: a map of the last convolutional stage's size, in [0, 1], explaining the class asked for`, async () => {
      const size = Math.max(spec.minInputSize, 64);
      const classifier = attachHead(getBackbone(spec.id).build({ inputSize: size }), buildHead(spec.featureDim, 3, { kind: 'linear' }, 7));
      try {
        const model = gradCamModel(classifier, spec);
        const lastConvStage = spec.stages.filter((s) => s !== 'fc').pop()!;
        expect(model.stageOutput.startsWith(`${lastConvStage}_`)).toBe(true);
        const stageShape = classifier.getLayer(model.stageOutput).outputShape as number[];
        expect([model.mapHeight, model.mapWidth]).toEqual(stageShape.slice(1, 3));
        const rgb = await decodeImageRgb(path.join(PHOTOS, 'birds/pelican.png'), size);
        const input = new Float32Array(rgb.length);
        preprocessInto(input, 0, rgb, spec.preprocessing);
        const maps = [await gradCamMap(model, input, 0), await gradCamMap(model, input, 2)];
        const probabilities = classifier.predict(tf.tensor4d(input, [1, size, size, 3])) as tf.Tensor;
        const probs = Array.from(await probabilities.data());
        probabilities.dispose();
        for (const m of maps) {
          expect(m.values.length).toBe(model.mapHeight * model.mapWidth);
          expect(m.values.every((v) => v >= 0 && v <= 1)).toBe(true);
          // The prediction is the classifier's own (the cut loses nothing).
          expect(m.predictedIndex).toBe(probs.indexOf(Math.max(...probs)));
          expect(m.probability).toBeCloseTo(Math.max(...probs), 4);
        }
        expect(maps.map((m) => m.classIndex)).toEqual([0, 2]);
      } finally {
        disposeAll(classifier);
      }
    }, spec.family === 'vgg' ? 240_000 : 60_000); // VGG-16: the gradient back through fc6 (25088×4096) takes seconds in wasm
  }
});
