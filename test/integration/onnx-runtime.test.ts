// Forward passes through onnxruntime-node give the same results as TF.js (within 1e-4) on real
// photos: an exported Refit ResNet-18 classifier through `refit predict`'s engine path, and the
// ImageNet ResNet-50 of classify-imagenet; and the TF.js fallback serves the same results. Each
// ForwardPass carries its own runtime and the reason TF.js serves it (no module state).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ClassifyRow } from '../../main/api/contract';
import type { RunRecord } from '../../main/api/training';
import { classifyImagenet, imagenetClassifier } from '../../main/engine/classify-imagenet';
import { exportRun } from '../../main/engine/export';
import { decodeImage } from '../../main/engine/image-decode';
import { listImageFiles } from '../../main/engine/image-files';
import * as onnxRuntime from '../../main/engine/onnx-runtime';
import { createForwardPass, describeRuntime, onnxRuntimeStatus, FORWARD_ENV } from '../../main/engine/onnx-runtime';
import { loadExportedModel, predictAll } from '../../main/engine/predict';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { loadImagenetResNet50, type ImagenetResNet50 } from '../../models/imagenet';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import { makeRunRecord } from '../fixtures/run-record';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const SIZE = 64;
const LABELS = ['birds', 'fruit', 'mammals'];
const TOLERANCE = 1e-4;
const info = getBackbone('resnet18');

let tmp: string;
let exported: string;
let photos: string[];

function runRecord(): RunRecord {
  return makeRunRecord({
    config: { epochs: 1, classWeights: false, inputSize: SIZE },
    labels: LABELS,
    metrics: {
      valAccuracy: 0.6, valLoss: 0.9, bestEpoch: 1, labels: LABELS,
      confusion: [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
      perClass: LABELS.map((name) => ({ name, precision: 1, recall: 1, f1: 1, support: 1 })),
      misclassified: [],
    },
  });
}

/** label → probability, for all labels of a prediction (topK = all labels). */
function byLabel(p: ClassifyRow): Map<string, number> {
  return new Map(p.top.map((t) => [t.label, t.probability]));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-onnx-runtime-'));
  photos = [
    ...(await listImageFiles([path.join(PHOTOS, 'birds')])).slice(0, 4),
    ...(await listImageFiles([path.join(PHOTOS, 'fruit')])).slice(0, 3),
    ...(await listImageFiles([path.join(PHOTOS, 'mammals')])).slice(0, 3),
  ];
  const classifier = attachHead(info.build({ inputSize: SIZE }), buildHead(info.featureDim, LABELS.length));
  // A random backbone's features are large: scale the head so that the logits on these photos span
  // about ±3 around each label's mean, giving probabilities that are neither uniform nor saturated at 0/1.
  const head = classifier.getLayer('head_classifier');
  const [kernel] = head.getWeights();
  const pixels = await Promise.all(photos.map((f) => decodeImage(f, SIZE)));
  const flat = new Float32Array(photos.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  const features = tf.model({ inputs: classifier.inputs, outputs: head.getInputAt(head.inboundNodes.length - 1) as tf.SymbolicTensor });
  const logits = tf.tidy(() => tf.matMul(features.predict(preprocess(tf.tensor4d(flat, [photos.length, SIZE, SIZE, 3]), info.preprocessing)) as tf.Tensor2D, kernel as tf.Tensor2D));
  const mean = tf.mean(logits, 0);
  const spread = tf.tidy(() => tf.sub(logits, mean).abs().max().dataSync()[0]);
  head.setWeights([tf.mul(kernel, 3 / spread), tf.mul(mean, -3 / spread)]);
  tf.dispose([logits, mean]);
  const runFolder = path.join(tmp, 'runs', 'run-20250101-0001');
  await mkdir(runFolder, { recursive: true });
  await writeFile(path.join(runFolder, 'run.json'), JSON.stringify(runRecord(), null, 2));
  await classifier.save(tfjsFolderHandler(path.join(runFolder, 'best')));
  disposeAll(classifier);
  exported = path.join(tmp, 'export');
  await exportRun(runFolder, exported);
  // A file that is not an image still yields an error row on both paths.
  const broken = path.join(tmp, 'broken.jpg');
  await writeFile(broken, 'not a jpeg');
  photos.push(broken);
});

afterAll(async () => {
  delete process.env[FORWARD_ENV];
  await rm(tmp, { recursive: true, force: true });
});

describe('onnxruntime forward passes', () => {
  it('onnxruntime-node is available here', async () => {
    const status = await onnxRuntimeStatus();
    expect(status).toMatchObject({ available: true, version: expect.stringMatching(/^1\.\d+\.\d+/), threads: os.availableParallelism() });
  });

  it('an exported Refit model predicts the same through onnxruntime and TF.js, and falls back to TF.js', async () => {
    const onnx = await loadExportedModel(exported);
    const tfjs = await loadExportedModel(exported, { runtime: 'tfjs' });
    process.env[FORWARD_ENV] = 'tfjs';
    const disabled = await loadExportedModel(exported);
    delete process.env[FORWARD_ENV];
    try {
      expect(onnx.forward).toMatchObject({ runtime: 'onnxruntime', inputSize: SIZE, outputShape: [LABELS.length] });
      expect(onnx.forward.reason).toBeUndefined();
      expect(tfjs.forward).toMatchObject({ runtime: 'tfjs', reason: 'requested' });
      expect(disabled.forward.runtime).toBe('tfjs');
      expect(disabled.forward.reason).toBe(`${FORWARD_ENV}=tfjs`);
      expect(describeRuntime(disabled.forward)).toBe(`TF.js (${FORWARD_ENV}=tfjs)`);
      expect(describeRuntime(onnx.forward)).toBe('onnxruntime');

      const options = { topK: LABELS.length, batchSize: 4 };
      const viaOnnx = await predictAll(onnx, photos, options);
      const viaTfjs = await predictAll(tfjs, photos, options);
      const viaFallback = await predictAll(disabled, photos, options);
      expect(viaOnnx.map((p) => p.file)).toEqual(photos);
      expect(viaOnnx.filter((p) => p.error).map((p) => p.file)).toEqual([photos.at(-1)]);
      expect(viaTfjs.filter((p) => p.error).map((p) => p.file)).toEqual([photos.at(-1)]);
      let worst = 0;
      for (let i = 0; i < photos.length - 1; i++) {
        const a = byLabel(viaOnnx[i]);
        const b = byLabel(viaTfjs[i]);
        const c = byLabel(viaFallback[i]);
        for (const label of LABELS) {
          worst = Math.max(worst, Math.abs(a.get(label)! - b.get(label)!));
          expect(c.get(label)).toBe(b.get(label)); // the fallback is exactly the TF.js path
        }
        expect(viaOnnx[i].top[0].label).toBe(viaTfjs[i].top[0].label);
      }
      console.log(`ResNet-18 64² (${photos.length - 1} photos): max |onnxruntime − TF.js| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(TOLERANCE);
      // The probabilities are neither uniform nor saturated, and not one label for every photo.
      const top1 = viaTfjs.slice(0, -1).map((p) => p.top[0].probability);
      expect(Math.max(...top1)).toBeGreaterThan(0.5);
      expect(top1.filter((p) => p < 0.99).length).toBeGreaterThanOrEqual(top1.length / 2);
      expect(new Set(viaTfjs.slice(0, -1).map((p) => p.top[0].label)).size).toBeGreaterThan(1);
    } finally {
      onnx.dispose();
      tfjs.dispose();
      disabled.dispose();
    }
  });

  it('falls back to TF.js for a layer the exporter refuses, with the reason on that pass only', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const odd = tf.layers.conv2dTranspose({ filters: 2, kernelSize: 3, name: 'odd_deconv' }).apply(input) as tf.SymbolicTensor;
    const refused = tf.model({ inputs: input, outputs: odd, name: 'odd_model' });
    const dense = tf.layers.dense({ units: 2, name: 'fine_dense' }).apply(tf.layers.globalAveragePooling2d({}).apply(input)) as tf.SymbolicTensor;
    const fine = tf.model({ inputs: input, outputs: dense, name: 'fine_model' });
    // Made at the same time: each pass keeps its own decision and reason.
    const [a, b] = await Promise.all([createForwardPass(refused, { inputSize: 8 }), createForwardPass(fine, { inputSize: 8 })]);
    const x = tf.randomUniform([2, 8, 8, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
    try {
      expect(a.runtime).toBe('tfjs');
      expect(a.reason).toMatch(/ONNX export refused odd_model/);
      expect(a.outputShape).toEqual([10, 10, 2]);
      expect(b.runtime).toBe('onnxruntime');
      expect(b.reason).toBeUndefined();
      expect(a.reason).toMatch(/ONNX export refused odd_model/); // not overwritten by the later pass
      expect(onnxRuntime).not.toHaveProperty('lastForwardFailure');
      // The TF.js pass is the model itself; the onnxruntime one agrees with it; both entry points agree.
      const want = refused.predict(x) as tf.Tensor;
      const got = await a.run(x);
      expect(got.shape).toEqual([2, 10, 10, 2]);
      expect(maxDiff(await got.data(), await want.data())).toBe(0);
      const flat = await x.data<'float32'>();
      expect(maxDiff(await a.runFloat32(flat, 2), await want.data())).toBe(0);
      const wantFine = fine.predict(x) as tf.Tensor;
      const gotFine = await b.run(x);
      expect(gotFine.shape).toEqual([2, 2]);
      expect(maxDiff(await gotFine.data(), await wantFine.data())).toBeLessThan(1e-5);
      expect(maxDiff(await b.runFloat32(flat, 2), await wantFine.data())).toBeLessThan(1e-5);
      tf.dispose([want, got, wantFine, gotFine]);
      // Wrong input shapes and use after dispose() are errors, on both runtimes.
      for (const pass of [a, b]) {
        const small = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
        await expect(pass.run(small)).rejects.toThrow(/takes \[n, 8, 8, 3\], got \[1, 4, 4, 3\]/);
        small.dispose();
        await expect(pass.runFloat32(new Float32Array(10), 1)).rejects.toThrow(/expected 1×8×8×3 = 192 values, got 10/);
        pass.dispose();
        await expect(pass.run(x)).rejects.toThrow(/used after dispose/);
      }
    } finally {
      x.dispose();
      refused.dispose();
      fine.dispose();
    }
  });

  it('REFIT_FORWARD=tfjs makes every pass TF.js, with that reason', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const model = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor, name: 'pool_model' });
    process.env[FORWARD_ENV] = 'TFJS';
    try {
      const pass = await createForwardPass(model, { inputSize: 8 });
      expect(pass).toMatchObject({ runtime: 'tfjs', reason: `${FORWARD_ENV}=TFJS` });
      pass.dispose();
      expect(await onnxRuntimeStatus()).toMatchObject({ available: false, reason: `disabled by ${FORWARD_ENV}=TFJS` });
    } finally {
      delete process.env[FORWARD_ENV];
    }
    // Unset again: the next pass is made in onnxruntime (the decision is made per pass, when it is made).
    const again = await createForwardPass(model, { inputSize: 8 });
    expect(again.runtime).toBe('onnxruntime');
    again.dispose();
    model.dispose();
  });
});

describe('classify-imagenet through onnxruntime', () => {
  let resnet: ImagenetResNet50;
  let images: string[];

  beforeAll(async () => {
    resnet = await loadImagenetResNet50();
    images = [path.join(PHOTOS, 'birds', 'pelican.png'), ...(await listImageFiles([path.join(PHOTOS, 'mammals')])).slice(0, 2)];
  });

  afterAll(() => disposeAll(resnet.classifier));

  it('ResNet-50 gives all 1000 probabilities within 1e-4 of TF.js on real photos', async () => {
    const size = 224;
    const pixels = await Promise.all(images.map((f) => decodeImage(f, size)));
    const flat = new Float32Array(images.length * size * size * 3);
    pixels.forEach((p, i) => flat.set(p, i * p.length));
    const x = tf.tidy(() => preprocess(tf.tensor4d(flat, [images.length, size, size, 3]), resnet.info.preprocessing));
    const input = (await x.data()) as Float32Array;
    const expected = tf.tidy(() => resnet.classifier.predict(x) as tf.Tensor);
    const want = (await expected.data()) as Float32Array;
    x.dispose();
    expected.dispose();
    const forward = await createForwardPass(resnet.classifier, { inputSize: size });
    expect(forward.runtime).toBe('onnxruntime');
    try {
      const got = await forward.runFloat32(input, images.length);
      const diff = maxDiff(got, want);
      console.log(`ImageNet ResNet-50 224² (${images.length} photos × 1000): max |onnxruntime − TF.js| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOLERANCE);
    } finally {
      forward.dispose();
    }
  });

  it('classifyImagenet returns the same labels and probabilities on both runtimes', async () => {
    const onnx = await imagenetClassifier(resnet);
    const tfjs = await imagenetClassifier(resnet, 'tfjs');
    expect(onnx.forward.runtime).toBe('onnxruntime');
    expect(tfjs.forward).toMatchObject({ runtime: 'tfjs', reason: 'requested' });
    try {
      const viaOnnx = await classifyImagenet(images, { classifier: onnx, topK: 1000 });
      const viaTfjs = await classifyImagenet(images, { classifier: tfjs, topK: 1000 });
      expect(viaOnnx.map((r) => r.file)).toEqual(viaTfjs.map((r) => r.file));
      expect(viaOnnx.find((r) => r.file.endsWith('pelican.png'))!.top[0].label).toBe('pelican');
      // Every label's probabilities (a few labels, like "crane", name two classes: compared sorted).
      const byName = (row: ClassifyRow) => {
        const out = new Map<string, number[]>();
        for (const t of row.top) out.set(t.label, [...(out.get(t.label) ?? []), t.probability].sort((x, y) => x - y));
        return out;
      };
      for (let i = 0; i < images.length; i++) {
        expect(viaOnnx[i].top).toHaveLength(1000);
        expect(viaOnnx[i].top[0].label).toBe(viaTfjs[i].top[0].label);
        const a = byName(viaOnnx[i]);
        const b = byName(viaTfjs[i]);
        expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
        for (const [label, ps] of a) expect(maxDiff(ps, b.get(label)!)).toBeLessThan(TOLERANCE);
      }
    } finally {
      onnx.forward.dispose();
      tfjs.forward.dispose();
    }
  });
});
