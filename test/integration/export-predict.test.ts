// Export → load with plain TF.js → same predictions, and `refit predict` / `refit export` on real
// photos, with a real ResNet-18 classifier saved as a training run folder (run.json + best/).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import type { ClassifyRow } from '../../main/api/contract';
import type { RunRecord } from '../../main/api/training';
import { exportRun } from '../../main/engine/export';
import { decodeImage } from '../../main/engine/image-decode';
import { listImageFiles } from '../../main/engine/image-files';
import { loadExportedModel, predictAll, predictFiles, type ExportedModel } from '../../main/engine/predict';
import { registerExport } from '../../main/host/commands/export';
import type { CommandIO } from '../../main/host/commands/io';
import { registerPredict } from '../../main/host/commands/predict';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { preprocess } from '../../models/preprocess';
import { getBackbone } from '../../models/registry';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import { makeRunRecord } from '../fixtures/run-record';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const PACKAGE_VERSION = JSON.parse(await readFile(path.resolve(__dirname, '../../package.json'), 'utf8')).version as string;
const SIZE = 64;
const LABELS = ['birds', 'fruit, fresh', 'mammals'];
const info = getBackbone('resnet18');

let tmp: string;
let classifier: tf.LayersModel;
let runFolder: string;
let exported: string;
let photos: string[];

function runRecord(): RunRecord {
  const perClass = LABELS.map((name, i) => ({ name, precision: [0.9, 0.8, 1][i], recall: [1, 0.75, 0.9][i], f1: [0.947, 0.774, 0.947][i], support: [7, 5, 13][i] }));
  return makeRunRecord({
    config: { inputSize: SIZE, epochs: 8, augment: true },
    labels: LABELS,
    trainImages: 100,
    valImages: 25,
    bestEpoch: 6,
    lastEpoch: 8,
    metrics: {
      valAccuracy: 0.88, valLoss: 0.35, bestEpoch: 6, labels: LABELS,
      confusion: [[7, 0, 0], [1, 3, 1], [0, 1, 12]],
      perClass,
      misclassified: [{ file: path.join(PHOTOS, 'fruit', 'apricot.png'), trueLabel: 'fruit, fresh', predictedLabel: 'birds', confidence: 0.7 }],
    },
  });
}

/** Preprocessed photos and the original model's probabilities for them. */
async function directPredict(model: tf.LayersModel, files: string[]): Promise<Float32Array> {
  const pixels = await Promise.all(files.map((f) => decodeImage(f, SIZE)));
  const flat = new Float32Array(files.length * SIZE * SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  const probs = tf.tidy(() => model.predict(preprocess(tf.tensor4d(flat, [files.length, SIZE, SIZE, 3]), info.preprocessing)) as tf.Tensor);
  const out = (await probs.data()) as Float32Array;
  probs.dispose();
  return out;
}

/** RFC 4180 CSV, enough for checking what we write. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(field), (field = '');
    else if (ch === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else field += ch;
  }
  return rows;
}

function captureIO(terminal?: { columns: number }): CommandIO & { out: string; err: string; code?: number } {
  const io = {
    out: '',
    err: '',
    code: undefined as number | undefined,
    stderrIsTTY: terminal !== undefined,
    columns: terminal?.columns,
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
    setExitCode: (c: number) => void (io.code = c),
  };
  return io;
}

async function cli(register: (p: Command, io: CommandIO) => Command, ...args: string[]) {
  return cliOn(captureIO(), register, ...args);
}

async function cliOn<IO extends CommandIO>(io: IO, register: (p: Command, io: CommandIO) => Command, ...args: string[]): Promise<IO> {
  const program = new Command('refit').exitOverride();
  register(program, io).exitOverride();
  await program.parseAsync(args, { from: 'user' });
  return io;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-export-predict-'));
  classifier = attachHead(info.build({ inputSize: SIZE, seed: 7 }), buildHead(info.featureDim, LABELS.length, undefined, 7));
  // Sharper than a fresh head's near-uniform output, so top-1 labels are clearly separated.
  const head = classifier.getLayer('head_classifier');
  const [kernel, bias] = head.getWeights();
  head.setWeights([tf.mul(kernel, 20), bias]);
  // Compiled as the trainer's checkpoints are, so that best/model.json carries a training config.
  classifier.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  runFolder = path.join(tmp, 'project', 'runs', 'run-20250101-0001');
  await mkdir(runFolder, { recursive: true });
  await writeFile(path.join(runFolder, 'run.json'), JSON.stringify(runRecord(), null, 2));
  await classifier.save(tfjsFolderHandler(path.join(runFolder, 'best')));

  photos = [
    ...(await listImageFiles([path.join(PHOTOS, 'birds')])).slice(0, 4),
    ...(await listImageFiles([path.join(PHOTOS, 'fruit')])).slice(0, 3),
    ...(await listImageFiles([path.join(PHOTOS, 'mammals')])).slice(0, 3),
  ];
  exported = path.join(tmp, 'exports', 'birds-fruit-mammals');
});

afterAll(async () => {
  disposeAll(classifier);
  await rm(tmp, { recursive: true, force: true });
});

describe('exportRun', () => {
  it('writes a folder that plain @tensorflow/tfjs loads and that predicts exactly like the original', async () => {
    const report = await exportRun(runFolder, exported);
    console.log(`export of ResNet-18 (${(report.totalBytes / 2 ** 20).toFixed(1)} MiB, ${report.files.length} files): ${report.seconds.toFixed(2)} s`);
    expect(report.replaced).toBe(false);
    expect(report.files.filter((f) => f.path.endsWith('.bin')).length).toBeGreaterThan(1);

    // Plain TF.js only: read the files ourselves, no Refit code reconstructs the model.
    const modelJson = JSON.parse(await readFile(path.join(exported, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    expect(modelJson.trainingConfig).toBeUndefined();
    const shards = await Promise.all(modelJson.weightsManifest[0].paths.map((p) => readFile(path.join(exported, p))));
    const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
    const plain = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }),
    );
    const original = await directPredict(classifier, photos);
    const reloaded = await directPredict(plain, photos);
    plain.dispose();
    let maxDiff = 0;
    for (let i = 0; i < original.length; i++) maxDiff = Math.max(maxDiff, Math.abs(original[i] - reloaded[i]));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('records labels, preprocessing, training settings, metrics, fingerprint and file hashes in refit.json', async () => {
    const manifest = JSON.parse(await readFile(path.join(exported, 'refit.json'), 'utf8'));
    const run = runRecord();
    expect(manifest).toMatchObject({
      format: 'refit-model',
      version: 1,
      refitVersion: PACKAGE_VERSION,
      labels: LABELS,
      backbone: { id: 'resnet18', name: 'ResNet-18' },
      weights: 'none',
      inputSize: SIZE,
      input: { layout: 'NHWC', dtype: 'float32', shape: [null, SIZE, SIZE, 3] },
      preprocessing: { mode: 'caffe', mean: [103.939, 116.779, 123.68], channelOrder: 'BGR', sourceRange: [0, 255], resize: 'contain-white' },
      output: { activation: 'softmax', classes: 3 },
      training: { runId: run.id, status: 'completed', config: run.config, trainImages: 100, valImages: 25, bestEpoch: 6, epochsRun: 8, misclassifiedCount: 1 },
      metrics: { valAccuracy: 0.88, valLoss: 0.35, perClass: run.metrics!.perClass, confusion: run.metrics!.confusion },
      datasetFingerprint: run.datasetFingerprint,
    });
    expect(manifest.preprocessing.description).toMatch(/64×64.*BGR.*103\.939/);
    expect(Date.parse(manifest.created)).toBeGreaterThan(Date.now() - 600_000);
    expect(JSON.stringify(manifest)).not.toContain('apricot.png'); // the user's file paths stay private
    const onDisk = (await readdir(exported)).filter((n) => n !== 'refit.json').sort();
    expect(manifest.files.map((f: { path: string }) => f.path).sort()).toEqual(onDisk);
    for (const f of manifest.files) {
      const data = await readFile(path.join(exported, f.path));
      expect(data.byteLength).toBe(f.bytes);
      expect(createHash('sha256').update(data).digest('hex')).toBe(f.sha256);
    }
  });

  it('writes a model card that names every class with its precision and recall', async () => {
    const card = await readFile(path.join(exported, 'README.md'), 'utf8');
    for (const label of LABELS) expect(card).toContain(label);
    expect(card).toContain('| fruit, fresh | 80.0% | 75.0% | 77.4% | 5 |');
    expect(card).toMatch(/Validation accuracy: \*\*88\.0%\*\* on 25 images/);
    expect(card).toContain('ResNet-18');
    expect(card).toContain('square.reverse(-1).sub([103.939, 116.779, 123.68])');
    expect(card).toMatch(/## Limitations/);
  });

  it('replaces its previous export through `refit export`, and refuses a run folder without run.json', async () => {
    const io = await cli(registerExport, 'export', runFolder, '--out', exported, '--json');
    const report = JSON.parse(io.out);
    expect(report).toMatchObject({ outDir: exported, replaced: true, labels: LABELS });
    expect(await readdir(path.dirname(exported))).toEqual([path.basename(exported)]);
    const text = await cli(registerExport, 'export', runFolder, '--out', exported);
    expect(text.out).toMatch(/Exported resnet18 classifier \(3 classes: birds, fruit, fresh, mammals\) to .*\n {2}replaced the previous export there/);
    await expect(cli(registerExport, 'export', path.join(tmp, 'project'), '--out', path.join(tmp, 'x'))).rejects.toThrow(/is not a Refit training run: it has no run\.json/);
  });
});

describe('predicting with the exported model', () => {
  let model: ExportedModel;
  let odd: string;
  let corrupt: string;

  beforeAll(async () => {
    model = await loadExportedModel(exported);
    const dir = path.join(tmp, 'to-classify');
    await mkdir(dir);
    odd = path.join(dir, 'pelican, "big".png');
    await copyFile(path.join(PHOTOS, 'birds', 'pelican.png'), odd);
    corrupt = path.join(dir, 'broken.png');
    const png = await readFile(path.join(PHOTOS, 'birds', 'pelican.png'));
    await writeFile(corrupt, png.subarray(0, 200)); // a real PNG header, then nothing
  });

  afterAll(() => model.dispose());

  it('predictFiles gives the same top label as a direct model.predict, in input order', async () => {
    const direct = await directPredict(classifier, photos);
    const seen: ClassifyRow[] = [];
    const summary = await predictFiles(model, photos, { topK: 2, batchSize: 3, onResult: (r) => seen.push(r) });
    expect(summary).toMatchObject({ predicted: photos.length, failed: 0 });
    expect(seen.map((r) => r.file)).toEqual(photos);
    seen.forEach((r, i) => {
      const row = direct.subarray(i * 3, i * 3 + 3);
      const best = row.indexOf(Math.max(...row));
      expect(r.top).toHaveLength(2);
      expect(r.top[0].label).toBe(LABELS[best]);
      // Two runtimes (onnxruntime for the export, TF.js here) on a head sharpened ×20, which multiplies
      // their float differences: an unseeded random build once differed by 1.5e-4 on a row at p ≈ 0.98
      // (the seeded build is repeatable, and most of its rows are saturated).
      expect(Math.abs(r.top[0].probability - row[best])).toBeLessThan(1e-3);
      expect(Object.keys(r.top[0]).sort()).toEqual(['index', 'label', 'probability']);
      expect(r.top[0].index).toBe(best);
    });
  });

  it('streams a whole folder tree, a bad image giving one error row', async () => {
    const results = await predictAll(model, [path.join(tmp, 'to-classify'), path.join(PHOTOS, 'birds', 'owl.png')], { topK: 1 });
    expect(results.map((r) => path.basename(r.file))).toEqual(['broken.png', 'pelican, "big".png', 'owl.png']);
    expect(results[0]).toMatchObject({ file: corrupt, top: [] });
    expect(results[0].error).toMatch(/broken\.png.*corrupt or truncated/);
    expect(results.filter((r) => r.error)).toHaveLength(1);
  });

  it('stops within a batch when cancelled', async () => {
    const controller = new AbortController();
    const seen: ClassifyRow[] = [];
    const run = predictFiles(model, [PHOTOS], { batchSize: 4, signal: controller.signal, onResult: (r) => (seen.push(r), controller.abort(new Error('stop'))) });
    await expect(run).rejects.toThrow('stop');
    expect(seen).toHaveLength(4);
  });

  it('keeps pace on wasm: every photo of photos5', async () => {
    const started = performance.now();
    const summary = await predictFiles(model, [PHOTOS], { batchSize: 16 });
    const seconds = (performance.now() - started) / 1000;
    console.log(`predict: ${summary.predicted} photos at ${SIZE}² in ${seconds.toFixed(2)} s = ${(summary.predicted / seconds).toFixed(1)} images/s (${tf.getBackend()})`);
    expect(summary).toMatchObject({ predicted: 168, failed: 0 });
  });

  it('`refit predict --json` prints one JSON array with an error entry for the bad file', async () => {
    const io = await cli(registerPredict, 'predict', exported, path.join(tmp, 'to-classify'), '--json', '--top', '2');
    const rows = JSON.parse(io.out) as ClassifyRow[];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({ file: corrupt, top: [], error: expect.stringContaining('broken.png') });
    expect(rows[1].file).toBe(odd);
    expect(rows[1].top.map((t) => t.label).every((l) => LABELS.includes(l))).toBe(true);
    expect(io.code).toBeUndefined();
  });

  it('`refit predict --csv` quotes a file name with a comma and quotes; the table streams rows', async () => {
    const csvFile = path.join(tmp, 'out.csv');
    const io = await cli(registerPredict, 'predict', exported, odd, corrupt, '--csv', csvFile, '--top', '3');
    const rows = parseCsv(await readFile(csvFile, 'utf8'));
    expect(rows[0]).toEqual(['file', 'rank', 'label', 'probability', 'error']);
    expect(rows).toHaveLength(1 + 3 + 1);
    expect(rows.slice(1, 4).map((r) => [r[0], r[1], r[4]])).toEqual([1, 2, 3].map((rank) => [odd, String(rank), '']));
    expect(rows.slice(1, 4).map((r) => r[2]).sort()).toEqual([...LABELS].sort());
    expect(rows.slice(1, 4).reduce((sum, r) => sum + Number(r[3]), 0)).toBeCloseTo(1, 5);
    expect(rows[4].slice(0, 4)).toEqual([corrupt, '', '', '']);
    expect(rows[4][4]).toMatch(/broken\.png.*corrupt or truncated/);
    expect(io.out.split('\n')[0]).toMatch(/^#1\s+#2\s+#3\s+file$/);
    expect(io.out).toMatch(/\d+\.\d%\s{3}.*pelican, "big"\.png/);
    expect(io.out).toMatch(/error: Cannot decode image .*broken\.png/);
    expect(io.err).toContain('1 of 2 image(s) could not be read');
    expect(io.code).toBeUndefined();
  });

  it('`refit predict` on a terminal draws "predicting done/total (pct%) · rate · ETA" on stderr, none with --json', async () => {
    const ERASE = '\r\x1b[K';
    const io = await cliOn(captureIO({ columns: 70 }), registerPredict, 'predict', exported, ...photos);
    const drawn = io.err.split(ERASE).filter(Boolean);
    expect(drawn[0]).toMatch(/^predicting 0(\/10 \(0%\))?$/);
    expect(drawn.some((t) => /^predicting \d+\/10 \(\d+%\) · \d+\.\d img\/s · ETA \d+s$/.test(t))).toBe(true);
    expect(drawn.at(-1)).toMatch(/^predicting 10\/10 \(100%\) · \d+\.\d img\/s$/);
    for (const text of drawn) expect([...text].length).toBeLessThanOrEqual(69);
    expect(io.err.endsWith(ERASE)).toBe(true); // cleared at the end
    expect(io.out).not.toContain('\x1b');
    expect(io.out.trim().split('\n')).toHaveLength(1 + photos.length);
    const json = await cliOn(captureIO({ columns: 70 }), registerPredict, 'predict', exported, ...photos, '--json');
    expect(json.err).toBe('');
    expect(JSON.parse(json.out)).toHaveLength(photos.length);
  });

  it('`refit predict` exits non-zero when nothing could be classified, and fails clearly on a bad model folder', async () => {
    const none = await cli(registerPredict, 'predict', exported, corrupt, '--json');
    expect(JSON.parse(none.out)).toHaveLength(1);
    expect(none.code).toBe(1);
    const empty = await cli(registerPredict, 'predict', exported, path.join(tmp, 'exports'));
    expect(empty.code).toBe(1);
    expect(empty.err).toContain('No images found in');
    await expect(cli(registerPredict, 'predict', path.join(runFolder, 'best'), odd)).rejects.toThrow(/best is not a Refit model folder: it has no refit\.json/);
  });
});
