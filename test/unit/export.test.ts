// Export folder mechanics (atomic write, replace, refuse), model-folder validation, model card and CSV
// formatting — on a small real TF.js classifier so that each case runs fast. A disk that fills up (a
// tmpfs mounted for the test) is in test/integration/export-disk-full.test.ts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile, unlink, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { exportClassifier } from '../../main/engine/export';
import { loadExportedModel } from '../../main/engine/predict';
import { renderModelCard, wilsonInterval } from '../../main/engine/model-card';
import { describePreprocessing, manifestSchema, type WrittenManifest } from '../../main/engine/refit-manifest';
import { csvField, csvRows } from '../../main/host/commands/predict';
import { PREPROCESSING } from '../../models/catalog';
import { LABELS, META, smallClassifier } from '../fixtures/small-classifier';

let tmp: string;
let model: tf.LayersModel;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-export-unit-'));
  model = smallClassifier();
});

afterAll(async () => {
  model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** Hidden leftovers (temporary or set-aside folders) next to an export. */
const siblingsOf = async (dir: string) => (await readdir(path.dirname(dir))).filter((n) => n.startsWith('.'));

describe('exportClassifier', () => {
  it('writes model.json, shards, refit.json and README.md with sizes and hashes, without private paths', async () => {
    const out = path.join(tmp, 'fresh', 'model');
    const report = await exportClassifier(model, META, out);
    expect(report).toMatchObject({ outDir: out, replaced: false, labels: LABELS, backbone: 'resnet18', valAccuracy: 5 / 6 });
    const names = (await readdir(out)).sort();
    expect(names).toEqual(['README.md', 'group1-shard1of1.bin', 'model.json', 'model.onnx', 'refit.json']);
    expect(report.files.map((f) => f.path)).toEqual(['model.json', 'group1-shard1of1.bin', 'model.onnx', 'README.md', 'refit.json']);
    const manifestText = await readFile(path.join(out, 'refit.json'), 'utf8');
    const manifest = manifestSchema.parse(JSON.parse(manifestText));
    expect(manifest.files.map((f) => f.path)).toEqual(['model.json', 'group1-shard1of1.bin', 'model.onnx', 'README.md']);
    for (const f of manifest.files) expect((await stat(path.join(out, f.path))).size).toBe(f.bytes);
    expect(manifestText).not.toContain('/home/someone/private');
    expect(manifest.training).toMatchObject({ misclassifiedCount: 1, runId: 'run-unit' });
    expect(await siblingsOf(out)).toEqual([]);
  });

  it('an export without model.onnx (--format tfjs, or an older Refit) still predicts, through TF.js started on demand', async () => {
    const out = path.join(tmp, 'tfjs-only');
    await exportClassifier(model, META, out, { onnx: false });
    expect(await readdir(out)).not.toContain('model.onnx');
    let prepared = 0;
    const loaded = await loadExportedModel(out, { prepareTfjs: async () => void prepared++ });
    expect(prepared).toBe(1);
    expect(loaded.model).toBeDefined();
    loaded.dispose();
  });

  it('exports into an existing empty folder', async () => {
    const out = path.join(tmp, 'empty');
    await mkdir(out);
    await exportClassifier(model, META, out);
    expect(await readdir(out)).toContain('refit.json');
  });

  it('replaces a previous Refit export, and the new one loads', async () => {
    const out = path.join(tmp, 'replace');
    await exportClassifier(model, META, out);
    const other = smallClassifier(32);
    const report = await exportClassifier(other, { ...META, labels: ['a', 'b', 'c'] }, out);
    other.dispose();
    expect(report.replaced).toBe(true);
    const loaded = await loadExportedModel(out, { runtime: 'tfjs' });
    expect(loaded.labels).toEqual(['a', 'b', 'c']);
    expect(loaded.model!.getLayer('head_hidden').getWeights()[0].shape).toEqual([8, 32]);
    loaded.dispose();
    expect(await siblingsOf(out)).toEqual([]);
  });

  it('refuses a non-empty folder that is not a Refit export, and a file, touching nothing', async () => {
    const out = path.join(tmp, 'users-folder');
    await mkdir(out);
    await writeFile(path.join(out, 'thesis.txt'), 'precious');
    await expect(exportClassifier(model, META, out)).rejects.toThrow(/Refusing to export to .*users-folder.*not empty.*not a previous Refit export/);
    expect(await readdir(out)).toEqual(['thesis.txt']);
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'x');
    await expect(exportClassifier(model, META, file)).rejects.toThrow(/a-file: it exists and is not a folder/);
    expect(await siblingsOf(out)).toEqual([]);
  });

  it('refuses a model whose outputs do not match the labels', async () => {
    await expect(exportClassifier(model, { ...META, labels: ['a', 'b'] }, path.join(tmp, 'mismatch'))).rejects.toThrow(/3 outputs but there are 2 labels/);
  });

  it('stops when cancelled and leaves nothing behind', async () => {
    const out = path.join(tmp, 'cancelled');
    const controller = new AbortController();
    const run = exportClassifier(model, META, out, {
      signal: controller.signal,
      onProgress: (p) => p.phase === 'write' && controller.abort(new Error('user cancelled')),
    });
    await expect(run).rejects.toThrow('user cancelled');
    await expect(stat(out)).rejects.toThrow();
    expect(await siblingsOf(out)).toEqual([]);
  });
});

describe('leftovers of a crashed export', () => {
  it('a half-written temp folder is removed; an export set aside mid-swap is put back, then replaced', async () => {
    const parent = path.join(tmp, 'crashed');
    const out = path.join(parent, 'model');
    await exportClassifier(model, META, out);
    // As a crash between the two renames of a replacement leaves it: the old export set aside, no new one.
    const aside = path.join(parent, '.model.999999.deadbeef.old');
    await rename(out, aside);
    const partial = path.join(parent, '.model.999999.cafef00d.tmp');
    await mkdir(partial);
    await writeFile(path.join(partial, 'group1-shard1of1.bin'), 'partial');
    const report = await exportClassifier(model, { ...META, labels: ['x', 'y', 'z'] }, out);
    expect(report.replaced).toBe(true);
    expect(await readdir(parent)).toEqual(['model']);
  });
});

describe('loadExportedModel rejects folders that are not usable Refit exports', () => {
  let good: string;
  beforeAll(async () => {
    good = path.join(tmp, 'good');
    await exportClassifier(model, META, good);
  });

  async function broken(name: string, damage: (dir: string) => Promise<void>): Promise<string> {
    const dir = path.join(tmp, name);
    await cp(good, dir, { recursive: true });
    await damage(dir);
    return dir;
  }

  it('a missing folder, a file, and a folder without refit.json', async () => {
    await expect(loadExportedModel(path.join(tmp, 'nope'))).rejects.toThrow(/Model folder .*nope does not exist/);
    await expect(loadExportedModel(path.join(good, 'model.json'))).rejects.toThrow(/model\.json is not a Refit model folder: it is a file/);
    const dir = await broken('no-manifest', (d) => unlink(path.join(d, 'refit.json')));
    await expect(loadExportedModel(dir)).rejects.toThrow(/no-manifest is not a Refit model folder: it has no refit\.json/);
  });

  it('a refit.json of another format, of a newer version, or missing fields', async () => {
    const edit = (patch: (m: Record<string, unknown>) => void) => async (d: string) => {
      const m = JSON.parse(await readFile(path.join(d, 'refit.json'), 'utf8'));
      patch(m);
      await writeFile(path.join(d, 'refit.json'), JSON.stringify(m));
    };
    const run = await broken('run-json', edit((m) => (m.format = 'refit-run')));
    await expect(loadExportedModel(run)).rejects.toThrow(/run-json is not a Refit model folder: .*refit\.json is not a Refit model file: its format is "refit-run", expected "refit-model"/);
    const newer = await broken('newer', edit((m) => (m.version = 2)));
    await expect(loadExportedModel(newer)).rejects.toThrow(/written by a newer Refit \(model format version 2\); this Refit reads version 1/);
    const noLabels = await broken('no-labels', edit((m) => delete m.labels));
    await expect(loadExportedModel(noLabels)).rejects.toThrow(/no-labels is not a Refit model folder: .*refit\.json is not a valid Refit model file: .*labels/);
  });

  it('missing or modified model.onnx (which serves prediction without TF.js)', async () => {
    const loaded = await loadExportedModel(good, { prepareTfjs: () => Promise.reject(new Error('TF.js must not be needed')) });
    expect(loaded.forward.runtime).toBe('onnxruntime');
    expect(loaded.model).toBeUndefined();
    loaded.dispose();
    const noOnnx = await broken('no-onnx', (d) => unlink(path.join(d, 'model.onnx')));
    await expect(loadExportedModel(noOnnx)).rejects.toThrow(/no-onnx\/model\.onnx/);
    // Flipped after the good folder's optimised graph was cached under the same SHA-256: still detected.
    const flipped = await broken('flipped-onnx', async (d) => {
      const file = path.join(d, 'model.onnx');
      const bytes = await readFile(file);
      bytes[bytes.length - 100] ^= 0xff;
      await writeFile(file, bytes);
    });
    await expect(loadExportedModel(flipped)).rejects.toThrow(/flipped-onnx\/model\.onnx is corrupt: its SHA-256 does not match/);
  });

  it('corrupt model.json, missing shard, modified shard (the TF.js files)', async () => {
    const json = await broken('bad-json', (d) => writeFile(path.join(d, 'model.json'), '{"modelTopology": {'));
    await expect(loadExportedModel(json, { runtime: 'tfjs' })).rejects.toThrow(/bad-json\/model\.json is not valid JSON/);
    const noShard = await broken('no-shard', (d) => unlink(path.join(d, 'group1-shard1of1.bin')));
    await expect(loadExportedModel(noShard, { runtime: 'tfjs' })).rejects.toThrow(/Weight shard .*no-shard\/group1-shard1of1\.bin is missing/);
    const flipped = await broken('flipped', async (d) => {
      const file = path.join(d, 'group1-shard1of1.bin');
      const bytes = await readFile(file);
      bytes[100] ^= 0xff;
      await writeFile(file, bytes);
    });
    await expect(loadExportedModel(flipped, { runtime: 'tfjs' })).rejects.toThrow(/flipped\/group1-shard1of1\.bin is corrupt: its SHA-256 does not match/);
  });

  it('a label count that does not match the model outputs', async () => {
    const dir = await broken('two-labels', async (d) => {
      const m = JSON.parse(await readFile(path.join(d, 'refit.json'), 'utf8'));
      m.labels = ['cats', 'dogs'];
      await writeFile(path.join(d, 'refit.json'), JSON.stringify(m));
    });
    await expect(loadExportedModel(dir)).rejects.toThrow(/two-labels: the model has 3 outputs but refit\.json lists 2 labels/);
    await expect(loadExportedModel(dir, { runtime: 'tfjs' })).rejects.toThrow(/two-labels: the model has 3 outputs but refit\.json lists 2 labels/);
  });
});

describe('model card and text formats', () => {
  it('describes every class with precision and recall, the accuracy, the preprocessing and usage', async () => {
    const out = path.join(tmp, 'card');
    await exportClassifier(model, META, out);
    const manifest = JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8')) as WrittenManifest;
    const card = await readFile(path.join(out, 'README.md'), 'utf8');
    expect(card).toBe(renderModelCard(manifest));
    expect(card).toContain('| cats | 66.7% | 100.0% | 80.0% | 2 |');
    expect(card).toContain('| red \\| blue birds | 100.0% | 50.0% | 66.7% | 2 |');
    expect(card).toMatch(/Validation accuracy: \*\*83\.3%\*\* on 6 images \(95% interval \d+\.\d%–\d+\.\d%\)/);
    expect(card).toContain('refit predict');
    expect(card).toContain("tf.loadLayersModel('http://localhost:8080/model.json')");
    expect(card).toContain('square.div(255).sub([0.485, 0.456, 0.406]).div([0.229, 0.224, 0.225])');
    expect(card).toContain('random weights');
    expect(card).toMatch(/Few validation images for cats, dogs, red \| blue birds/);
  });

  it('describes each preprocessing mode exactly', () => {
    expect(describePreprocessing(PREPROCESSING.caffe, 224)).toMatch(/224×224.*BGR.*\[103\.939, 116\.779, 123\.68\].*no scaling/);
    expect(describePreprocessing(PREPROCESSING.torch, 64)).toMatch(/divide by 255.*\[0\.485, 0\.456, 0\.406\].*\[0\.229, 0\.224, 0\.225\]/);
    expect(describePreprocessing(PREPROCESSING.tf, 299)).toMatch(/127\.5.*\[-1, 1\]/);
    expect(describePreprocessing(PREPROCESSING.tf, 299)).toMatch(/padded with white/);
  });

  it('gives a sensible accuracy interval', () => {
    const [lo, hi] = wilsonInterval(0.9, 100);
    expect(lo).toBeCloseTo(0.826, 2);
    expect(hi).toBeCloseTo(0.945, 2);
    expect(wilsonInterval(1, 5)[1]).toBe(1);
  });

  it('quotes CSV fields that need it', () => {
    expect(csvField('plain.png')).toBe('plain.png');
    expect(csvField('a, b.png')).toBe('"a, b.png"');
    expect(csvField('say "cheese".png')).toBe('"say ""cheese"".png"');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(0.25)).toBe('0.25');
    expect(csvRows({ file: 'x, y.png', top: [{ label: 'a', probability: 0.75 }, { label: 'b "c"', probability: 0.25 }] })).toBe(
      '"x, y.png",1,a,0.75,\n"x, y.png",2,"b ""c""",0.25,\n',
    );
    expect(csvRows({ file: 'bad.png', top: [], error: 'Cannot decode image bad.png: corrupt' })).toBe('bad.png,,,,Cannot decode image bad.png: corrupt\n');
  });
});
