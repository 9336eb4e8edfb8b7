// npm run bench:models [-- --models resnet18,resnet50 --batch 4 --steps 2 --size 224]
// Per backbone, on the active backend: inference images/s at its default input size, one training step's
// images/s (whole network trainable, Adam, 10-class linear head) and the peak memory of a process that did
// only that model (each model runs in a child process so that peaks do not mix). Prints a table, then JSON.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../main/engine/backend';
import { listBackbones, getBackbone } from '../models/registry';
import { buildHead, attachHead } from '../models/heads';
import { formatTable } from '../main/host/format';
import { isWasmOutOfMemory } from '../main/engine/errors';

interface ModelBench {
  id: string;
  backend: string;
  inputSize: number;
  batch: number;
  inferImagesPerSec: number;
  /** Batch of the training step that fitted (halved from --train-batch after an out-of-memory). */
  trainBatch: number;
  trainImagesPerSec: number;
  peakRssMiB: number;
  error?: string;
}

type ChildResult = { phase: 'infer' | 'train'; values: Partial<ModelBench> };

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    batch: { type: 'string', default: '8' },
    'train-batch': { type: 'string', default: '4' },
    steps: { type: 'string', default: '2' },
    size: { type: 'string' },
    one: { type: 'string' },
    'skip-infer': { type: 'boolean', default: false },
  },
});

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

async function benchOne(id: string, send: (r: ChildResult) => void): Promise<void> {
  const backend = await initBackend();
  const info = getBackbone(id);
  const inputSize = values.size ? Number(values.size) : info.inputSize;
  const batch = Number(values.batch);
  const trainBatch = Number(values['train-batch']);
  const steps = Number(values.steps);

  const backbone = info.build({ inputSize });
  const classifier = attachHead(backbone, buildHead(info.featureDim, 10, { kind: 'linear' }));

  if (!values['skip-infer']) {
    const x = tf.randomUniform([batch, inputSize, inputSize, 3], -1, 1);
    const warm = classifier.predict(x) as tf.Tensor;
    await warm.data();
    warm.dispose();
    const inferSeconds = await timed(async () => {
      for (let i = 0; i < steps; i++) {
        const y = classifier.predict(x) as tf.Tensor;
        await y.data();
        y.dispose();
      }
    });
    x.dispose();
    send({ phase: 'infer', values: { backend: backend.name, inputSize, batch, inferImagesPerSec: (batch * steps) / inferSeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024 } });
  }

  classifier.compile({ optimizer: tf.train.adam(1e-4), loss: 'categoricalCrossentropy' });
  const xt = tf.randomUniform([trainBatch, inputSize, inputSize, 3], -1, 1);
  const yt = tf.oneHot(tf.randomUniform([trainBatch], 0, 10, 'int32') as tf.Tensor1D, 10);
  await classifier.trainOnBatch(xt, yt); // warm-up: kernels compiled, optimizer slots created
  const trainSeconds = await timed(async () => {
    for (let i = 0; i < steps; i++) await classifier.trainOnBatch(xt, yt);
  });
  tf.dispose([xt, yt]);
  send({ phase: 'train', values: { trainBatch, trainImagesPerSec: (trainBatch * steps) / trainSeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024 } });
}

/** Runs one model in a child process; a training step that runs out of memory is retried at half the batch. */
async function runChild(id: string): Promise<ModelBench> {
  const result: ModelBench = { id, backend: '?', inputSize: 0, batch: 0, inferImagesPerSec: NaN, trainBatch: 0, trainImagesPerSec: NaN, peakRssMiB: NaN };
  const base = process.argv.slice(2).filter((a, i, all) => !['--models', '--train-batch'].includes(a) && !['--models', '--train-batch'].includes(all[i - 1]));
  for (let trainBatch = Number(values['train-batch']); trainBatch >= 1; trainBatch = Math.floor(trainBatch / 2)) {
    const args = [...base, '--one', id, '--train-batch', String(trainBatch), ...(Number.isNaN(result.inferImagesPerSec) ? [] : ['--skip-infer'])];
    let trained = false;
    let exit = '';
    await new Promise<void>((resolve) => {
      const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('message', (m: ChildResult) => {
        const peak = Math.max(Number.isNaN(result.peakRssMiB) ? 0 : result.peakRssMiB, m.values.peakRssMiB ?? 0);
        Object.assign(result, m.values, { peakRssMiB: peak });
        if (m.phase === 'train') trained = true;
      });
      child.on('exit', (code, signal) => {
        exit = stderr.trim().split('\n').at(-1) || `exited with ${signal ?? code}`;
        resolve();
      });
    });
    if (trained) {
      if (trainBatch < Number(values['train-batch'])) result.error = `training at batch ${trainBatch * 2} ran out of wasm memory`;
      return result;
    }
    result.error = exit;
    if (Number.isNaN(result.inferImagesPerSec)) return result; // inference itself failed
  }
  return result;
}

if (values.one) {
  try {
    await benchOne(values.one, (r) => process.send!(r));
  } catch (err) {
    console.error(`${values.one}: ${isWasmOutOfMemory(err) ? 'out of wasm memory' : (err as Error).message}`);
    process.exitCode = 1;
  }
} else {
  const ids = values.models ? values.models.split(',') : listBackbones().map((m) => m.id);
  const results: ModelBench[] = [];
  for (const id of ids) {
    process.stderr.write(`benchmarking ${id}…\n`);
    results.push(await runChild(id));
  }
  console.log(
    formatTable(
      ['model', 'backend', 'input', 'infer img/s', 'train batch', 'train img/s', 'peak RSS MiB', 'note'],
      results.map((r) => [
        r.id,
        r.backend,
        r.inputSize,
        Number(r.inferImagesPerSec.toFixed(2)),
        r.trainBatch,
        Number(r.trainImagesPerSec.toFixed(2)),
        Math.round(r.peakRssMiB),
        r.error ?? '',
      ]),
    ),
  );
  console.log(JSON.stringify(results));
}
