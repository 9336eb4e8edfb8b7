// Grad-CAM against PyTorch: torchvision's ResNet-18 with seeded random weights, saved by torch.save
// and imported through Refit's importer; PyTorch computes Grad-CAM with hooks on layer4 in float64
// (test/fixtures/gradcam_reference.py) and Refit's maps must match within 1e-4 on real photos.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradCamMap, gradCamModel } from '../../main/engine/grad-cam';
import { decodeImageRgb } from '../../main/engine/image-decode';
import { preprocessInto } from '../../main/engine/preprocess-float';
import { disposeAll } from '../../models/heads';
import { getBackbone, importWeightsFile, loadImagenetClassifier } from '../../models/registry';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, '../fixtures/gradcam_reference.py');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const hasTorchvision = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import torchvision']).then(() => true, () => false));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'refit-gradcam-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Skipped only outside CI: .ci/run installs python3-torchvision, so there a missing reference fails.
describe.skipIf(!hasTorchvision && !process.env.CI)('Grad-CAM matches PyTorch', () => {
  const FILES = ['birds/pelican.png', 'fruit/banana.png', 'flowers/daffodil.png'].map((p) => path.join(PHOTOS, p));
  const SIZE = 224;
  const savedCache = process.env.XDG_CACHE_HOME;
  afterAll(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
  });

  it('torchvision ResNet-18 (seeded weights, imported): the same maps within 1e-4, for the predicted and the runner-up class', async () => {
    const decoded = await Promise.all(FILES.map((f) => decodeImageRgb(f, SIZE)));
    const pixels = new Uint8Array(decoded.length * SIZE * SIZE * 3);
    decoded.forEach((d, i) => pixels.set(d, i * d.length));
    await writeFile(path.join(dir, 'pixels.bin'), pixels);
    await run(PYTHON, [SCRIPT, dir, path.join(dir, 'pixels.bin'), String(FILES.length), String(SIZE)], { timeout: 600_000 });
    const reference = JSON.parse(await readFile(path.join(dir, 'gradcam.json'), 'utf8')) as {
      images: { predicted: number; probability: number; runnerUp: number; shape: number[]; predictedMap: number[]; runnerUpMap: number[] }[];
    };

    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    await importWeightsFile('resnet18', path.join(dir, 'resnet18.pth'), 'torchvision-v1');
    const { model: classifier, manifest } = await loadImagenetClassifier('resnet18', 'torchvision-v1', { inputSize: SIZE });
    try {
      const model = gradCamModel(classifier, getBackbone('resnet18'));
      let worst = 0;
      for (const [i, theirs] of reference.images.entries()) {
        expect(theirs.shape).toEqual([model.mapHeight, model.mapWidth]);
        const input = new Float32Array(SIZE * SIZE * 3);
        preprocessInto(input, 0, decoded[i], manifest.preprocessing);
        const predicted = await gradCamMap(model, input);
        expect(predicted.predictedIndex).toBe(theirs.predicted);
        expect(predicted.probability).toBeCloseTo(theirs.probability, 4);
        const runnerUp = await gradCamMap(model, input, theirs.runnerUp);
        for (const [ours, ref] of [[predicted.values, theirs.predictedMap], [runnerUp.values, theirs.runnerUpMap]] as const) {
          expect(ours.length).toBe(ref.length);
          // Not degenerate: the map has a peak and some cold cells.
          expect(Math.max(...ref)).toBeCloseTo(1, 9);
          expect(ref.filter((v) => v < 0.5).length).toBeGreaterThan(0);
          for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(ours[k] - ref[k]));
        }
        // The two classes' maps differ, in both implementations.
        expect(Math.max(...theirs.predictedMap.map((v, k) => Math.abs(v - theirs.runnerUpMap[k])))).toBeGreaterThan(0.05);
      }
      console.log(`Grad-CAM vs PyTorch (ResNet-18, ${FILES.length} photos × 2 classes, 7×7): max |difference| ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-4);
    } finally {
      disposeAll(classifier);
    }
  }, 600_000);
});
