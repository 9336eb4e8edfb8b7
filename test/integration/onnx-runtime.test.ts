// Forward passes through onnxruntime-node give the same results as TF.js (within 1e-4) on real
// photos: an exported Refit ResNet-18 classifier through `refit predict`'s engine path, and the
// ImageNet ResNet-50 of classify-imagenet; and the TF.js fallback serves the same results.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunRecord } from '../../main/api/training';
import { classifyImagenet } from '../../main/engine/classify-imagenet';
import { exportRun } from '../../main/engine/export';
import { decodeImage } from '../../main/engine/image-decode';
import { listImageFiles } from '../../main/engine/image-files';
import { createOnnxForward, lastForwardFailure, onnxRuntimeStatus, FORWARD_ENV } from '../../main/engine/onnx-runtime';
import { loadExportedModel, predictAll, type Prediction } from '../../main/engine/predict';
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
function byLabel(p: Prediction): Map<string, number> {
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
    expect(status).toMatchObject({ available: true, version: expect.stringMatching(/^1\.\d+\.\d+/) });
  });

  it('an exported Refit model predicts the same through onnxruntime and TF.js, and falls back to TF.js', async () => {
    const onnx = await loadExportedModel(exported);
    const tfjs = await loadExportedModel(exported, { runtime: 'tfjs' });
    process.env[FORWARD_ENV] = 'tfjs';
    const disabled = await loadExportedModel(exported);
    delete process.env[FORWARD_ENV];
    try {
      expect(onnx.runtime).toEqual({ name: 'onnxruntime' });
      expect(onnx.forward).toBeTypeOf('function');
      expect(tfjs.runtime).toEqual({ name: 'tfjs', reason: 'requested' });
      expect(tfjs.forward).toBeUndefined();
      expect(disabled.runtime.name).toBe('tfjs');
      expect(disabled.runtime.reason).toContain(`${FORWARD_ENV}=tfjs`);

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

  it('createOnnxForward returns null with a reason for a layer the exporter refuses', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const odd = tf.layers.conv2dTranspose({ filters: 2, kernelSize: 3 }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: odd });
    try {
      expect(await createOnnxForward(model, { inputSize: 8 })).toBeNull();
      expect(lastForwardFailure).toMatch(/ONNX export refused/);
    } finally {
      model.dispose();
    }
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
    const forward = await createOnnxForward(resnet.classifier, { inputSize: size });
    expect(forward).not.toBeNull();
    try {
      const got = await forward!.run(input, images.length);
      const diff = maxDiff(got, want);
      console.log(`ImageNet ResNet-50 224² (${images.length} photos × 1000): max |onnxruntime − TF.js| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(TOLERANCE);
    } finally {
      forward!.dispose();
    }
  });

  it('classifyImagenet returns the same labels and probabilities on both runtimes', async () => {
    const viaOnnx = await classifyImagenet(images, { model: resnet });
    const viaTfjs = await classifyImagenet(images, { model: resnet, runtime: 'tfjs' });
    expect(viaOnnx.map((r) => r.file)).toEqual(viaTfjs.map((r) => r.file));
    expect(viaOnnx.find((r) => r.file.endsWith('pelican.png'))!.top[0].label).toBe('pelican');
    for (let i = 0; i < images.length; i++) {
      const a = viaOnnx[i].top;
      const b = new Map(viaTfjs[i].top.map((t) => [t.index, t.probability]));
      expect(a[0].index).toBe(viaTfjs[i].top[0].index);
      for (const t of a) {
        if (b.has(t.index)) expect(Math.abs(t.probability - b.get(t.index)!)).toBeLessThan(TOLERANCE);
      }
    }
  });
});
