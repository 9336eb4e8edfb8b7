// A seed makes training from scratch repeatable: the backbone's random start is seeded per layer
// (models/layers.ts withInitSeed), as are the head, the split, the augmentation and the batch order.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TrainConfig } from '../../main/api/training';
import { loadModel } from '../../main/engine/checkpoint';
import { addSources, createProject, newRunId, runDir, scanProject } from '../../main/engine/project';
import { runTraining } from '../../main/engine/trainer';
import { disposeAll } from '../../models/heads';
import { getBackbone } from '../../models/registry';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-reproducible-'));
  for (const c of ['birds', 'fruit']) {
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 8);
    await mkdir(path.join(tmp, 'data', c), { recursive: true });
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(tmp, 'data', c, f));
  }
});

afterAll(() => rm(tmp, { recursive: true, force: true }));

/** SHA-256 of each weight tensor's bytes (comparing big models value by value would need GBs of JS arrays). */
const weightsOf = (model: { getWeights(): { dataSync(): ArrayLike<number> }[] }) =>
  model.getWeights().map((w) => {
    const data = w.dataSync() as Float32Array;
    return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
  });

describe('seeded random initial weights', () => {
  // One backbone per layer builder: plain convolutions, SE dense layers, separable convolutions, inception branches, VGG's dense layers.
  it.each(['resnet18', 'seresnet18', 'xception', 'googlenet', 'vgg16'])('%s: the same seed builds the same weights, another seed different ones', (id) => {
    const info = getBackbone(id);
    const size = info.minInputSize;
    const [a, b, c] = [7, 7, 8].map((seed) => info.build({ inputSize: size, seed }));
    const [wa, wb, wc] = [a, b, c].map(weightsOf);
    expect(wa).toEqual(wb);
    // Every layer with a random kernel differs under another seed.
    const kernels = a.layers.filter((l) => /Conv2D|Dense/.test(l.getClassName()) && l.trainable);
    expect(kernels.length).toBeGreaterThan(0);
    for (const layer of kernels) {
      const [ka] = weightsOf({ getWeights: () => layer.getWeights().slice(0, 1) });
      const [kc] = weightsOf({ getWeights: () => c.getLayer(layer.name).getWeights().slice(0, 1) });
      expect(ka, layer.name).not.toBe(kc);
    }
    expect(wa).not.toEqual(wc);
    [a, b, c].forEach((m) => m.dispose());
  }, 120_000);

  it('two full-mode runs from scratch with the same seed end with identical weights and history', async () => {
    const config: TrainConfig = {
      backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: 32, head: { kind: 'linear' },
      epochs: 2, batchSize: 4, valSplit: 0.25, seed: 13, augment: true, patience: 5, classWeights: false, learningRate: 1e-3,
    };
    const run = async (name: string) => {
      const project = await createProject(path.join(tmp, name), { name });
      await addSources(project, [path.join(tmp, 'data')]);
      const { images } = await scanProject(project);
      const runId = newRunId();
      const record = await runTraining({ projectDir: project.dir, runId, config, images }, { emit: () => undefined });
      const model = await loadModel(path.join(runDir(project.dir, runId), 'last'));
      const weights = weightsOf(model);
      disposeAll(model);
      return { record, weights };
    };
    const first = await run('a');
    const second = await run('b');
    expect(first.record.status).toBe('completed');
    const strip = (h: typeof first.record.history) => h.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(second.record.history)).toEqual(strip(first.record.history));
    expect(second.weights).toEqual(first.weights);
    // …and it did train: the loss is a real number and the weights are not the seeded start.
    const start = getBackbone('resnet18').build({ inputSize: 32, seed: 13 });
    expect(first.weights.slice(0, 1)).not.toEqual(weightsOf(start).slice(0, 1));
    start.dispose();
  }, 300_000);
});
