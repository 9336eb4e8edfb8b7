// npm run bench:finetune [-- --epochs 2 --data DIR --input-size 224 --only default|tfjs]
// `refit train --mode finetune` on photos5 (ImageNet ResNet-50), each run in a fresh project: once with the
// default forward runtime (the frozen stages through onnxruntime) and once with REFIT_FORWARD=tfjs (the
// frozen stages in TF.js). Per run: wall time, fine-tune seconds per epoch (training + validation),
// fine-tune images/s, the runtime the trainer reports for the frozen stages, validation accuracy and the
// peak memory of the training process. Prints a table, then JSON.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable } from '../main/host/format';
import { runRefitTrain } from './refit-train-run';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '2' },
    data: { type: 'string', default: path.resolve(here, '../../shared/datasets/photos5') },
    'input-size': { type: 'string' },
    only: { type: 'string' },
  },
});

const variants = [
  { forward: 'default', env: {} as Record<string, string> },
  { forward: 'REFIT_FORWARD=tfjs', env: { REFIT_FORWARD: 'tfjs' } },
  // The network phase's top trained in TF.js instead of onnxruntime (the frozen stages still in onnxruntime).
  { forward: 'REFIT_TRAINER=tfjs', env: { REFIT_TRAINER: 'tfjs' } },
].filter((v) => !values.only || v.forward.toLowerCase().includes(values.only.toLowerCase()));

interface FinetuneResult {
  forward: string;
  seconds: number;
  finetuneEpochSeconds: number[];
  finetuneImagesPerSec: number | null;
  runtime: string | null;
  valAccuracy: number;
  trainingProcessPeakRssMiB: number;
  warnings: string[];
}

async function finetune(variant: (typeof variants)[number], work: string): Promise<FinetuneResult> {
  const dir = await mkdtemp(path.join(work, 'run-'));
  const args = [values.data!, '--backbone', 'resnet50', '--mode', 'finetune', '--epochs', values.epochs!];
  if (values['input-size']) args.push('--input-size', values['input-size']);
  args.push('--project', path.join(dir, 'project'), '--out', path.join(dir, 'model'));
  const { seconds, events, trainingProcessPeakRssMiB } = await runRefitTrain(args, variant.env);
  const progress = events.filter((e) => e.type === 'progress');
  const rate = progress.filter((e) => e.phase === 'finetune' && e.imagesPerSec).at(-1);
  const result = events.find((e) => e.type === 'result');
  return {
    forward: variant.forward,
    seconds: Number(seconds.toFixed(1)),
    finetuneEpochSeconds: events.filter((e) => e.type === 'epoch' && e.record.phase === 'finetune').map((e) => Number(e.record.seconds.toFixed(1))),
    finetuneImagesPerSec: rate ? Number(rate.imagesPerSec.toFixed(2)) : null,
    runtime: progress.find((e) => e.message?.includes('frozen stages'))?.message ?? null,
    valAccuracy: result.metrics.valAccuracy,
    trainingProcessPeakRssMiB,
    warnings: events.filter((e) => e.type === 'warning').map((e) => e.message),
  };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-finetune-'));
try {
  const rows: FinetuneResult[] = [];
  for (const variant of variants) {
    process.stderr.write(`fine-tuning, forward ${variant.forward}…\n`);
    rows.push(await finetune(variant, work));
  }
  console.log(
    formatTable(
      ['photos5 finetune', 'wall s', 'finetune s/epoch', 'finetune img/s', 'val acc', 'training peak RSS MiB'],
      rows.map((r) => [r.forward, r.seconds, r.finetuneEpochSeconds.join(', '), r.finetuneImagesPerSec ?? 0, Number(r.valAccuracy.toFixed(3)), r.trainingProcessPeakRssMiB]),
    ),
  );
  for (const r of rows) console.log(`${r.forward}: ${r.runtime ?? '(no frozen-stages message)'}`);
  const config = { backbone: 'resnet50', mode: 'finetune', epochs: Number(values.epochs), inputSize: values['input-size'] ? Number(values['input-size']) : null };
  console.log(JSON.stringify({ benchmark: 'finetune', ...config, cores: os.availableParallelism(), rows }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
