import { mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importWeights, weightSourceFromTensors } from '../../models/import-weights';
import { readTfjsFolder, readTfjsWeights, tfjsFolderHandler } from '../../models/tfjs-folder';

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-import-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A small conv net: conv → BN → conv → pool → dense. `prefix` renames every layer. */
function smallNet(prefix: string, { width = 4, classes = 3, classifier = true } = {}): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ name: `${prefix}conv1`, filters: width, kernelSize: 3, useBias: false }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: `${prefix}bn1` }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: `${prefix}conv2`, filters: 6, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: `${prefix}pool` }).apply(x) as tf.SymbolicTensor;
  if (classifier) x = tf.layers.dense({ name: `${prefix}fc`, units: classes }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: `${prefix}net` });
}

/** Gives every weight distinct non-default values so a copy is detectable. */
function randomize(model: tf.LayersModel, seed: number): void {
  model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed + i)));
}

async function save(model: tf.LayersModel, name: string): Promise<string> {
  const dir = path.join(tmp, name);
  // Small shards so that the folder has several, like real converted models.
  await model.save(tfjsFolderHandler(dir, { shardBytes: 256 }));
  return dir;
}

const allWeights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
/** Weight values by layer/weight name, e.g. `bn1/gamma`, ignoring any layer-name prefix. */
const namedWeights = (m: tf.LayersModel, prefix = '') =>
  Object.fromEntries(m.layers.flatMap((l) => l.weights.map((w) => [w.originalName.slice(prefix.length), Array.from(w.read().dataSync())])));

describe('tfjs folder', () => {
  it('round-trips a model through tf.loadLayersModel and reads weights by name', async () => {
    const model = smallNet('');
    randomize(model, 1);
    const dir = await save(model, 'roundtrip');
    const folder = await readTfjsFolder(dir);
    expect(folder.modelJson.weightsManifest[0].paths.length).toBeGreaterThan(1);
    const loaded = await tf.loadLayersModel(tfjsFolderHandler(dir));
    expect(allWeights(loaded)).toEqual(allWeights(model));
    const weights = await readTfjsWeights(path.join(dir, 'model.json'));
    expect([...weights.keys()]).toContain('bn1/moving_variance');
    expect(weights.get('conv1/kernel')!.shape).toEqual([3, 3, 3, 4]);
    tf.dispose([...weights.values()]);
  });

  it('names the missing model.json, a non-layers model and bad JSON', async () => {
    const empty = path.join(tmp, 'empty');
    await rm(empty, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(empty));
    await expect(readTfjsFolder(empty)).rejects.toThrow(`Not a TF.js model folder: ${path.join(empty, 'model.json')} does not exist`);

    await writeFile(path.join(empty, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }));
    await expect(readTfjsFolder(empty)).rejects.toThrow(/model\.json is not a TF\.js layers model/);

    await writeFile(path.join(empty, 'model.json'), JSON.stringify({ hello: 'world' }));
    await expect(importWeights(smallNet(''), empty)).rejects.toThrow(/model\.json is not a TF\.js model\.json/);

    await writeFile(path.join(empty, 'model.json'), '{ not json');
    await expect(readTfjsFolder(empty)).rejects.toThrow(/model\.json is not valid JSON/);
  });

  it('names a missing shard and a truncated shard', async () => {
    const model = smallNet('');
    const missingDir = await save(model, 'missing-shard');
    const shards = (await readTfjsFolder(missingDir)).modelJson.weightsManifest[0].paths;
    await unlink(path.join(missingDir, shards[1]));
    await expect(importWeights(smallNet(''), missingDir)).rejects.toThrow(`Weight shard ${path.join(missingDir, shards[1])} is missing`);

    const truncDir = await save(model, 'truncated-shard');
    const last = path.join(truncDir, shards[shards.length - 1]);
    const size = (await readFile(last)).byteLength;
    await truncate(last, size - 4);
    await expect(tf.loadLayersModel(tfjsFolderHandler(truncDir))).rejects.toThrow(`Weight shard ${last} looks truncated`);
    const middle = path.join(truncDir, shards[0]);
    await truncate(last, size);
    await truncate(middle, 100);
    await expect(readTfjsFolder(truncDir)).rejects.toThrow(`Weight shard ${middle} looks truncated`);
  });
});

describe('importWeights', () => {
  it('imports by layer name and skips the source classifier', async () => {
    const source = smallNet('');
    randomize(source, 10);
    const dir = await save(source, 'by-name');
    const target = smallNet('', { classifier: false });
    const report = await importWeights(target, dir);
    expect(report).toMatchObject({ matched: 3, byName: 3, byMap: 0, byOrder: 0, tensors: 1 + 4 + 2 });
    expect(report.skipped).toEqual([{ name: 'fc', shapes: [[6, 3], [3]] }]);
    const { 'fc/kernel': _k, 'fc/bias': _b, ...backbone } = namedWeights(source);
    expect(namedWeights(target)).toEqual(backbone);
  });

  it('imports by an explicit name map and by order when names differ', async () => {
    const source = smallNet('');
    randomize(source, 20);
    const dir = await save(source, 'by-order');

    const byOrder = smallNet('mine_');
    const report = await importWeights(byOrder, dir);
    expect(report).toMatchObject({ matched: 4, byName: 0, byOrder: 4, skipped: [] });
    expect(allWeights(byOrder)).toEqual(allWeights(source));

    const mapped = smallNet('mine_');
    const mapReport = await importWeights(mapped, dir, { nameMap: (ours) => ours.replace(/^mine_/, '') });
    expect(mapReport).toMatchObject({ matched: 4, byMap: 4, byOrder: 0 });
    expect(allWeights(mapped)).toEqual(allWeights(source));
  });

  it('orders source layers by the topology, not by the manifest (which may be alphabetical)', async () => {
    const source = smallNet('');
    randomize(source, 40);
    const loaded = await tf.loadLayersModel(tfjsFolderHandler(await save(source, 'alphabetical')));
    const named = new Map(loaded.weights.map((w) => [w.originalName, w.read()] as [string, tf.Tensor]));
    const alphabetical = new Map([...named].sort(([a], [b]) => (a < b ? -1 : 1)));
    const topology = source.toJSON(null, false);
    const weights = weightSourceFromTensors('memory', alphabetical, topology);
    expect(weights.layers.map((l) => l.name)).toEqual(['conv1', 'bn1', 'conv2', 'fc']);
    expect([...weights.layers[1].weights.keys()]).toEqual(['beta', 'gamma', 'moving_mean', 'moving_variance']);
    const target = smallNet('other_');
    expect((await importWeights(target, weights)).byOrder).toBe(4);
    expect(namedWeights(target, 'other_')).toEqual(namedWeights(source));
  });

  it('throws one error listing every layer that does not fit, and writes nothing', async () => {
    const dir = await save(smallNet('', { width: 5 }), 'wrong-shapes');
    const target = smallNet('');
    randomize(target, 30);
    const before = allWeights(target);
    const error = await importWeights(target, dir).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain(`Cannot import weights from ${path.join(dir, 'model.json')}`);
    expect(message).toContain('3 of our 4 weight-bearing layers do not fit');
    expect(message).toContain('ours conv1 [3,3,3,4] ≠ theirs conv1 kernel[3,3,3,5]');
    expect(message).toContain('ours bn1 [4] [4] [4] [4] ≠ theirs bn1 gamma[5] beta[5] moving_mean[5] moving_variance[5]');
    expect(message).toContain('ours conv2 [1,1,4,6] [6] ≠ theirs conv2 kernel[1,1,5,6] bias[6]');
    expect(message).toContain('Unused source layers:\n  theirs conv1 kernel[3,3,3,5]');
    expect(allWeights(target)).toEqual(before);

    // By order, a missing layer and a mapped name that does not exist are reported too.
    const tooBig = tf.sequential({
      name: 'big',
      layers: [tf.layers.dense({ name: 'a', units: 2, inputShape: [3] }), tf.layers.dense({ name: 'b', units: 2 })],
    });
    const tinyDir = await save(tf.sequential({ layers: [tf.layers.dense({ name: 'x', units: 2, inputShape: [3] })] }), 'tiny');
    await expect(importWeights(tooBig, tinyDir, { nameMap: { b: 'nope' } })).rejects.toThrow(
      /ours b \[2,2\] \[2\] → theirs nope: no such layer in the source/,
    );
    await expect(importWeights(tooBig, tinyDir)).rejects.toThrow(/ours b \[2,2\] \[2\]: the source has no layer left to match by order/);
  });
});
