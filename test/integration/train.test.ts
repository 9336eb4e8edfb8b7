// Real training on real photos, in a real child process: head mode with ImageNet ResNet-50, fine-tune,
// full training, cancel, resume, a crash of the training process, continuing with a new class, export.
import { describe, it, expect, beforeAll } from 'vitest';
import { cp, mkdtemp, mkdir, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunRecord, TrainConfig, TrainEvent } from '../../main/api/training';
import { addSources, createProject, readRun, runDir, scanProject, newRunId, type Project } from '../../main/engine/project';
import { startTraining, type TrainResult } from '../../main/engine/train-process';
import { exportRun } from '../../main/engine/export';
import { loadExportedModel, predictAll } from '../../main/engine/predict';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import { readTfjsFolder } from '../../models/tfjs-folder';
import { decodeImage } from '../../main/engine/image-decode';
import { preprocess } from '../../models/preprocess';
import { loadImagenetResNet50 } from '../../models/imagenet';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-train-'));
});

const base: Omit<TrainConfig, 'backbone' | 'weights' | 'mode'> = {
  head: { kind: 'linear' },
  epochs: 3,
  batchSize: 16,
  valSplit: 0.25,
  seed: 7,
  augment: false,
  patience: 5,
  classWeights: true,
};

/** A small dataset: the first `n` photos of each named class, copied into a temp folder. */
async function subset(name: string, classes: string[], n: number): Promise<string> {
  const root = path.join(tmp, name);
  for (const c of classes) {
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, n);
    await mkdir(path.join(root, c), { recursive: true });
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(root, c, f));
  }
  return root;
}

async function projectFor(name: string, folders: string[]): Promise<Project> {
  const project = await createProject(path.join(tmp, `${name}-project`), { name });
  await addSources(project, folders);
  return project;
}

interface Started {
  runId: string;
  events: TrainEvent[];
  handle: ReturnType<typeof startTraining>;
}

async function train(
  project: Project,
  config: TrainConfig,
  extra: { resume?: string; parentRunId?: string; onEvent?: (e: TrainEvent, s: Started) => void } = {},
): Promise<Started> {
  const report = await scanProject(project);
  const runId = extra.resume ?? newRunId();
  const started = { runId, events: [] as TrainEvent[] } as Started;
  started.handle = startTraining(
    {
      projectDir: project.dir,
      runId,
      config,
      images: report.images,
      ...(extra.resume ? { resume: true } : {}),
      ...(extra.parentRunId ? { parentRunId: extra.parentRunId } : {}),
    },
    {
      onEvent: (e) => {
        started.events.push(e);
        extra.onEvent?.(e, started);
      },
    },
  );
  return started;
}

async function loadCheckpoint(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tfjsFolderHandler(dir));
}

function backboneWeights(model: tf.LayersModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const layer of model.layers) {
    if (layer.name.startsWith('head_')) continue;
    layer.getWeights().forEach((w, i) => out.set(`${layer.name}/${i}`, w.dataSync() as Float32Array));
  }
  return out;
}

describe('training', () => {
  it('head mode on ImageNet ResNet-50 features reaches ≥ 90% validation accuracy on photos5, and exports', async () => {
    const project = await projectFor('photos5', [PHOTOS]);
    // The CLI's defaults (seed 42, 20% validation), without augmentation to keep the test short.
    // Over 14 seeds this linear probe scores 0.87–1.00 (mean ≈ 0.93) on photos5's 30-image validation sets.
    const run = await train(project, { ...base, backbone: 'resnet50', weights: 'imagenet', mode: 'head', epochs: 15, valSplit: 0.2, seed: 42 });
    const result = await run.handle.done;
    expect(result.status).not.toBe('cancelled');
    expect(result.metrics!.valAccuracy).toBeGreaterThanOrEqual(0.9);

    const record = await readRun(project.dir, run.runId);
    expect(record.labels).toEqual(['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    expect(record.trainImages + record.valImages).toBe(168);
    expect(record.metrics!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(record.valImages);
    expect(record.metrics!.perClass.map((c) => c.name)).toEqual(record.labels);
    const wrong = record.valImages - record.metrics!.confusion.reduce((a, row, i) => a + row[i], 0);
    expect(record.metrics!.misclassified).toHaveLength(wrong);
    // Progress events carried phase, ETA and throughput while extracting features.
    const extract = run.events.filter((e): e is Extract<TrainEvent, { type: 'progress' }> => e.type === 'progress' && e.phase === 'extract');
    expect(extract.some((e) => e.etaSeconds !== undefined && e.imagesPerSec! > 0)).toBe(true);

    // A second run on the same data reuses the cached features: no extraction work.
    const again = await train(project, { ...base, backbone: 'resnet50', weights: 'imagenet', mode: 'head', epochs: 2, valSplit: 0.2, seed: 42 });
    await again.handle.done;
    const extracted = again.events.filter((e) => e.type === 'progress' && e.phase === 'extract');
    expect(extracted).toHaveLength(1);
    expect((extracted[0] as { message?: string }).message).toMatch(/cached/);

    // Export → plain tfjs loads it → same predictions as Refit's predictor and as the checkpoint.
    const out = path.join(tmp, 'photos5-model');
    await exportRun(runDir(project.dir, run.runId), out);
    const folder = await readTfjsFolder(out);
    const plain = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: folder.modelTopology, weightSpecs: folder.weightSpecs, weightData: folder.weightData }),
    );
    const samples = ['birds/owl.png', 'fruit/banana.png', 'mammals/elephant.png'].map((f) => path.join(PHOTOS, f));
    const manifest = JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8'));
    const exported = await loadExportedModel(out);
    const refitPredictions = await predictAll(exported, samples, { topK: 1 });
    for (const [i, file] of samples.entries()) {
      const pixels = await decodeImage(file, manifest.inputSize);
      const probs = tf.tidy(() => plain.predict(preprocess(tf.tensor4d(pixels, [1, manifest.inputSize, manifest.inputSize, 3]), record.preprocessing)) as tf.Tensor);
      const values = await probs.data();
      const top = values.indexOf(Math.max(...values));
      expect(refitPredictions[i].top[0].label).toBe(manifest.labels[top]);
      expect(refitPredictions[i].top[0].probability).toBeCloseTo(values[top], 5);
    }
    exported.dispose();
  }, 600_000);

  it('fine-tune mode trains the head, then the last stage, and improves on its first epoch', async () => {
    const data = await subset('ft', ['birds', 'fruit'], 14);
    const project = await projectFor('ft', [data]);
    const run = await train(project, { ...base, backbone: 'resnet50', weights: 'imagenet', mode: 'finetune', inputSize: 64, epochs: 2, batchSize: 8 });
    const result = await run.handle.done;
    expect(result.status).toBe('completed');
    const record = await readRun(project.dir, run.runId);
    expect(record.history.map((h) => h.phase)).toEqual(['train', 'train', 'finetune', 'finetune']);
    const finetune = record.history.filter((h) => h.phase === 'finetune');
    expect(finetune[0].learningRate).toBeCloseTo(record.config.learningRate / 10);
    const best = Math.min(...record.history.map((h) => h.valLoss));
    expect(best).toBeLessThan(record.history[0].valLoss);

    // After fine-tuning only the last stage moved; every BatchNorm kept its ImageNet statistics.
    const tuned = await loadCheckpoint(path.join(runDir(project.dir, run.runId), 'last'));
    const imagenet = await loadImagenetResNet50({ inputSize: 64 });
    const original = new Map(imagenet.backbone.layers.map((l) => [l.name, l.getWeights().map((w) => w.dataSync())]));
    let changedStage4 = 0;
    for (const layer of tuned.layers) {
      const before = original.get(layer.name);
      if (!before || before.length === 0) continue;
      const after = layer.getWeights().map((w) => w.dataSync());
      const same = after.every((w, i) => w.every((v, j) => v === before[i][j]));
      if (layer.getClassName() === 'BatchNormalization' && !layer.name.startsWith('stage4_')) expect(same, layer.name).toBe(true);
      else if (layer.getClassName() === 'BatchNormalization') {
        // gamma/beta may train; the moving mean and variance (weights 2 and 3) must not move.
        expect(after[2].every((v, j) => v === before[2][j]), `${layer.name} moving mean`).toBe(true);
        expect(after[3].every((v, j) => v === before[3][j]), `${layer.name} moving variance`).toBe(true);
      } else if (layer.name.startsWith('stage4_')) changedStage4 += same ? 0 : 1;
      else expect(same, layer.name).toBe(true);
    }
    expect(changedStage4).toBeGreaterThan(0);
  }, 600_000);

  it('full mode trains every layer of a small backbone and its training loss falls', async () => {
    const data = await subset('full', ['birds', 'fruit'], 16);
    const project = await projectFor('full', [data]);
    const run = await train(project, { ...base, backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: 32, epochs: 4, batchSize: 8, learningRate: 1e-3 });
    const result = await run.handle.done;
    expect(result.status).toBe('completed');
    const record = await readRun(project.dir, run.runId);
    expect(record.history).toHaveLength(4);
    expect(record.history.at(-1)!.loss).toBeLessThan(record.history[0].loss);
  }, 600_000);

  it('cancel stops within a batch and keeps the best checkpoint; resume finishes the run', async () => {
    const data = await subset('cancel', ['birds', 'fruit'], 16);
    const project = await projectFor('cancel', [data]);
    const config: TrainConfig = { ...base, backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: 32, epochs: 4, batchSize: 4, learningRate: 1e-3 };
    let cancelledAt = -1;
    const run = await train(project, config, {
      onEvent: (e, s) => {
        // Cancel in the middle of the second epoch.
        if (cancelledAt < 0 && e.type === 'progress' && e.phase === 'finetune' && e.epoch === 2 && e.batch === 2) {
          cancelledAt = s.events.length;
          s.handle.cancel();
        }
      },
    });
    const result = await run.handle.done;
    expect(result.status).toBe('cancelled');
    // Nothing beyond the batch in flight: at most one more progress event, no further epoch.
    const after = run.events.slice(cancelledAt).filter((e) => e.type === 'progress' && e.phase === 'finetune');
    expect(after.length).toBeLessThanOrEqual(1);
    let record = await readRun(project.dir, run.runId);
    expect(record.status).toBe('cancelled');
    expect(record.history).toHaveLength(1);
    const best = await loadCheckpoint(path.join(runDir(project.dir, run.runId), 'best'));
    expect(best.outputs[0].shape).toEqual([null, 2]);

    const resumed = await train(project, config, { resume: run.runId });
    const done = await resumed.handle.done;
    expect(done.status).toBe('completed');
    record = await readRun(project.dir, run.runId);
    expect(record.status).toBe('completed');
    expect(record.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
  }, 600_000);

  it('a crash of the training process is reported, leaves the project intact and can be resumed', async () => {
    const data = await subset('crash', ['birds', 'fruit'], 16);
    const project = await projectFor('crash', [data]);
    const config: TrainConfig = { ...base, backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: 32, epochs: 3, batchSize: 4, learningRate: 1e-3 };
    const run = await train(project, config, {
      onEvent: (e, s) => {
        if (e.type === 'epoch' && e.record.epoch === 1) s.handle.kill();
      },
    });
    await expect(run.handle.done).rejects.toThrow(/training process was killed \(SIGKILL.*The project is intact/);
    const record: RunRecord = await readRun(project.dir, run.runId);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/SIGKILL/);
    expect(record.history.length).toBeGreaterThanOrEqual(1);
    // The project still opens and scans; the best checkpoint loads.
    expect((await scanProject(project)).images).toHaveLength(32);
    await loadCheckpoint(path.join(runDir(project.dir, run.runId), 'best'));

    const resumed = await train(project, config, { resume: run.runId });
    const result: TrainResult = await resumed.handle.done;
    expect(result.status).toBe('completed');
    expect((await readRun(project.dir, run.runId)).history.map((h) => h.epoch)).toEqual([1, 2, 3]);
  }, 600_000);

  it('continues a finished run after a class is added: the head grows, the backbone keeps its weights', async () => {
    const data = await subset('grow', ['birds', 'fruit'], 10);
    const project = await projectFor('grow', [data]);
    const config: TrainConfig = { ...base, backbone: 'resnet18', weights: 'none', mode: 'head', inputSize: 32, epochs: 2 };
    const first = await train(project, config);
    await first.handle.done;

    const extra = await subset('grow-extra', ['flowers'], 10);
    await addSources(project, [path.join(extra, 'flowers')]);
    const second = await train(project, config, { parentRunId: first.runId });
    const result = await second.handle.done;
    expect(result.status).toBe('completed');
    const record = await readRun(project.dir, second.runId);
    expect(record.parent).toBe(first.runId);
    expect(record.labels).toEqual(['birds', 'fruit', 'flowers']);

    const parentModel = await loadCheckpoint(path.join(runDir(project.dir, first.runId), 'best'));
    const childModel = await loadCheckpoint(path.join(runDir(project.dir, second.runId), 'best'));
    expect(childModel.outputs[0].shape).toEqual([null, 3]);
    const before = backboneWeights(parentModel);
    const after = backboneWeights(childModel);
    expect(after.size).toBe(before.size);
    for (const [name, values] of before) expect(after.get(name), name).toEqual(values);
  }, 600_000);

  it('refuses a configuration it cannot train, naming the field', async () => {
    const data = await subset('bad', ['birds', 'fruit'], 6);
    const project = await projectFor('bad', [data]);
    const run = await train(project, { ...base, backbone: 'resnet18', weights: 'imagenet', mode: 'head' });
    await expect(run.handle.done).rejects.toThrow(/weights: resnet18 has no ImageNet weights/);
    const tiny = await train(project, { ...base, backbone: 'resnet18', weights: 'none', mode: 'head', inputSize: 8 });
    await expect(tiny.handle.done).rejects.toThrow(/inputSize: ResNet-18 \(resnet18\) needs an input of at least 32×32 pixels; got 8×8/);
  }, 120_000);
});
