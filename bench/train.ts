// npm run bench:train [-- --backbone resnet50 --epochs 10 --data DIR --skip-import]
// 1. import time for 5,000 files (bench/import.ts, cold and warm);
// 2. the full `refit train` pipeline on photos5 (ImageNet ResNet-50, head mode, the CLI's defaults),
//    first run (features extracted) and cached run (features from the project's cache): wall time,
//    feature-extraction images/s, head-training seconds per epoch, validation accuracy, and the peak
//    memory of the training process. Prints a table, then JSON.
import { execFileSync } from 'node:child_process';
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
    backbone: { type: 'string', default: 'resnet50' },
    epochs: { type: 'string', default: '10' },
    data: { type: 'string', default: path.resolve(here, '../../shared/datasets/photos5') },
    'skip-import': { type: 'boolean', default: false },
  },
});

interface PipelineResult {
  run: 'first' | 'cached';
  seconds: number;
  extractImagesPerSec: number | null;
  headEpochSeconds: number;
  valAccuracy: number;
  trainingProcessPeakRssMiB: number;
}

async function pipeline(run: PipelineResult['run'], projectDir: string, outDir: string): Promise<PipelineResult> {
  const args = [values.data!, '--backbone', values.backbone!, '--mode', 'head', '--epochs', values.epochs!, '--project', projectDir, '--out', outDir];
  const { seconds, events, trainingProcessPeakRssMiB } = await runRefitTrain(args);
  const extract = events.filter((e) => e.type === 'progress' && e.phase === 'extract' && e.imagesPerSec);
  const epochs = events.filter((e) => e.type === 'epoch').map((e) => e.record.seconds as number);
  const result = events.at(-1);
  return {
    run,
    seconds: Number(seconds.toFixed(1)),
    extractImagesPerSec: extract.length ? Number(extract.at(-1).imagesPerSec.toFixed(2)) : null,
    headEpochSeconds: Number((epochs.reduce((a, b) => a + b, 0) / epochs.length).toFixed(3)),
    valAccuracy: result.metrics.valAccuracy,
    trainingProcessPeakRssMiB,
  };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-train-'));
try {
  let importResult: unknown = null;
  if (!values['skip-import']) {
    process.stderr.write('importing 5,000 files…\n');
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'import.ts')], { encoding: 'utf8', cwd: path.resolve(here, '..') });
    console.log(out.slice(0, out.indexOf('{')).trim());
    importResult = JSON.parse(out.slice(out.indexOf('{')));
  }
  const projectDir = path.join(work, 'project');
  process.stderr.write('training, first run…\n');
  const first = await pipeline('first', projectDir, path.join(work, 'model'));
  process.stderr.write('training, cached run…\n');
  const cached = await pipeline('cached', projectDir, path.join(work, 'model'));
  const rows = [first, cached];
  console.log(
    formatTable(
      ['photos5 pipeline', 'wall s', 'extract img/s', 'head s/epoch', 'val acc', 'training peak RSS MiB'],
      rows.map((r) => [r.run, r.seconds, r.extractImagesPerSec ?? 0, r.headEpochSeconds, Number(r.valAccuracy.toFixed(3)), r.trainingProcessPeakRssMiB]),
    ),
  );
  console.log(JSON.stringify({ benchmark: 'train', backbone: values.backbone, epochs: Number(values.epochs), cores: os.availableParallelism(), import: importResult, pipeline: rows }, null, 2));
} finally {
  await rm(work, { recursive: true, force: true });
}
