// `refit export --format onnx` (exportRun with `onnx: true`): model.onnx beside the TF.js files,
// listed in refit.json with size and SHA-256, its input documented in refit.json and the model card,
// and onnxruntime on it agreeing with the TF.js model on real photos preprocessed exactly as
// refit.json says.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { Command } from 'commander';
import type { RunRecord } from '../../main/api/training';
import { decodeImage } from '../../main/engine/image-decode';
import { loadExportedModel } from '../../main/engine/predict';
import { manifestSchema } from '../../main/engine/refit-manifest';
import { registerExport } from '../../main/host/commands/export';
import type { CommandIO } from '../../main/host/commands/io';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import { makeRunRecord } from '../fixtures/run-record';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const SIZE = 64;
const LABELS = ['birds', 'fruit', 'mammals'];
const info = getBackbone('resnet18');
const FILES = ['birds/crow.png', 'birds/duck.png', 'mammals/badger.png', 'fruit/Apricot_whole.png'].map((f) => path.join(PHOTOS, f));

let tmp: string;
let runFolder: string;
let classifier: tf.LayersModel;
let expected: Float32Array;

function runRecord(): RunRecord {
  return makeRunRecord({ id: 'run-20250101-0002', labels: LABELS, datasetFingerprint: 'cd'.repeat(32), trainImages: 40, valImages: 10, history: [], bestEpoch: 2, lastEpoch: 2 });
}

async function cli(...args: string[]) {
  const io = {
    out: '',
    err: '',
    stderrIsTTY: false,
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    setExitCode: (_c: number) => undefined,
  };
  const program = new Command('refit').exitOverride();
  registerExport(program, io as CommandIO)
    .exitOverride()
    .configureOutput({ writeErr: (t) => void (io.err += t) });
  await program.parseAsync(args, { from: 'user' });
  return io;
}

/** The photos as refit.json's preprocessing says, NHWC. */
async function preprocessed(): Promise<tf.Tensor4D> {
  const pixels = await Promise.all(FILES.map((f) => decodeImage(f, SIZE)));
  const flat = new Float32Array(FILES.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  return tf.tidy(() => preprocess(tf.tensor4d(flat, [FILES.length, SIZE, SIZE, 3]), info.preprocessing));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-onnx-export-'));
  const backbone = info.build({ inputSize: SIZE });
  classifier = attachHead(backbone, buildHead(info.featureDim, LABELS.length, { kind: 'linear' }, 3));
  // Logits spanning a few units: probabilities neither uniform nor saturated (which would hide errors).
  const head = classifier.getLayer('head_classifier');
  const [kernel, bias] = head.getWeights();
  const x0 = await preprocessed();
  const spread = tf.tidy(() => {
    const logits = tf.matMul(backbone.predict(x0) as tf.Tensor2D, kernel as tf.Tensor2D);
    return tf.sub(tf.max(logits), tf.min(logits)).dataSync()[0];
  });
  x0.dispose();
  tf.tidy(() => head.setWeights([tf.mul(kernel, 4 / spread), bias]));
  runFolder = path.join(tmp, 'runs', 'run-20250101-0002');
  await mkdir(runFolder, { recursive: true });
  await writeFile(path.join(runFolder, 'run.json'), JSON.stringify(runRecord(), null, 2));
  await classifier.save(tfjsFolderHandler(path.join(runFolder, 'best')));
  const x = await preprocessed();
  expected = (classifier.predict(x) as tf.Tensor).dataSync() as Float32Array;
  x.dispose();
});

afterAll(async () => {
  disposeAll(classifier);
  await rm(tmp, { recursive: true, force: true });
});

async function onnxProbabilities(file: string, layout: 'NHWC' | 'NCHW'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(await readFile(file), { graphOptimizationLevel: 'all' });
  try {
    const x = await preprocessed();
    const fed = layout === 'NHWC' ? x : tf.transpose(x, [0, 3, 1, 2]);
    const dims = layout === 'NHWC' ? [FILES.length, SIZE, SIZE, 3] : [FILES.length, 3, SIZE, SIZE];
    const data = fed.dataSync() as Float32Array;
    tf.dispose([x, fed]);
    const out = await session.run({ input: new ort.Tensor('float32', data, dims) });
    return out.output.data as Float32Array;
  } finally {
    await session.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('refit export --format onnx', () => {
  it('writes model.onnx beside the TF.js files, hashed in refit.json, documented in refit.json and README.md', async () => {
    const out = path.join(tmp, 'export-nhwc');
    const io = await cli('export', runFolder, '--out', out, '--format', 'onnx');
    expect(io.out).toMatch(/files: model\.json, \d+ weight shard\(s\), model\.onnx, refit\.json, README\.md/);

    const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8')));
    const entry = manifest.files.find((f) => f.path === 'model.onnx');
    expect(entry).toBeDefined();
    const bytes = await readFile(path.join(out, 'model.onnx'));
    expect(bytes.byteLength).toBe(entry!.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(entry!.sha256);
    expect(manifest.onnx).toEqual({
      file: 'model.onnx',
      opset: 13,
      input: { name: 'input', layout: 'NHWC', dtype: 'float32', shape: [null, SIZE, SIZE, 3] },
      output: { name: 'output', dtype: 'float32', shape: [null, 3], activation: 'softmax' },
      preprocessingIncluded: false,
      note: expect.stringMatching(/NOT included.*\[batch, 64, 64, 3\] \(NHWC\).*channel order BGR; value = pixel \(0–255\) − mean, mean \(B, G, R\) = \[103\.939, 116\.779, 123\.68\]; no scaling/),
    });
    const card = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(card).toContain('## ONNX');
    expect(card).toContain('Input `input`: float32 [batch, 64, 64, 3], layout NHWC');
    expect(card).toContain('Preprocessing is NOT included in model.onnx');
    expect(card).toContain('- `model.onnx`: the same classifier as an ONNX graph (opset 13).');

    // The TF.js side of the folder still loads (refit predict), and onnxruntime agrees with TF.js.
    const loaded = await loadExportedModel(out);
    loaded.dispose();
    const diff = maxAbsDiff(await onnxProbabilities(path.join(out, 'model.onnx'), 'NHWC'), expected);
    console.log(`[onnx] exported ResNet-18 ${SIZE}² (NHWC): ${(bytes.byteLength / 1e6).toFixed(1)} MB, max |Δp| vs TF.js ${diff.toExponential(2)}`);
    expect(Math.max(...expected)).toBeLessThan(0.9999);
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(0.05);
    expect(diff).toBeLessThan(1e-4);
  });

  it('--onnx-layout nchw writes a channels-first graph; with --format tfjs there is no model.onnx', async () => {
    const out = path.join(tmp, 'export-nchw');
    await cli('export', runFolder, '--out', out, '--format', 'onnx', '--onnx-layout', 'nchw');
    const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8')));
    expect(manifest.onnx?.input).toEqual({ name: 'input', layout: 'NCHW', dtype: 'float32', shape: [null, 3, SIZE, SIZE] });
    expect(manifest.onnx?.note).toContain('[batch, 3, 64, 64] (NCHW)');
    expect(maxAbsDiff(await onnxProbabilities(path.join(out, 'model.onnx'), 'NCHW'), expected)).toBeLessThan(1e-4);

    // Re-export over it as TF.js only: the previous export is replaced, model.onnx and the onnx entry go.
    await cli('export', runFolder, '--out', out, '--format', 'tfjs');
    const plain = manifestSchema.parse(JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8')));
    expect(plain.onnx).toBeUndefined();
    expect(plain.files.map((f) => f.path)).not.toContain('model.onnx');
    await expect(readFile(path.join(out, 'model.onnx'))).rejects.toThrow(/ENOENT/);
    expect((await readFile(path.join(out, 'README.md'), 'utf8')).includes('## ONNX')).toBe(false);

    await expect(cli('export', runFolder, '--out', path.join(tmp, 'x'), '--onnx-layout', 'nhcw')).rejects.toThrow(/expected NHWC or NCHW/);
    await expect(cli('export', runFolder, '--out', path.join(tmp, 'x'), '--format', 'pt')).rejects.toThrow(/tfjs, onnx/);
  });
});
