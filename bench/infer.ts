// npm run bench:infer [-- --reps 3 --photos 48 --skip-torch --torch-passive --skip-options --forward]
//
// Prediction speed on this machine, Refit side by side with PyTorch in the same run (the machine is
// shared and noisy: each repetition runs Refit and its peer one after the other; medians are reported).
//
// 1. End to end, real processes over real photos (photos5: the first N PNGs of birds + mammals):
//    `refit classify-imagenet` (ImageNet ResNet-50), `refit predict` with an exported ResNet-18 and an
//    exported ResNet-50 (224², random weights: speed does not depend on them), and the PyTorch peer of
//    each (bench/torch_classify.py: torchvision, PIL, Resize 256 + CenterCrop 224, batch 8, 2 threads).
//    For each: wall time, start-up = time to the first result on stdout (process start, model load,
//    first batch), steady state = images/s after the first result; PyTorch's images/s ÷ Refit's.
//    Also `refit --help`, `refit predict` of one photo from a cold process, and the very first run
//    after an export or with an empty cache (the ONNX graph built and optimised once).
// 2. onnxruntime session options, in process, ImageNet ResNet-50 at batch 8: session creation time and
//    steady-state images/s for intra-op threads 1 vs cores, full optimisation at load vs loading the
//    saved optimised graph, memory pattern off, CPU arena off.
// 3. (--forward) the forward pass alone, TF.js (wasm here) vs onnxruntime, ResNet-18/50.
// Prints tables, then JSON.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RunRecord } from '../main/api/training';
import { formatTable } from '../main/host/format';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'refit.mjs');
const TORCH_SCRIPT = path.join(ROOT, 'bench', 'torch_classify.py');
const PYTHON = '/usr/bin/python3';
const PHOTOS = path.resolve(ROOT, '..', 'shared', 'datasets', 'photos5');

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    photos: { type: 'string', default: '48' },
    'skip-torch': { type: 'boolean', default: false },
    'skip-options': { type: 'boolean', default: false },
    forward: { type: 'boolean', default: false },
    // On a shared, loaded machine PyTorch's OpenMP threads spin-wait and lose most of their time slices
    // (3× slower here at load average 12); PASSIVE makes them sleep instead: a fairer peer under load.
    'torch-passive': { type: 'boolean', default: false },
  },
});
const REPS = Number(values.reps);
const THREADS = os.availableParallelism();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const r2 = (x: number) => Number(x.toFixed(2));

interface Timing {
  seconds: number;
  /** Seconds to the first result on stdout. */
  firstResult: number;
  /** Results seen with the first one (one batch). */
  firstCount: number;
  /** Seconds to the last result. */
  lastResult: number;
  results: number;
}

/**
 * Runs a process and times its results: `isResult(line)` says whether a stdout line is one image's
 * result (counted when the line arrives).
 */
function timeProcess(cmd: string, args: string[], isResult: (line: string) => boolean, env: NodeJS.ProcessEnv = {}): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    const t: Timing = { seconds: 0, firstResult: NaN, firstCount: 0, lastResult: NaN, results: 0 };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const now = (performance.now() - started) / 1000;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      const n = lines.filter(isResult).length;
      if (n === 0) return;
      if (t.results === 0) {
        t.firstResult = now;
        t.firstCount = n;
      }
      t.results += n;
      t.lastResult = now;
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      t.seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited with ${code}: ${stderr.slice(-2000)}`));
      else resolve(t);
    });
  });
}

const isFileLine = (files: Set<string>) => (line: string) => files.has(line);
const isJsonRow = (line: string) => line.trimStart().startsWith('{"file"');

function refitCmd(args: string[], env: NodeJS.ProcessEnv = {}) {
  return { cmd: process.execPath, args: [BIN, ...args], env };
}

/** Debian's torch for /usr/bin/python3, installed if missing (the machine reaches Debian's mirrors). */
function ensureTorch(): boolean {
  const ok = () => {
    try {
      execFileSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (ok()) return true;
  console.error('installing python3-torchvision (Debian) for the PyTorch peer…');
  try {
    execFileSync('apt-get', ['install', '-y', 'python3-torchvision'], { stdio: 'inherit' });
  } catch {
    return false;
  }
  return ok();
}

/** A classifier (random weights) exported as `refit export` does: TF.js files + model.onnx. */
async function exportedModel(tmp: string, backbone: string, labels: string[]): Promise<string> {
  const { getBackbone } = await import('../models/registry');
  const { attachHead, buildHead, disposeAll } = await import('../models/heads');
  const { tfjsFolderHandler } = await import('../models/tfjs-folder');
  const { exportRun } = await import('../main/engine/export');
  const info = getBackbone(backbone);
  const model = attachHead(info.build({ inputSize: 224 }), buildHead(info.featureDim, labels.length));
  const runFolder = path.join(tmp, backbone, 'runs', 'run-20250101-0001');
  await mkdir(runFolder, { recursive: true });
  const record: RunRecord = {
    format: 'refit-run', version: 1, id: 'run-20250101-0001', created: '2025-01-01T10:00:00.000Z', updated: '2025-01-01T10:05:00.000Z', status: 'completed',
    config: { backbone, weights: 'none', mode: 'full', inputSize: 224, head: { kind: 'linear' }, epochs: 1, batchSize: 8, learningRate: 0.001, valSplit: 0.2, seed: 1, augment: false, patience: 3, classWeights: false },
    labels, preprocessing: info.preprocessing, datasetFingerprint: 'ab'.repeat(32), featureKey: `${backbone}/none/224`, trainImages: 1, valImages: 1,
    history: [], bestEpoch: 1, lastEpoch: 1,
    metrics: { valAccuracy: 0, valLoss: 0, bestEpoch: 1, labels, confusion: labels.map((_, i) => labels.map((_, j) => (i === j ? 1 : 0))), perClass: labels.map((name) => ({ name, precision: 1, recall: 1, f1: 1, support: 1 })), misclassified: [] },
  };
  await writeFile(path.join(runFolder, 'run.json'), JSON.stringify(record));
  await model.save(tfjsFolderHandler(path.join(runFolder, 'best')));
  disposeAll(model);
  const out = path.join(tmp, backbone, 'export');
  await exportRun(runFolder, out);
  return out;
}

interface CaseRow {
  case: string;
  side: 'refit' | 'pytorch';
  images: number;
  seconds: number;
  startup: number;
  steady: number;
  imagesPerSec: number;
}

function summarize(name: string, side: 'refit' | 'pytorch', runs: Timing[]): CaseRow {
  const steady = runs.map((t) => (t.results > t.firstCount && t.lastResult > t.firstResult ? (t.results - t.firstCount) / (t.lastResult - t.firstResult) : NaN));
  const images = runs[0].results;
  return {
    case: name,
    side,
    images,
    seconds: median(runs.map((t) => t.seconds)),
    startup: median(runs.map((t) => t.firstResult)),
    steady: median(steady.filter((x) => !Number.isNaN(x))),
    imagesPerSec: median(runs.map((t) => t.results / t.seconds)),
  };
}

// ---------------------------------------------------------------------------------------------------
const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-infer-'));
const coldCache = path.join(tmp, 'cold-cache');
const all = (
  await Promise.all(['birds', 'mammals'].map(async (f) => (await import('../main/engine/image-files')).listImageFiles([path.join(PHOTOS, f)])))
).flat();
const photos = all.slice(0, Number(values.photos));
const photoSet = new Set(photos);
const one = [path.join(PHOTOS, 'birds', 'pelican.png')];
const torch = !values['skip-torch'] && ensureTorch();
console.error(`${photos.length} photos, ${THREADS} cores, ${REPS} repetitions${torch ? ', PyTorch peer' : ', no PyTorch peer'}`);

const labels5 = ['birds', 'flowers', 'fruit', 'mammals', 'vegetables'];
console.error('exporting ResNet-18 and ResNet-50 classifiers (224², 5 classes)…');
const { initBackend } = await import('../main/engine/backend');
await initBackend();
const r18 = await exportedModel(tmp, 'resnet18', labels5);
const r50 = await exportedModel(tmp, 'resnet50', labels5);

// First runs: empty cache (ImageNet graph built and optimised), first predict after an export.
console.error('first runs (empty cache / fresh export)…');
const firstRuns = {
  classifyImagenetEmptyCache: (await timeProcess(process.execPath, [BIN, 'classify-imagenet', ...one], isFileLine(new Set(one)), { REFIT_CACHE_DIR: coldCache })).seconds,
  predictResnet18FirstAfterExport: (await timeProcess(process.execPath, [BIN, 'predict', '--json', r18, ...one], isJsonRow, { REFIT_CACHE_DIR: coldCache })).seconds,
};
// Warm-up of the user cache these runs use (the normal case after the first run).
await timeProcess(process.execPath, [BIN, 'classify-imagenet', ...one], isFileLine(new Set(one)));
await timeProcess(process.execPath, [BIN, 'predict', '--json', r50, ...one], isJsonRow);
await timeProcess(process.execPath, [BIN, 'predict', '--json', r18, ...one], isJsonRow);

const cases: { name: string; refit: ReturnType<typeof refitCmd>; refitResult: (l: string) => boolean; torch?: { arch: string; classes: number } }[] = [
  { name: 'classify-imagenet (ResNet-50)', refit: refitCmd(['classify-imagenet', ...photos]), refitResult: isFileLine(photoSet), torch: { arch: 'resnet50', classes: 1000 } },
  { name: 'predict ResNet-18 export', refit: refitCmd(['predict', '--json', r18, ...photos]), refitResult: isJsonRow, torch: { arch: 'resnet18', classes: 5 } },
  { name: 'predict ResNet-50 export', refit: refitCmd(['predict', '--json', r50, ...photos]), refitResult: isJsonRow, torch: { arch: 'resnet50', classes: 5 } },
];
const timings = new Map<string, Timing[]>();
const push = (k: string, t: Timing) => timings.set(k, [...(timings.get(k) ?? []), t]);
const help: number[] = [];
const predictOne: number[] = [];
for (let rep = 0; rep < REPS; rep++) {
  console.error(`repetition ${rep + 1}/${REPS}…`);
  for (const c of cases) {
    push(`refit|${c.name}`, await timeProcess(c.refit.cmd, c.refit.args, c.refitResult, c.refit.env));
    if (torch && c.torch) {
      const env = values['torch-passive'] ? { OMP_WAIT_POLICY: 'PASSIVE' } : {};
      push(`pytorch|${c.name}`, await timeProcess(PYTHON, [TORCH_SCRIPT, c.torch.arch, String(c.torch.classes), ...photos], isFileLine(photoSet), env));
    }
  }
  help.push((await timeProcess(process.execPath, [BIN, '--help'], () => false)).seconds);
  predictOne.push((await timeProcess(process.execPath, [BIN, 'predict', '--json', r18, ...one], isJsonRow)).seconds);
}

const rows: CaseRow[] = [];
for (const c of cases) {
  rows.push(summarize(c.name, 'refit', timings.get(`refit|${c.name}`)!));
  if (timings.has(`pytorch|${c.name}`)) rows.push(summarize(c.name, 'pytorch', timings.get(`pytorch|${c.name}`)!));
}
const ratios = cases
  .map((c) => {
    const a = rows.find((r) => r.case === c.name && r.side === 'refit');
    const b = rows.find((r) => r.case === c.name && r.side === 'pytorch');
    return a && b ? { case: c.name, endToEnd: a.imagesPerSec / b.imagesPerSec, startup: b.startup / a.startup, steady: a.steady / b.steady } : undefined;
  })
  .filter((x) => x !== undefined);

// ---------------------------------------------------------------------------------------------------
interface OptionRow {
  variant: string;
  createSeconds: number;
  imagesPerSec: number;
}
const options: OptionRow[] = [];
if (!values['skip-options']) {
  console.error('onnxruntime session options (ImageNet ResNet-50, batch 8)…');
  const { imagenetOnnxKey, imagenetOnnxBytes } = await import('../main/engine/classify-imagenet');
  const { readdir } = await import('node:fs/promises');
  const { onnxCacheDir, readOnnxCache } = await import('../main/engine/onnx-cache');
  const key = await imagenetOnnxKey();
  const base = (await imagenetOnnxBytes(key)).bytes;
  // The optimised copy written by the runs above (the newest opt-* entry derived from this key).
  let optimized: Uint8Array | undefined;
  for (const name of await readdir(onnxCacheDir())) {
    if (!name.startsWith('opt-') || !name.endsWith('.json')) continue;
    const record = JSON.parse(await readFile(path.join(onnxCacheDir(), name), 'utf8')) as { about?: { optimizedFrom?: string } };
    if (record.about?.optimizedFrom !== key) continue;
    const got = await readOnnxCache(name.replace(/\.json$/, ''));
    if ('bytes' in got) optimized = got.bytes;
  }
  const ortModule = await import('onnxruntime-node');
  const ort = ((ortModule as unknown as { default?: typeof ortModule }).default ?? ortModule) as typeof ortModule;
  const x = new ort.Tensor('float32', new Float32Array(8 * 224 * 224 * 3).map((_, i) => Math.sin(i * 0.001) * 100), [8, 224, 224, 3]);
  type Opts = import('onnxruntime-node').InferenceSession.SessionOptions;
  const baseOpts: Opts = { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'], logSeverityLevel: 3 };
  const variants: [string, Uint8Array | undefined, Opts][] = [
    [`default: ${THREADS} threads, optimise at load ('all')`, base, baseOpts],
    [`saved optimised graph, optimisation 'disabled' at load`, optimized, { ...baseOpts, graphOptimizationLevel: 'disabled' }],
    ['1 intra-op thread', base, { ...baseOpts, intraOpNumThreads: 1 }],
    ['memory pattern off', base, { ...baseOpts, enableMemPattern: false }],
    ['CPU memory arena off', base, { ...baseOpts, enableCpuMemArena: false }],
  ];
  const measured = new Map<string, { create: number[]; rate: number[] }>();
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, bytes, opts] of variants) {
      if (!bytes) continue;
      let t = performance.now();
      const session = await ort.InferenceSession.create(bytes, opts);
      const create = (performance.now() - t) / 1000;
      const feeds = { [session.inputNames[0]]: x };
      await session.run(feeds); // first run (allocations)
      t = performance.now();
      const runs = 4;
      for (let i = 0; i < runs; i++) await session.run(feeds);
      const rate = (runs * 8) / ((performance.now() - t) / 1000);
      await session.release();
      const m = measured.get(name) ?? { create: [], rate: [] };
      m.create.push(create);
      m.rate.push(rate);
      measured.set(name, m);
    }
  }
  for (const [name, m] of measured) options.push({ variant: name, createSeconds: median(m.create), imagesPerSec: median(m.rate) });
}

// ---------------------------------------------------------------------------------------------------
interface ForwardRow {
  model: string;
  runtime: string;
  imagesPerSec: number;
}
const forward: ForwardRow[] = [];
if (values.forward) {
  const tf = await import('@tensorflow/tfjs');
  const { createForwardPass } = await import('../main/engine/onnx-runtime');
  const { getBackbone } = await import('../models/registry');
  const { attachHead, buildHead, disposeAll } = await import('../models/heads');
  for (const id of ['resnet18', 'resnet50']) {
    console.error(`forward ${id}…`);
    const info = getBackbone(id);
    const model = attachHead(info.build({ inputSize: 224 }), buildHead(info.featureDim, 10));
    const input = new Float32Array(8 * 224 * 224 * 3).map((_, i) => Math.sin(i * 0.001));
    for (const runtime of ['tfjs', 'auto'] as const) {
      const pass = await createForwardPass(model, { inputSize: 224, runtime });
      await pass.runFloat32(input, 8);
      const reps = runtime === 'tfjs' ? 1 : 4;
      const t = performance.now();
      for (let i = 0; i < reps; i++) await pass.runFloat32(input, 8);
      forward.push({ model: id, runtime: runtime === 'tfjs' ? `tfjs-${tf.getBackend()}` : pass.runtime, imagesPerSec: (reps * 8) / ((performance.now() - t) / 1000) });
      pass.dispose();
    }
    disposeAll(model);
  }
}
await rm(tmp, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------------
console.log(`\nEnd to end, real processes, ${photos.length} photos (medians of ${REPS}; ${os.cpus()[0]?.model.trim()}, ${THREADS} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
console.log(
  formatTable(
    ['case', 'side', 'images', 'wall s', 'start-up s (first result)', 'steady img/s', 'end-to-end img/s'],
    rows.map((r) => [r.case, r.side, r.images, r2(r.seconds), r2(r.startup), r2(r.steady), r2(r.imagesPerSec)]),
  ),
);
if (ratios.length) {
  console.log('\nRefit ÷ PyTorch (> 1: Refit faster)');
  console.log(formatTable(['case', 'end to end', 'start-up', 'steady state'], ratios.map((r) => [r.case, r2(r.endToEnd), r2(r.startup), r2(r.steady)])));
}
console.log(`\nrefit --help: ${r2(median(help))} s; refit predict of 1 photo with the ResNet-18 export (cold process): ${r2(median(predictOne))} s`);
console.log(`first runs: classify-imagenet with an empty cache ${r2(firstRuns.classifyImagenetEmptyCache)} s; predict right after an export ${r2(firstRuns.predictResnet18FirstAfterExport)} s`);
if (options.length) {
  console.log('\nonnxruntime session options (ImageNet ResNet-50, batch 8, in process)');
  console.log(formatTable(['variant', 'session creation s', 'steady img/s'], options.map((o) => [o.variant, r2(o.createSeconds), r2(o.imagesPerSec)])));
}
if (forward.length) {
  console.log('\nForward pass only (224², batch 8)');
  console.log(formatTable(['model', 'runtime', 'img/s'], forward.map((f) => [f.model, f.runtime, r2(f.imagesPerSec)])));
}
console.log(JSON.stringify({ photos: photos.length, cores: THREADS, reps: REPS, loadavg: os.loadavg(), rows, ratios, help: median(help), predictOne: median(predictOne), firstRuns, options, forward }, null, 2));
