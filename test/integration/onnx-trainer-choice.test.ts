// Which engine trains the network phase: onnxruntime by default on CPU, TF.js with a CUDA backend or when
// asked, TF.js with a warning when the training-graph builder refuses the model, and a clear error when
// onnx is forced but cannot run.
import { describe, it, expect, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import type { TrainEvent } from '../../main/api/training';
import { doctor } from '../../main/engine/doctor';
import os from 'node:os';
import { NotEnoughMemory, openNetworkEngine, type NetworkEngineOptions } from '../../main/engine/training/network-engine';
import { parseTrainerRequest, preliminaryTrainer, TRAINER_ENV, trainerReport } from '../../main/engine/training/train-engine';

afterEach(() => {
  delete process.env[TRAINER_ENV];
});

/** A small classifier; `unsupported` puts in a layer the ONNX training graph does not take (UpSampling2D). */
function classifier(unsupported: boolean, dropout = 0): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  if (unsupported) x = tf.layers.upSampling2d({ size: [2, 2] }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  if (dropout) x = tf.layers.dropout({ rate: dropout, name: 'head_dropout' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: unsupported ? 'odd_classifier' : 'small_classifier' });
}

function options(model: tf.LayersModel, events: TrainEvent[], trainer?: 'onnx' | 'tfjs'): NetworkEngineOptions {
  return {
    trainable: model, residentParams: model.countParams(), modelName: model.name, batchSize: 4, trainImages: 6, numClasses: 3,
    classWeights: tf.ones([3]) as tf.Tensor1D, learningRate: 1e-3, dropoutSeed: 1, hooks: { emit: (e) => events.push(e) },
    ...(trainer ? { trainer } : {}),
  };
}

describe('choosing the network-phase engine', () => {
  it('defaults to onnxruntime on CPU, TF.js with node-gpu or when asked', async () => {
    expect(await preliminaryTrainer('wasm')).toMatchObject({ engine: 'onnxruntime', reason: expect.stringMatching(/default on CPU/) });
    expect(await preliminaryTrainer('node-gpu')).toMatchObject({ engine: 'tfjs', reason: expect.stringMatching(/CUDA/) });
    expect(await preliminaryTrainer('node-gpu', 'onnx')).toMatchObject({ engine: 'onnxruntime', reason: 'requested (--trainer onnx)' });
    process.env[TRAINER_ENV] = 'tfjs';
    expect(await preliminaryTrainer('wasm')).toEqual({ engine: 'tfjs', reason: `requested (${TRAINER_ENV}=tfjs)`, forcedBy: `${TRAINER_ENV}=tfjs` });
    // The job's own choice (--trainer) wins over the environment.
    expect((await preliminaryTrainer('wasm', 'onnx')).engine).toBe('onnxruntime');
    expect(() => parseTrainerRequest('torch', '--trainer')).toThrow('--trainer: unknown trainer "torch"; expected one of onnx, tfjs');
    process.env[TRAINER_ENV] = 'torch';
    // doctor and the badge report it instead of throwing.
    expect(await trainerReport('wasm')).toEqual({ engine: 'tfjs', reason: expect.stringMatching(/^REFIT_TRAINER: unknown trainer "torch".*runs will fail/) });
  });

  it('refit doctor says which engine trains and why', async () => {
    expect((await doctor()).trainer).toEqual({ engine: 'onnxruntime', reason: expect.stringMatching(/^onnxruntime-node loads: the default on CPU/) });
    process.env[TRAINER_ENV] = 'tfjs';
    expect((await doctor()).trainer).toEqual({ engine: 'tfjs', reason: 'requested (REFIT_TRAINER=tfjs)' });
  });

  it('trains a supported model in onnxruntime, and the weights written back move', async () => {
    const model = classifier(false);
    const before = model.getWeights().map((w) => w.dataSync().slice());
    const events: TrainEvent[] = [];
    const engine = await openNetworkEngine(options(model, events));
    expect(engine.engine).toBe('onnxruntime');
    const x = tf.randomUniform([4, 8, 8, 3], -1, 1, 'float32', 3);
    const a = await engine.step(x, [0, 1, 2, 0]);
    // The last, smaller batch goes through its own session.
    const b = await engine.step(x.slice(0, 2), [0, 1]);
    expect(a.loss).toBeGreaterThan(0);
    expect(b.loss).toBeGreaterThan(0);
    engine.sync();
    await engine.dispose();
    const after = model.getWeights().map((w) => w.dataSync());
    expect(after.every((w, i) => w.some((v, j) => v !== before[i][j]))).toBe(true);
    expect(events).toEqual([]);
    x.dispose();
  });

  it('draws dropout masks from the seeded generator: the same seed trains the same weights, another seed others', async () => {
    const trained = async (seed: number) => {
      const model = classifier(false, 0.5);
      const engine = await openNetworkEngine({ ...options(model, []), dropoutSeed: seed });
      expect(engine.engine).toBe('onnxruntime');
      const x = tf.randomUniform([4, 8, 8, 3], -1, 1, 'float32', 4);
      for (let i = 0; i < 3; i++) await engine.step(x, [0, 1, 2, 0]);
      engine.sync();
      await engine.dispose();
      x.dispose();
      const w = model.getWeights().map((t) => Array.from(t.dataSync()));
      tf.dispose(model.weights.map((v) => v.read()));
      return w;
    };
    const a = await trained(5);
    expect(await trained(5)).toEqual(a);
    expect(await trained(6)).not.toEqual(a);
  });

  it('refit train refuses an unknown --trainer', async () => {
    const bin = path.resolve(__dirname, '../../bin/refit.mjs');
    const err = await promisify(execFile)(process.execPath, [bin, 'train', '.', '--backbone', 'resnet18', '--trainer', 'torch']).then(
      () => null,
      (e: { stderr: string; code: number }) => e,
    );
    expect(err?.code).not.toBe(0);
    expect(err?.stderr).toMatch(/--trainer <engine>' argument 'torch' is invalid\. Allowed choices are onnx, tfjs/);
  }, 60_000);

  it('falls back to TF.js with a warning when the graph builder refuses the model, and refuses when onnx is forced', async () => {
    const events: TrainEvent[] = [];
    const engine = await openNetworkEngine(options(classifier(true), events));
    expect(engine.engine).toBe('tfjs');
    expect(engine.reason).toMatch(/onnxruntime trainer cannot train odd_classifier: .*up_sampling2d.*not supported/i);
    expect(events).toEqual([{ type: 'warning', message: expect.stringMatching(/cannot train odd_classifier.*training in TF\.js instead$/) }]);
    await engine.dispose();
    await expect(openNetworkEngine(options(classifier(true), [], 'onnx'))).rejects.toThrow(/^--trainer onnx: the onnxruntime trainer cannot train odd_classifier: /);
    process.env[TRAINER_ENV] = 'onnx';
    await expect(openNetworkEngine(options(classifier(true), []))).rejects.toThrow(/^REFIT_TRAINER=onnx: the onnxruntime trainer cannot train odd_classifier/);
  });
  it('refuses, with numbers and before training, a run the machine cannot hold; the same network with a small batch opens', async () => {
    // 64 feature maps of 1024² per image (≈ 0.5 GB kept for the backward pass): 1,024 images need hundreds of GiB.
    const input = tf.input({ shape: [1024, 1024, 3] });
    const conv = tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(conv) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor, name: 'wide_classifier' });
    const events: TrainEvent[] = [];
    const big = { ...options(model, events), batchSize: 1024, trainImages: 2000 };
    const refusal = await openNetworkEngine(big).then(() => undefined, (err: Error) => err);
    expect(refusal).toBeInstanceOf(NotEnoughMemory);
    const gib = (os.totalmem() / 2 ** 30).toFixed(1);
    expect(refusal!.message).toMatch(new RegExp(`^training wide_classifier with batches of 1024 needs about \\d+\\.\\d GiB \\(weights and optimizer [\\d.]+, activations [\\d.]+, runtime [\\d.]+\\), but this machine has ${gib.replace('.', '\\.')} GiB; a batch of \\d+ would fit \\(lower the batch size or the input size\\)$`));
    const fits = Number(/a batch of (\d+) would fit/.exec(refusal!.message)![1]);
    expect(fits).toBeGreaterThanOrEqual(1);
    expect(fits).toBeLessThan(1024);
    // Not retried on TF.js, whose heap is smaller still.
    expect(events).toEqual([]);
    const engine = await openNetworkEngine({ ...big, batchSize: Math.min(fits, 2) });
    expect(engine.engine).toBe('onnxruntime');
    await engine.dispose();
  });
});
