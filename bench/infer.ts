// npm run bench:infer [-- --reps 3 --tfjs-reps 2 --skip-tfjs-e2e]
// Forward-pass speed on this machine: for ResNet-18 and ResNet-50 at 224², batch 8, images/s through
// the TF.js backend (wasm here) and through onnxruntime-node (toOnnx graph, intra-op threads = cores),
// after one warm-up batch. Then end to end, the real CLI over a folder of real photos (decode,
// resize, preprocessing, model loading and process start included): `refit classify-imagenet`
// (ImageNet ResNet-50) and `refit predict` with an exported ResNet-18 classifier at 224², each
// through onnxruntime (the default) and through TF.js (REFIT_FORWARD=tfjs). Prints a table, then JSON.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import type { RunRecord } from '../main/api/training';
import { initBackend } from '../main/engine/backend';
import { exportRun } from '../main/engine/export';
import { listImageFiles } from '../main/engine/image-files';
import { createForwardPass, onnxRuntimeStatus } from '../main/engine/onnx-runtime';
import { formatTable } from '../main/host/format';
import { attachHead, buildHead, disposeAll } from '../models/heads';
import { getBackbone } from '../models/registry';
import { tfjsFolderHandler } from '../models/tfjs-folder';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'refit.mjs');
const PHOTOS = path.resolve(ROOT, '..', 'shared', 'datasets', 'photos5');

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    'tfjs-reps': { type: 'string', default: '2' },
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '224' },
    folders: { type: 'string', default: 'birds,mammals' },
    'skip-tfjs-e2e': { type: 'boolean', default: false },
  },
});
const REPS = Number(values.reps);
const TFJS_REPS = Number(values['tfjs-reps']);
const BATCH = Number(values.batch);
const SIZE = Number(values.size);
const THREADS = os.availableParallelism();

interface ForwardRow {
  model: string;
  runtime: string;
  batch: number;
  reps: number;
  imagesPerSec: number;
}
interface EndToEndRow {
  command: string;
  runtime: string;
  images: number;
  seconds: number;
  imagesPerSec: number;
}

async function timeIt(reps: number, once: () => Promise<void>): Promise<number> {
  await once(); // warm-up
  const started = performance.now();
  for (let i = 0; i < reps; i++) await once();
  return (performance.now() - started) / 1000 / reps;
}

async function forwardBench(id: string): Promise<ForwardRow[]> {
  const info = getBackbone(id);
  const model = attachHead(info.build({ inputSize: SIZE }), buildHead(info.featureDim, 10));
  const input = new Float32Array(BATCH * SIZE * SIZE * 3).map((_, i) => Math.sin(i * 0.001));
  const rows: ForwardRow[] = [];
  try {
    const x = tf.tensor4d(input, [BATCH, SIZE, SIZE, 3]);
    const tfjs = await createForwardPass(model, { inputSize: SIZE, runtime: 'tfjs' });
    const tfSeconds = await timeIt(TFJS_REPS, async () => {
      const y = await tfjs.run(x);
      await y.data();
      y.dispose();
    });
    tfjs.dispose();
    x.dispose();
    rows.push({ model: id, runtime: `tfjs-${tf.getBackend()}`, batch: BATCH, reps: TFJS_REPS, imagesPerSec: BATCH / tfSeconds });
    for (const threads of [...new Set([1, THREADS])]) {
      const forward = await createForwardPass(model, { inputSize: SIZE, threads });
      if (forward.runtime !== 'onnxruntime') {
        console.error(`onnxruntime not used: ${forward.reason}`);
        forward.dispose();
        break;
      }
      const seconds = await timeIt(REPS, async () => void (await forward.runFloat32(input, BATCH)));
      forward.dispose();
      rows.push({ model: id, runtime: `onnxruntime ${threads}t`, batch: BATCH, reps: REPS, imagesPerSec: BATCH / seconds });
    }
  } finally {
    disposeAll(model);
  }
  return rows;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const started = performance.now();
  await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return (performance.now() - started) / 1000;
}

/** A ResNet-18 classifier (random weights; speed does not depend on them) exported as `refit export` does. */
async function exportedResNet18(tmp: string, labels: string[]): Promise<string> {
  const info = getBackbone('resnet18');
  const model = attachHead(info.build({ inputSize: SIZE }), buildHead(info.featureDim, labels.length));
  const runFolder = path.join(tmp, 'runs', 'run-20250101-0001');
  await mkdir(runFolder, { recursive: true });
  const record: RunRecord = {
    format: 'refit-run', version: 1, id: 'run-20250101-0001', created: '2025-01-01T10:00:00.000Z', updated: '2025-01-01T10:05:00.000Z', status: 'completed',
    config: { backbone: 'resnet18', weights: 'none', mode: 'full', inputSize: SIZE, head: { kind: 'linear' }, epochs: 1, batchSize: 8, learningRate: 0.001, valSplit: 0.2, seed: 1, augment: false, patience: 3, classWeights: false },
    labels, preprocessing: info.preprocessing, datasetFingerprint: 'ab'.repeat(32), featureKey: `resnet18/none/${SIZE}`, trainImages: 1, valImages: 1,
    history: [], bestEpoch: 1, lastEpoch: 1,
    metrics: { valAccuracy: 0, valLoss: 0, bestEpoch: 1, labels, confusion: labels.map((_, i) => labels.map((_, j) => (i === j ? 1 : 0))), perClass: labels.map((name) => ({ name, precision: 1, recall: 1, f1: 1, support: 1 })), misclassified: [] },
  };
  await writeFile(path.join(runFolder, 'run.json'), JSON.stringify(record));
  await model.save(tfjsFolderHandler(path.join(runFolder, 'best')));
  disposeAll(model);
  const out = path.join(tmp, 'export');
  await exportRun(runFolder, out);
  return out;
}

async function endToEnd(): Promise<EndToEndRow[]> {
  const folders = values.folders!.split(',').map((f) => path.join(PHOTOS, f));
  const images = (await listImageFiles(folders)).length;
  const rows: EndToEndRow[] = [];
  const runtimes: [string, NodeJS.ProcessEnv][] = [['onnxruntime', {}], ...(values['skip-tfjs-e2e'] ? [] : [['tfjs', { REFIT_FORWARD: 'tfjs' }] as [string, NodeJS.ProcessEnv]])];
  const add = (command: string, runtime: string, count: number, seconds: number) => rows.push({ command, runtime, images: count, seconds, imagesPerSec: count / seconds });
  const one = [path.join(PHOTOS, 'birds', 'pelican.png')];
  for (const [runtime, env] of runtimes) {
    add('classify-imagenet', runtime, images, await cli(['classify-imagenet', '--json', ...folders], env));
    add('classify-imagenet (1 photo: start-up)', runtime, 1, await cli(['classify-imagenet', '--json', ...one], env));
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-infer-'));
  try {
    const model = await exportedResNet18(tmp, ['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    for (const [runtime, env] of runtimes) {
      add('predict resnet18', runtime, images, await cli(['predict', '--json', model, ...folders], env));
      add('predict resnet18 (1 photo: start-up)', runtime, 1, await cli(['predict', '--json', model, ...one], env));
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return rows;
}

const backend = await initBackend();
const ort = await onnxRuntimeStatus();
console.error(`TF.js backend ${backend.name}, onnxruntime ${ort.available ? ort.version : `unavailable (${ort.reason})`}, ${THREADS} cores`);
const forward: ForwardRow[] = [];
for (const id of ['resnet18', 'resnet50']) {
  console.error(`forward ${id} ${SIZE}² batch ${BATCH}…`);
  forward.push(...(await forwardBench(id)));
}
console.error('end to end (real CLI)…');
const e2e = await endToEnd();

console.log(`Forward passes at ${SIZE}², batch ${BATCH} (${os.cpus()[0]?.model.trim()}, ${THREADS} cores)`);
console.log(formatTable(['model', 'runtime', 'batch', 'reps', 'images/s'], forward.map((r) => [r.model, r.runtime, r.batch, r.reps, Number(r.imagesPerSec.toFixed(2))])));
console.log('\nEnd to end, real CLI (process start, model load, decode included)');
console.log(formatTable(['command', 'runtime', 'images', 'seconds', 'images/s'], e2e.map((r) => [r.command, r.runtime, r.images, Number(r.seconds.toFixed(2)), Number(r.imagesPerSec.toFixed(2))])));
const steady = (command: string, runtime: string) => {
  const all = e2e.find((r) => r.command === command && r.runtime === runtime);
  const one = e2e.find((r) => r.command === `${command} (1 photo: start-up)` && r.runtime === runtime);
  return all && one && all.seconds > one.seconds ? (all.images - 1) / (all.seconds - one.seconds) : undefined;
};
const marginal = e2e
  .filter((r) => !r.command.includes('start-up'))
  .map((r) => ({ command: r.command, runtime: r.runtime, imagesPerSecAfterStartup: steady(r.command, r.runtime) }));
for (const m of marginal) {
  if (m.imagesPerSecAfterStartup) console.log(`  ${m.command} via ${m.runtime}: ${m.imagesPerSecAfterStartup.toFixed(2)} images/s after start-up`);
}
console.log(JSON.stringify({ size: SIZE, batch: BATCH, cores: THREADS, backend: backend.name, onnxruntime: ort, forward, endToEnd: e2e, marginal }, null, 2));
