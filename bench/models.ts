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

interface ModelBench {
  id: string;
  backend: string;
  inputSize: number;
  batch: number;
  inferImagesPerSec: number;
  trainImagesPerSec: number;
  peakRssMiB: number;
  error?: string;
}

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    batch: { type: 'string', default: '8' },
    'train-batch': { type: 'string', default: '4' },
    steps: { type: 'string', default: '2' },
    size: { type: 'string' },
    one: { type: 'string' },
  },
});

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

async function benchOne(id: string): Promise<ModelBench> {
  const backend = await initBackend();
  const info = getBackbone(id);
  const inputSize = values.size ? Number(values.size) : info.inputSize;
  const batch = Number(values.batch);
  const trainBatch = Number(values['train-batch']);
  const steps = Number(values.steps);

  const backbone = info.build({ inputSize });
  const classifier = attachHead(backbone, buildHead(info.featureDim, 10, { kind: 'linear' }));

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

  classifier.compile({ optimizer: tf.train.adam(1e-4), loss: 'categoricalCrossentropy' });
  const xt = tf.randomUniform([trainBatch, inputSize, inputSize, 3], -1, 1);
  const yt = tf.oneHot(tf.randomUniform([trainBatch], 0, 10, 'int32') as tf.Tensor1D, 10);
  await classifier.trainOnBatch(xt, yt); // warm-up: kernels compiled, optimizer slots created
  const trainSeconds = await timed(async () => {
    for (let i = 0; i < steps; i++) await classifier.trainOnBatch(xt, yt);
  });
  tf.dispose([xt, yt]);

  return {
    id,
    backend: backend.name,
    inputSize,
    batch,
    inferImagesPerSec: (batch * steps) / inferSeconds,
    trainImagesPerSec: (trainBatch * steps) / trainSeconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

function runChild(id: string): Promise<ModelBench> {
  return new Promise((resolve) => {
    const args = process.argv.slice(2).filter((a, i, all) => a !== '--models' && all[i - 1] !== '--models');
    const child = fork(fileURLToPath(import.meta.url), [...args, '--one', id], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: ModelBench | undefined;
    child.on('message', (m) => (result = m as ModelBench));
    child.on('exit', (code, signal) =>
      resolve(
        result ?? {
          id,
          backend: '?',
          inputSize: 0,
          batch: 0,
          inferImagesPerSec: NaN,
          trainImagesPerSec: NaN,
          peakRssMiB: NaN,
          error: `child exited with ${signal ?? code}`,
        },
      ),
    );
  });
}

if (values.one) {
  try {
    process.send!(await benchOne(values.one));
  } catch (err) {
    console.error(`${values.one}: ${(err as Error).message}`);
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
      ['model', 'backend', 'input', 'infer img/s', 'train img/s', 'peak RSS MiB', 'note'],
      results.map((r) => [
        r.id,
        r.backend,
        r.inputSize,
        Number(r.inferImagesPerSec.toFixed(2)),
        Number(r.trainImagesPerSec.toFixed(2)),
        Math.round(r.peakRssMiB),
        r.error ?? '',
      ]),
    ),
  );
  console.log(JSON.stringify(results));
}
