// Fine-tune mode runs the frozen stages forward through onnxruntime and trains the rest in TF.js.
// Whichever runtime serves the frozen part, the numbers must be the same within 1e-4: the boundary
// activations on real photos, one training step's loss and gradients, and a whole fine-tuning run
// (losses per epoch and the trained weights), against REFIT_FORWARD=tfjs.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunRecord, TrainConfig, TrainEvent } from '../../main/api/training';
import { createForwardPass, FORWARD_ENV } from '../../main/engine/onnx-runtime';
import { addSources, createProject, newRunId, runDir, scanProject } from '../../main/engine/project';
import { runTraining } from '../../main/engine/trainer';
import { trainStep } from '../../main/engine/training/step';
import { loadModel } from '../../main/engine/checkpoint';
import { decodeImage } from '../../main/engine/image-decode';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { freezeBackbone, lastStages } from '../../models/freeze';
import { loadImagenetResNet50 } from '../../models/imagenet';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { splitAtStages } from '../../models/trunk';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const CLASSES = ['birds', 'fruit', 'mammals'];
const SIZE = 64;
let tmp: string;
let data: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-onnx-finetune-'));
  data = path.join(tmp, 'data');
  for (const c of CLASSES) {
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 6);
    await mkdir(path.join(data, c), { recursive: true });
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(data, c, f));
  }
});

afterAll(async () => {
  delete process.env[FORWARD_ENV];
  await rm(tmp, { recursive: true, force: true });
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};
const maxAbs = (a: ArrayLike<number>) => maxDiff(a, new Float32Array(a.length));

async function photoBatch(): Promise<tf.Tensor4D> {
  const files: string[] = [];
  for (const c of CLASSES) for (const f of (await readdir(path.join(data, c))).sort().slice(0, 2)) files.push(path.join(data, c, f));
  const pixels = await Promise.all(files.map((f) => decodeImage(f, SIZE)));
  const flat = new Float32Array(files.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  return tf.tidy(() => preprocess(tf.tensor4d(flat, [files.length, SIZE, SIZE, 3]), getBackbone('resnet50').preprocessing));
}

describe('fine-tuning with the frozen stages in onnxruntime', () => {
  it('gives the same boundary activations, loss and gradients as TF.js on ImageNet ResNet-50', async () => {
    const info = getBackbone('resnet50');
    const { backbone, head: imagenetHead } = await loadImagenetResNet50({ inputSize: SIZE });
    disposeAll(imagenetHead);
    const classifier = attachHead(backbone, buildHead(info.featureDim, 3, { kind: 'linear' }, 3));
    const stages = lastStages(info, 1);
    freezeBackbone(classifier, info, { trainableStages: stages });
    classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
    const { trunk, top } = splitAtStages(classifier, info, stages);
    const onnx = await createForwardPass(trunk, { inputSize: SIZE });
    const tfjs = await createForwardPass(trunk, { inputSize: SIZE, runtime: 'tfjs' });
    expect(onnx.runtime).toBe('onnxruntime');
    expect(tfjs.runtime).toBe('tfjs');

    const x = await photoBatch();
    const a = await onnx.run(x);
    const b = await tfjs.run(x);
    expect(a.shape).toEqual([6, 4, 4, 1024]);
    expect(b.shape).toEqual(a.shape);
    const [av, bv] = [await a.data(), await b.data()];
    const boundaryDiff = maxDiff(av, bv);
    console.log(`ResNet-50 stage3 output, 6 photos at 64²: max |onnxruntime − TF.js| = ${boundaryDiff.toExponential(2)} (largest |value| ${maxAbs(bv).toFixed(2)})`);
    expect(maxAbs(bv)).toBeGreaterThan(1);
    expect(boundaryDiff).toBeLessThan(1e-4);

    // One training step's loss and gradients from either runtime's activations, and from the whole classifier.
    const y = tf.oneHot(tf.tensor1d([0, 0, 1, 1, 2, 2], 'int32'), 3).toFloat() as tf.Tensor2D;
    const w = tf.ones([3]) as tf.Tensor1D;
    const variables = top.trainableWeights.map((v) => v.read() as tf.Variable);
    const gradsFrom = (input: tf.Tensor, model: tf.LayersModel) =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const p = model.apply(input, { training: true }) as tf.Tensor2D;
          return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))), 1))) as tf.Scalar;
        }, variables);
        return [value, ...variables.map((v) => grads[v.name])];
      });
    const [lossA, ...gradA] = gradsFrom(a, top);
    const [lossB, ...gradB] = gradsFrom(b, top);
    const [lossC, ...gradC] = gradsFrom(x, classifier);
    expect(Math.abs(lossA.dataSync()[0] - lossB.dataSync()[0])).toBeLessThan(1e-4);
    expect(Math.abs(lossB.dataSync()[0] - lossC.dataSync()[0])).toBeLessThan(1e-6);
    let gradDiff = 0;
    let gradScale = 0;
    gradA.forEach((g, i) => {
      gradDiff = Math.max(gradDiff, maxDiff(g.dataSync(), gradB[i].dataSync()));
      gradScale = Math.max(gradScale, maxAbs(gradB[i].dataSync()));
      expect(maxDiff(gradB[i].dataSync(), gradC[i].dataSync())).toBeLessThan(1e-6);
    });
    console.log(`gradients of ${variables.length} trainable weights: max |onnxruntime − TF.js| = ${gradDiff.toExponential(2)} (largest |gradient| ${gradScale.toExponential(2)})`);
    expect(gradScale).toBeGreaterThan(1e-3);
    expect(gradDiff).toBeLessThan(1e-4);

    // trainStep with either input gives the same loss.
    const opt = tf.train.sgd(0);
    const stepA = await trainStep(opt, variables, (xs) => top.apply(xs, { training: true }) as tf.Tensor2D, a, y, w);
    const stepB = await trainStep(opt, variables, (xs) => top.apply(xs, { training: true }) as tf.Tensor2D, b, y, w, 2);
    expect(Math.abs(stepA.loss - stepB.loss)).toBeLessThan(1e-4);
    expect(stepA.hits).toBe(stepB.hits);

    tf.dispose([x, a, b, y, w, lossA, lossB, lossC, ...gradA, ...gradB, ...gradC]);
    onnx.dispose();
    disposeAll(classifier);
  }, 300_000);

  it('trains to the same losses and weights whichever runtime serves the frozen stages', async () => {
    const config: TrainConfig = {
      backbone: 'resnet50', weights: 'imagenet', mode: 'finetune', inputSize: SIZE, head: { kind: 'linear' },
      epochs: 2, batchSize: 8, valSplit: 0.25, seed: 11, augment: true, patience: 5, classWeights: false,
    };
    const trainWith = async (name: string): Promise<{ record: RunRecord; events: TrainEvent[]; dir: string }> => {
      const project = await createProject(path.join(tmp, name), { name });
      await addSources(project, [data]);
      const report = await scanProject(project);
      const events: TrainEvent[] = [];
      const runId = newRunId();
      const record = await runTraining({ projectDir: project.dir, runId, config, images: report.images }, { emit: (e) => events.push(e) });
      return { record, events, dir: runDir(project.dir, runId) };
    };
    delete process.env[FORWARD_ENV];
    const onnx = await trainWith('onnx');
    process.env[FORWARD_ENV] = 'tfjs';
    const tfjs = await trainWith('tfjs');
    delete process.env[FORWARD_ENV];

    const runtimeLine = (events: TrainEvent[]) => events.find((e): e is Extract<TrainEvent, { type: 'progress' }> => e.type === 'progress' && /frozen stages/.test(e.message ?? ''))?.message;
    expect(runtimeLine(onnx.events)).toMatch(/frozen stages \(stem, stage1, stage2, stage3\) run forward in onnxruntime/);
    expect(runtimeLine(tfjs.events)).toMatch(/run forward in TF\.js \(REFIT_FORWARD=tfjs\)/);

    expect(onnx.record.status).toBe('completed');
    expect(onnx.record.history.map((h) => h.phase)).toEqual(['train', 'train', 'finetune', 'finetune']);
    expect(tfjs.record.history.map((h) => h.phase)).toEqual(onnx.record.history.map((h) => h.phase));
    let worstLoss = 0;
    onnx.record.history.forEach((h, i) => {
      const t = tfjs.record.history[i];
      worstLoss = Math.max(worstLoss, Math.abs(h.loss - t.loss), Math.abs(h.valLoss - t.valLoss));
      expect(h.accuracy).toBeCloseTo(t.accuracy, 6);
      expect(h.valAccuracy).toBeCloseTo(t.valAccuracy, 6);
    });
    const [a, b] = await Promise.all([loadModel(path.join(onnx.dir, 'last')), loadModel(path.join(tfjs.dir, 'last'))]);
    let worstWeight = 0;
    let moved = 0;
    const { backbone: start } = await loadImagenetResNet50({ inputSize: SIZE });
    const original = new Map(start.layers.map((l) => [l.name, l.getWeights().map((t) => t.dataSync())]));
    a.layers.forEach((layer, i) => {
      const wa = layer.getWeights().map((t) => t.dataSync());
      const wb = b.layers[i].getWeights().map((t) => t.dataSync());
      wa.forEach((v, j) => (worstWeight = Math.max(worstWeight, maxDiff(v, wb[j]))));
      const before = original.get(layer.name);
      if (layer.name.startsWith('stage4_') && before && wa.some((v, j) => maxDiff(v, before[j]) > 0)) moved++;
    });
    console.log(`fine-tune run, onnxruntime vs TF.js trunk: max |Δloss| ${worstLoss.toExponential(2)}, max |Δweight| ${worstWeight.toExponential(2)}, ${moved} stage4 layers trained`);
    expect(moved).toBeGreaterThan(0);
    expect(worstLoss).toBeLessThan(1e-4);
    expect(worstWeight).toBeLessThan(1e-4);
    disposeAll(a);
    disposeAll(b);
    disposeAll(start);
  }, 600_000);
});
