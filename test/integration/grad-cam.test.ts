// Grad-CAM on real photos with the ImageNet ResNet-50: the map has the last convolutional stage's
// size, lands where the object is on the image as shown (Refit's pad-to-square rule undone) and
// changes with the class asked for. (Every backbone family: grad-cam-backbones.test.ts; PyTorch as
// the reference: grad-cam-torch.test.ts.)
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heatOnImage } from '../../main/api/grad-cam';
import { contentBox, gradCamInput, gradCamMap, gradCamModel } from '../../main/engine/grad-cam';
import { listBackboneSpecs } from '../../models/catalog';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { loadImagenetResNet50 } from '../../models/imagenet';
import { getBackbone } from '../../models/registry';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'refit-gradcam-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Share of the heat in each quadrant of an image shown w×h, and the quadrant of its hottest pixel. */
function quadrants(heat: Float32Array, w: number, h: number) {
  const sums = { topLeft: 0, topRight: 0, bottomLeft: 0, bottomRight: 0 };
  let total = 0;
  let peak = 0;
  let peakAt: keyof typeof sums = 'topLeft';
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = heat[y * w + x];
      const q = `${y < h / 2 ? 'top' : 'bottom'}${x < w / 2 ? 'Left' : 'Right'}` as keyof typeof sums;
      sums[q] += v;
      total += v;
      if (v > peak) [peak, peakAt] = [v, q];
    }
  }
  for (const q of Object.keys(sums) as (keyof typeof sums)[]) sums[q] /= total;
  return { ...sums, peakAt };
}

describe('Grad-CAM on the ImageNet ResNet-50', () => {
  it('lands on the object asked for, on the image as shown (a wide picture: banana top-left, tiger bottom-right)', async () => {
    // 600×300 white picture; Refit pads it to a square (white bands above and below) before the network sees it.
    const [W, H] = [600, 300];
    const paste = async (file: string) => sharp(path.join(PHOTOS, file)).resize(150, 150, { fit: 'contain', background: '#ffffff' }).flatten({ background: '#ffffff' }).png().toBuffer();
    const picture = path.join(dir, 'banana-and-tiger.png');
    await sharp({ create: { width: W, height: H, channels: 3, background: '#ffffff' } })
      .composite([
        { input: await paste('fruit/banana.png'), left: 0, top: 0 },
        { input: await paste('mammals/cats/tiger.png'), left: W - 150, top: H - 150 },
      ])
      .png()
      .toFile(picture);
    const box = await contentBox(picture);
    expect(box).toEqual({ x: 0, y: 0.25, width: 1, height: 0.5 });

    const net = await loadImagenetResNet50({ inputSize: 224 });
    try {
      const model = gradCamModel(net.classifier, net.info);
      expect(model.stageOutput).toMatch(/^stage4_/);
      expect([model.mapHeight, model.mapWidth]).toEqual([7, 7]);
      const input = await gradCamInput(picture, 224, net.info.preprocessing);
      const banana = net.labels.indexOf('banana');
      const tiger = net.labels.indexOf('tiger');
      expect(banana).toBeGreaterThanOrEqual(0);
      expect(tiger).toBeGreaterThanOrEqual(0);
      const onBanana = await gradCamMap(model, input, banana);
      const onTiger = await gradCamMap(model, input, tiger);
      expect(onBanana.classIndex).toBe(banana);
      expect(onTiger.predictedIndex).toBe(onBanana.predictedIndex);
      for (const m of [onBanana, onTiger]) {
        expect(m.values.length).toBe(49);
        expect(Math.max(...m.values)).toBeCloseTo(1, 6);
        expect(Math.min(...m.values)).toBeGreaterThanOrEqual(0);
      }
      // The class asked for changes the map.
      const change = Math.max(...onBanana.values.map((v, i) => Math.abs(v - onTiger.values[i])));
      expect(change).toBeGreaterThan(0.5);
      // On the picture as shown (the padding undone), each class's heat sits in its object's corner.
      const b = quadrants(heatOnImage(onBanana.values, 7, 7, box, W, H), W, H);
      const t = quadrants(heatOnImage(onTiger.values, 7, 7, box, W, H), W, H);
      const pct = (q: ReturnType<typeof quadrants>) => `${(q.topLeft * 100).toFixed(0)}% top-left, ${(q.bottomRight * 100).toFixed(0)}% bottom-right, peak ${q.peakAt}`;
      console.log(`banana: ${pct(b)}; tiger: ${pct(t)}`);
      expect(b.peakAt).toBe('topLeft');
      expect(t.peakAt).toBe('bottomRight');
      expect(b.topLeft).toBeGreaterThan(2 * b.bottomRight);
      expect(t.bottomRight).toBeGreaterThan(2 * t.topLeft);
    } finally {
      disposeAll(net.classifier);
    }
  }, 120_000);

  it('refuses a class index the model does not have, and an input of the wrong size', async () => {
    const spec = listBackboneSpecs().find((s) => s.id === 'resnet18')!;
    const classifier = attachHead(getBackbone('resnet18').build({ inputSize: 32 }), buildHead(spec.featureDim, 2));
    try {
      const model = gradCamModel(classifier, spec);
      await expect(gradCamMap(model, new Float32Array(32 * 32 * 3), 2)).rejects.toThrow('class index 2 is out of range (the model has 2 classes)');
      await expect(gradCamMap(model, new Float32Array(10), 0)).rejects.toThrow('input has 10 values, expected 32×32×3');
    } finally {
      disposeAll(classifier);
    }
  });
});
