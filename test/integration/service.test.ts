// The engine service behind the contract, with the real engine: a project on real photos, thumbnails,
// folder listing, model cards, real training in a child process, classification, export, cancel.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { ClassifyRow, DatasetView, DirListing, EventName, Events, ImagePage, ModelCard, RunSummary, TrainingStatus } from '../../main/api/contract';
import type { RunRecord, TrainConfig } from '../../main/api/training';
import { createEngineService, type EngineService } from '../../main/engine/service';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../main/engine/checkpoint';
import { decodeImage } from '../../main/engine/image-decode';
import { createForwardPass } from '../../main/engine/onnx-runtime';

// The real onnx-runtime module, with createForwardPass wrapped so that a test can see what it returned.
vi.mock('../../main/engine/onnx-runtime', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../main/engine/onnx-runtime')>();
  return { ...real, createForwardPass: vi.fn(real.createForwardPass) };
});
import { disposeAll } from '../../models/heads';
import { preprocess } from '../../models/preprocess';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

let tmp: string;
let service: EngineService;
const events: { event: EventName; payload: unknown }[] = [];

function waitFor<E extends EventName>(event: E, match: (payload: Events[E]) => boolean = () => true, timeoutMs = 240_000): Promise<Events[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = service.on((name, payload) => {
      if (name === event && match(payload as Events[E])) {
        clearTimeout(timer);
        off();
        resolve(payload as Events[E]);
      }
    });
  });
}

const call = <T>(method: string, params: unknown = {}) => service.call(method, params) as Promise<T>;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-service-'));
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'config', 'recent.json') });
  service.on((event, payload) => events.push({ event, payload }));
});

afterAll(async () => {
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('engine service: a project on photos5', () => {
  let projectDir: string;

  it('refuses to open a folder that is not a project, creates one when asked, and remembers it', async () => {
    projectDir = path.join(tmp, 'photos-project');
    // A folder that is not there, and one that is but holds no project: each with its kind for the UI's advice.
    await expect(call('project.open', { dir: projectDir })).rejects.toMatchObject({ kind: 'not-found', message: expect.stringMatching(/There is no folder .*photos-project/) });
    await mkdir(projectDir);
    await expect(call('project.open', { dir: projectDir })).rejects.toMatchObject({ kind: 'not-a-project', message: expect.stringMatching(/not a Refit project folder.*create a new project/) });
    await expect(call('project.open', { dir: PHOTOS, create: true })).rejects.toMatchObject({ kind: 'folder-not-empty' });
    const view = await call<DatasetView>('project.open', { dir: projectDir, create: true, name: 'Photos' });
    expect(view.project).toMatchObject({ dir: projectDir, name: 'Photos', classes: [], exclusions: [] });
    expect(view.totalImages).toBe(0);
    expect(await call<string[]>('project.recent')).toEqual([projectDir]);
    expect(JSON.parse(await readFile(path.join(tmp, 'config', 'recent.json'), 'utf8')).projects).toEqual([projectDir]);
  });

  it('adds photos5: five classes with the right counts (nested folders included) and an imbalance warning', async () => {
    const before = events.length;
    const view = await call<DatasetView>('dataset.addFolders', { folders: [PHOTOS] });
    const counts = Object.fromEntries(view.classes.map((c) => [c.name, c.images]));
    expect(counts).toEqual({ birds: 35, flowers: 25, fruit: 26, mammals: 64, vegetables: 18 });
    expect(view.totalImages).toBe(168);
    expect(view.project.classes.find((c) => c.name === 'flowers')!.images).toBe(25);
    expect(view.warnings.some((w) => /imbalanced/.test(w) && w.includes('mammals') && w.includes('vegetables'))).toBe(true);
    const progress = events.slice(before).filter((e) => e.event === 'scan.progress').map((e) => e.payload as Events['scan.progress']);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ done: 168, total: 168 });
    expect((await call<DatasetView | null>('project.current'))!.totalImages).toBe(168);
  });

  it('rejects invalid requests with a message naming the method and the field', async () => {
    await expect(call('dataset.addFolders', { folders: [] })).rejects.toThrow(/dataset\.addFolders: invalid request — folders/);
    await expect(call('dataset.images', { className: 'birds', offset: -1, limit: 10 })).rejects.toThrow(/dataset\.images.*offset/);
    await expect(call('dataset.images', { className: 'birds', offset: 0, limit: 10, extra: 1 })).rejects.toThrow(/dataset\.images.*extra|Unrecognized/);
    await expect(call('training.start', { config: { backbone: 'resnet18' } })).rejects.toThrow(/training\.start: invalid request — config\.weights/);
    await expect(call('no.such.method', {})).rejects.toThrow(/Unknown method "no\.such\.method"/);
    await expect(call('dataset.images', { className: 'cats', offset: 0, limit: 10 })).rejects.toThrow(/No class "cats".*birds/);
  });

  it('pages a class in a stable order and shows an excluded image as excluded', async () => {
    const first = await call<ImagePage>('dataset.images', { className: 'birds', offset: 0, limit: 20 });
    const second = await call<ImagePage>('dataset.images', { className: 'birds', offset: 20, limit: 20 });
    expect(first.total).toBe(35);
    expect(first.images).toHaveLength(20);
    expect(second.images).toHaveLength(15);
    const files = [...first.images, ...second.images].map((i) => i.file);
    expect(new Set(files).size).toBe(35);
    expect(files).toEqual([...files].sort());
    expect(first.images.every((i) => !i.excluded && i.hash.length === 64 && i.width > 0 && i.height > 0)).toBe(true);
    expect((await call<ImagePage>('dataset.images', { className: 'birds', offset: 0, limit: 20 })).images).toEqual(first.images);

    const victim = first.images[3];
    const excluded = await call<DatasetView>('dataset.setExcluded', { file: victim.file, excluded: true });
    expect(excluded.classes.find((c) => c.name === 'birds')!.images).toBe(34);
    expect(excluded.project.exclusions).toEqual([victim.file]);
    const page = await call<ImagePage>('dataset.images', { className: 'birds', offset: 0, limit: 100 });
    expect(page.total).toBe(35);
    expect(page.images.map((i) => i.file)).toEqual(files);
    expect(page.images.find((i) => i.file === victim.file)).toEqual({ ...victim, excluded: true });
    const back = await call<DatasetView>('dataset.setExcluded', { file: victim.file, excluded: false });
    expect(back.classes.find((c) => c.name === 'birds')!.images).toBe(35);
  });

  it('makes WebP thumbnails (alpha flattened on white), cached on disk by content hash', async () => {
    const page = await call<ImagePage>('dataset.images', { className: 'flowers', offset: 0, limit: 1 });
    const image = page.images[0];
    const { dataUrl } = await call<{ dataUrl: string }>('dataset.thumbnail', { file: image.file });
    expect(dataUrl.startsWith('data:image/webp;base64,')).toBe(true);
    const bytes = Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
    const meta = await sharp(bytes).metadata();
    expect(meta.format).toBe('webp');
    expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(160);
    expect(meta.hasAlpha).toBe(false);
    const cached = path.join(projectDir, 'cache', 'thumbs', image.hash.slice(0, 2), `${image.hash}-160.webp`);
    expect((await stat(cached)).size).toBe(bytes.byteLength);
    expect((await call<{ dataUrl: string }>('dataset.thumbnail', { file: image.file })).dataUrl).toBe(dataUrl);
    const small = await call<{ dataUrl: string }>('dataset.thumbnail', { file: image.file, size: 64 });
    const smallMeta = await sharp(Buffer.from(small.dataUrl.split(',')[1], 'base64')).metadata();
    expect(Math.max(smallMeta.width!, smallMeta.height!)).toBeLessThanOrEqual(64);
    await expect(call('dataset.thumbnail', { file: path.join(tmp, 'nothing.png') })).rejects.toThrow(/does not exist/);
  });

  it('lists folders (folders first, hidden skipped) with clear errors for missing folders', async () => {
    const root = await call<DirListing>('fs.listDir', { dir: PHOTOS });
    expect(root.entries.map((e) => e.name)).toEqual(['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    expect(root.entries.every((e) => e.isDir && e.path === path.join(PHOTOS, e.name))).toBe(true);
    expect(root.parent).toBe(path.dirname(PHOTOS));
    const flowers = await call<DirListing>('fs.listDir', { dir: path.join(PHOTOS, 'flowers') });
    expect(flowers.entries[0]).toMatchObject({ name: 'plastic', isDir: true });
    expect(flowers.entries.filter((e) => !e.isDir).length).toBeGreaterThan(10);
    expect(flowers.entries.every((e) => !e.name.startsWith('.'))).toBe(true);
    const home = await call<DirListing>('fs.listDir', {});
    expect(home.dir).toBe(os.homedir());
    expect((await call<DirListing>('fs.listDir', { dir: '/' })).parent).toBeNull();
    await expect(call('fs.listDir', { dir: path.join(tmp, 'missing') })).rejects.toThrow(/Folder not found: .*missing.*choose another folder/);
    await expect(call('fs.listDir', { dir: path.join(tmp, 'missing') })).rejects.toMatchObject({ kind: 'not-found' });
    await expect(call('fs.listDir', { dir: path.join(PHOTOS, 'birds', (await readdir(path.join(PHOTOS, 'birds')))[0]) })).rejects.toThrow(/Not a folder/);
  });

  it('makes a new folder for the folder picker, never over an existing one, refusing names that are paths', async () => {
    const made = await call<DirListing>('fs.makeDir', { parent: tmp, name: ' New project ' });
    expect(made).toEqual({ dir: path.join(tmp, 'New project'), parent: tmp, entries: [] });
    expect((await stat(path.join(tmp, 'New project'))).isDirectory()).toBe(true);
    await expect(call('fs.makeDir', { parent: tmp, name: 'New project' })).rejects.toThrow(/already exists: choose another name/);
    for (const name of ['..', 'a/b', '../escape', '']) await expect(call('fs.makeDir', { parent: tmp, name })).rejects.toThrow(/fs.makeDir: invalid request — name/);
    await expect(call('fs.makeDir', { parent: path.join(tmp, 'missing', 'deeper'), name: 'x' })).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('lists the 15 backbones with a time estimate per mode for this dataset, and the memory a network run needs', async () => {
    const cards = await call<ModelCard[]>('models.list');
    expect(cards).toHaveLength(15);
    for (const card of cards) {
      expect(card.estimates).not.toBeNull();
      const { head, finetune, full } = card.estimates!;
      expect(head).toBeGreaterThan(0);
      expect(finetune).toBeGreaterThan(head);
      expect(full).toBeGreaterThan(head);
      expect(card.memory).toEqual({ finetune: expect.any(Number), full: expect.any(Number), machine: os.totalmem() });
      expect(card.memory!.full, card.id).toBeGreaterThan(card.memory!.finetune);
    }
    const byId = Object.fromEntries(cards.map((c) => [c.id, c]));
    expect(byId.resnet50.weights).toEqual(['imagenet']);
    expect(byId.inceptionv4).toMatchObject({ name: 'Inception-v4', inputSize: 299 });
    expect(byId.seinceptionv4.weights).toEqual([]);
    expect(byId.seinceptionv4.description).toMatch(/starts from random weights/);
    expect(byId.vgg16.estimates!.full).toBeGreaterThan(byId.resnet18.estimates!.full);
    // bench:train-memory measured a full SE-ResNet-152 step (batch 16, 224²) peaking at 6.9 GiB.
    expect(byId.seresnet152.memory!.full / 2 ** 30).toBeGreaterThan(6);
    expect(byId.seresnet152.memory!.full / 2 ** 30).toBeLessThan(8);
    console.log(`estimates for photos5 (168 images): ${cards.map((c) => `${c.id} ${c.estimates!.head}/${c.estimates!.finetune}/${c.estimates!.full}s`).join(', ')}`);
  });

  it('renames and removes classes', async () => {
    const renamed = await call<DatasetView>('dataset.renameClass', { from: 'fruit', to: 'fruits' });
    expect(renamed.classes.map((c) => [c.name, c.images])).toContainEqual(['fruits', 26]);
    expect(renamed.classes.map((c) => c.name)).not.toContain('fruit');
    const removed = await call<DatasetView>('dataset.removeClass', { name: 'fruits' });
    expect(removed.classes.map((c) => c.name)).toEqual(['birds', 'flowers', 'mammals', 'vegetables']);
    expect(removed.totalImages).toBe(168 - 26);
    await expect(call('dataset.removeClass', { name: 'fruits' })).rejects.toThrow(/No class "fruits"/);
  });
});

describe('engine service: training, classification, export', () => {
  let dataRoot: string;
  let runId: string;

  const config: TrainConfig = {
    backbone: 'resnet18',
    weights: 'none',
    mode: 'head',
    inputSize: 32,
    head: { kind: 'linear' },
    epochs: 2,
    batchSize: 8,
    valSplit: 0.25,
    seed: 3,
    augment: false,
    patience: 5,
    classWeights: false,
  };

  beforeAll(async () => {
    // Two classes, 8 photos each, copied so that the test owns its data.
    dataRoot = path.join(tmp, 'small');
    for (const c of ['birds', 'fruit']) {
      const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 8);
      await mkdir(path.join(dataRoot, c), { recursive: true });
      for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(dataRoot, c, f));
    }
    await call('project.open', { dir: path.join(tmp, 'small-project'), create: true });
    const view = await call<DatasetView>('dataset.addFolders', { folders: [dataRoot] });
    expect(view.classes.map((c) => [c.name, c.images])).toEqual([
      ['birds', 8],
      ['fruit', 8],
    ]);
  });

  it('has nothing to classify before a model is trained', async () => {
    await expect(call('classify.files', { paths: [dataRoot] })).rejects.toMatchObject({ kind: 'no-model', message: expect.stringMatching(/no trained model yet: train one/) });
  });

  it('trains a tiny model in a child process, forwarding its events, one run at a time', async () => {
    const before = events.length;
    const started = await call<{ runId: string }>('training.start', { config });
    runId = started.runId;
    const ended = waitFor('training.ended', (p) => p.runId === runId);
    await expect(call('training.start', { config })).rejects.toMatchObject({ kind: 'busy', message: expect.stringMatching(/already in progress.*cancel it/) });
    const status = await call<TrainingStatus>('training.status');
    expect(status).toMatchObject({ runId, state: 'running' });
    expect(await ended).toEqual({ runId, status: 'completed' });

    const forwarded = events.slice(before).filter((e) => e.event === 'training.event').map((e) => e.payload as Events['training.event']);
    expect(forwarded.every((e) => e.runId === runId)).toBe(true);
    expect(forwarded.some((e) => e.event.type === 'progress' && e.event.phase === 'extract')).toBe(true);
    // Feature extraction counts its images, training and validation ("Preparing your images 16/16" on the Train screen).
    const extract = forwarded.map((e) => e.event).filter((e) => e.type === 'progress' && e.phase === 'extract' && e.total !== undefined);
    expect(extract.at(-1)).toMatchObject({ done: 16, total: 16 });
    expect(extract[0]).toMatchObject({ done: 0, total: 16 });
    expect(forwarded.some((e) => e.event.type === 'progress' && e.event.phase === 'train')).toBe(true);
    expect(forwarded.filter((e) => e.event.type === 'epoch')).toHaveLength(2);
    expect(forwarded.at(-1)!.event.type).toBe('result');
    expect(await call<TrainingStatus>('training.status')).toEqual({ runId: null, state: 'idle', last: null });

    const runs = await call<RunSummary[]>('runs.list');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: runId, status: 'completed', backbone: 'resnet18', mode: 'head', epochs: 2 });
    expect(runs[0].valAccuracy).toBeGreaterThanOrEqual(0);
    const record = await call<RunRecord>('runs.get', { runId });
    expect(record.labels).toEqual(['birds', 'fruit']);
    expect(record.config.inputSize).toBe(32);
    await expect(call('runs.get', { runId: 'nope' })).rejects.toThrow(/No run "nope"/);
  });

  it('classifies files and folders on disk with the newest finished run', async () => {
    const birds = (await readdir(path.join(dataRoot, 'birds'))).map((f) => path.join(dataRoot, 'birds', f));
    const rows = await call<ClassifyRow[]>('classify.files', { paths: [path.join(dataRoot, 'birds'), path.join(tmp, 'missing.png')], topK: 5 });
    expect(rows).toHaveLength(9);
    expect(rows.slice(0, 8).map((r) => r.file)).toEqual(birds.sort());
    for (const row of rows.slice(0, 8)) {
      expect(row.error).toBeUndefined();
      expect(row.top).toHaveLength(2); // topK is capped at the number of classes
      expect(['birds', 'fruit']).toContain(row.top[0].label);
      expect(row.top[0].probability + row.top[1].probability).toBeCloseTo(1, 4);
    }
    expect(rows[8]).toMatchObject({ file: path.join(tmp, 'missing.png'), top: [] });
    expect(rows[8].error).toMatch(/not found/);
    // Tagged: progress events give the count first, then the rows as they are computed, in the reply's order.
    const before = events.length;
    const tagged = await call<ClassifyRow[]>('classify.files', { paths: [path.join(dataRoot, 'birds'), path.join(tmp, 'missing.png')], topK: 5, tag: 't1' });
    const progress = events.slice(before).filter((e) => e.event === 'classify.progress').map((e) => e.payload as Events['classify.progress']);
    expect(progress[0]).toEqual({ tag: 't1', stage: 'loading', done: 0, total: 0, rows: [] });
    expect(progress[1]).toEqual({ tag: 't1', stage: 'classifying', done: 0, total: 9, rows: [] });
    expect(progress.slice(2).every((p) => p.total === 9 && p.rows.length > 0)).toBe(true);
    expect(progress.at(-1)!.done).toBe(9);
    expect(progress.flatMap((p) => p.rows)).toEqual(tagged);
    expect(tagged).toEqual(rows);
    const explicit = await call<ClassifyRow[]>('classify.files', { paths: [birds[0]], runId, topK: 1 });
    expect(explicit[0].top).toHaveLength(1);
    expect(explicit[0].top[0].label).toBe(rows[0].top[0].label);
  });

  it('classifies through onnxruntime, with the probabilities TF.js gives for the same checkpoint', async () => {
    const birds = (await readdir(path.join(dataRoot, 'birds'))).map((f) => path.join(dataRoot, 'birds', f)).sort();
    const rows = await call<ClassifyRow[]>('classify.files', { paths: birds, runId, topK: 2 });
    // The service put the classifier into onnxruntime when it first loaded it (and kept it since).
    const created = await Promise.all(vi.mocked(createForwardPass).mock.results.map((r) => r.value as ReturnType<typeof createForwardPass>));
    const classifierPasses = created.filter((p) => p.outputShape.length === 1 && p.outputShape[0] === 2); // not the throughput probe
    expect(classifierPasses.length).toBeGreaterThan(0);
    const pass = classifierPasses.at(-1)!;
    expect(pass).toMatchObject({ runtime: 'onnxruntime' });
    expect(pass.reason).toBeUndefined();
    const record = await call<RunRecord>('runs.get', { runId });
    const model = await loadModel(path.join(tmp, 'small-project', 'runs', runId, 'best'));
    const size = record.config.inputSize;
    const pixels = await Promise.all(birds.map((f) => decodeImage(f, size)));
    const flat = new Float32Array(birds.length * size * size * 3);
    pixels.forEach((p, i) => flat.set(p, i * p.length));
    const probs = tf.tidy(() => model.predict(preprocess(tf.tensor4d(flat, [birds.length, size, size, 3]), record.preprocessing)) as tf.Tensor2D);
    const expected = (await probs.array()) as number[][];
    probs.dispose();
    disposeAll(model);
    let worst = 0;
    rows.forEach((row, i) => {
      for (const t of row.top) worst = Math.max(worst, Math.abs(t.probability - expected[i][record.labels.indexOf(t.label)]));
    });
    expect(rows).toHaveLength(birds.length);
    expect(worst).toBeLessThan(1e-4);
  });

  it('classifies uploaded images (base64 or data: URL), with an error row for what is not an image', async () => {
    const file = (await readdir(path.join(dataRoot, 'fruit'))).sort()[0];
    const bytes = await readFile(path.join(dataRoot, 'fruit', file));
    const fromDisk = await call<ClassifyRow[]>('classify.files', { paths: [path.join(dataRoot, 'fruit', file)] });
    const rows = await call<ClassifyRow[]>('classify.upload', {
      images: [
        { name: 'apple.png', data: bytes.toString('base64') },
        { name: 'as-data-url.png', data: `data:image/png;base64,${bytes.toString('base64')}` },
        { name: 'notes.txt', data: Buffer.from('hello, not an image').toString('base64') },
        { name: 'garbage.png', data: '%%% not base64 %%%' },
      ],
    });
    expect(rows.map((r) => r.file)).toEqual(['apple.png', 'as-data-url.png', 'notes.txt', 'garbage.png']);
    expect(rows[0].top[0].label).toBe(fromDisk[0].top[0].label);
    expect(rows[0].top[0].probability).toBeCloseTo(fromDisk[0].top[0].probability, 5);
    expect(rows[1].top).toEqual(rows[0].top);
    expect(rows[2].error).toMatch(/notes\.txt.*not an image|Cannot decode image notes\.txt/);
    expect(rows[2].error).not.toContain(os.tmpdir());
    expect(rows[3].error).toMatch(/not base64/);
    // The temporary copies are gone.
    expect((await readdir(os.tmpdir())).filter((d) => d.startsWith('refit-upload-'))).toEqual([]);
  });

  it('exports a run to a folder with refit.json, reporting progress and how to use it', async () => {
    const outDir = path.join(tmp, 'exported');
    const before = events.length;
    const result = await call<{ outDir: string; files: { path: string; bytes: number }[]; totalBytes: number; usage: string }>('export.run', { runId, outDir });
    expect(result.outDir).toBe(outDir);
    expect(result.files.map((f) => f.path)).toEqual(expect.arrayContaining(['model.json', 'refit.json', 'README.md']));
    expect(result.totalBytes).toBe(result.files.reduce((s, f) => s + f.bytes, 0));
    for (const f of result.files) expect((await stat(path.join(outDir, f.path))).size).toBe(f.bytes);
    expect(JSON.parse(await readFile(path.join(outDir, 'refit.json'), 'utf8')).labels).toEqual(['birds', 'fruit']);
    expect(result.usage).toContain(`refit predict "${outDir}"`);
    const progress = events.slice(before).filter((e) => e.event === 'export.progress').map((e) => e.payload as Events['export.progress']);
    expect(progress.at(-1)).toEqual({ phase: 'done', fraction: 1 });
    await expect(call('export.run', { runId, outDir: PHOTOS })).rejects.toThrow(/Refusing to export/);

    // With ONNX: model.onnx beside the TF.js files, described in refit.json.
    const withOnnx = await call<{ files: { path: string }[]; usage: string }>('export.run', { runId, outDir, onnx: true });
    expect(withOnnx.files.map((f) => f.path)).toContain('model.onnx');
    expect(JSON.parse(await readFile(path.join(outDir, 'refit.json'), 'utf8')).onnx).toMatchObject({ file: 'model.onnx', opset: 13 });
    expect(withOnnx.usage).toMatch(/model\.onnx/);
  });

  it('cancels a running full-mode training: the run ends cancelled', async () => {
    const started = await call<{ runId: string }>('training.start', { config: { ...config, mode: 'full', epochs: 30, batchSize: 4 } });
    const ended = waitFor('training.ended', (p) => p.runId === started.runId);
    await waitFor('training.event', (p) => p.runId === started.runId && p.event.type === 'progress' && p.event.phase === 'finetune');
    expect(await call('training.cancel')).toEqual({ cancelled: true });
    expect((await call<TrainingStatus>('training.status')).state).toBe('cancelling');
    expect(await ended).toEqual({ runId: started.runId, status: 'cancelled' });
    expect((await call<RunRecord>('runs.get', { runId: started.runId })).status).toBe('cancelled');
    expect(await call('training.cancel')).toEqual({ cancelled: false });
    const runs = await call<RunSummary[]>('runs.list');
    expect(runs.map((r) => [r.id, r.status])).toEqual([
      [started.runId, 'cancelled'],
      [runId, 'completed'],
    ]);
    // The newest finished run is still the default classifier.
    const rows = await call<ClassifyRow[]>('classify.files', { paths: [path.join(dataRoot, 'birds')] });
    expect(rows).toHaveLength(8);
  });

  it('resumes a cancelled run, and shutting the engine down cancels the training in progress', async () => {
    const other = createEngineService({ host: 'electron', recentFile: path.join(tmp, 'config', 'recent.json') });
    const seen: { event: EventName; payload: any }[] = [];
    other.on((event, payload) => seen.push({ event, payload }));
    await other.call('project.open', { dir: path.join(tmp, 'small-project') });
    const cancelled = (await other.call('runs.list', {}) as RunSummary[]).find((r) => r.status === 'cancelled')!;
    const { runId: resumed } = (await other.call('training.start', { config: { ...config, mode: 'full', epochs: 30, batchSize: 4 }, resumeRunId: cancelled.id })) as { runId: string };
    expect(resumed).toBe(cancelled.id);
    while (!seen.some((e) => e.event === 'training.event' && e.payload.event.type === 'progress' && e.payload.event.phase === 'finetune')) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await other.dispose();
    expect(seen.filter((e) => e.event === 'training.ended').map((e) => e.payload)).toEqual([{ runId: resumed, status: 'cancelled' }]);
    expect((await call<RunRecord>('runs.get', { runId: resumed })).status).toBe('cancelled');
    await expect(other.call('app.info', {})).rejects.toThrow(/shut down/);
  });

  it('reports the app, the backend and the open project', async () => {
    const info = (await call('app.info')) as { version: string; host: string; backend: { name: string }; project: { name: string } };
    expect(info.host).toBe('browser');
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.backend.name).toBeTruthy();
    expect(info.project.name).toBe('small-project');
  });
});
