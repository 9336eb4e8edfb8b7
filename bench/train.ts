// npm run bench:train [-- --backbone resnet50 --epochs 10 --data DIR --skip-import]
// 1. import time for 5,000 files (bench/import.ts, cold and warm);
// 2. the full `refit train` pipeline on photos5 (ImageNet ResNet-50, head mode, the CLI's defaults),
//    first run (features extracted) and cached run (features from the project's cache): wall time,
//    feature-extraction images/s, head-training seconds per epoch, validation accuracy, and the peak
//    memory of the training process. Prints a table, then JSON.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable } from '../main/host/format';

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

/** Peak resident memory (VmHWM) of any running training process, polled. */
function watchTrainingProcesses(): { stop: () => number } {
  let peakKiB = 0;
  const poll = () => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('train-worker')) continue;
        const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
      } catch {
        // the process ended between listing and reading
      }
    }
  };
  const timer = setInterval(poll, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round(peakKiB / 1024);
    },
  };
}

async function pipeline(run: PipelineResult['run'], projectDir: string, outDir: string): Promise<PipelineResult> {
  const args = [path.resolve(here, '../bin/refit.mjs'), 'train', values.data!, '--backbone', values.backbone!, '--mode', 'head', '--epochs', values.epochs!, '--project', projectDir, '--out', outDir, '--json'];
  const watch = watchTrainingProcesses();
  const start = performance.now();
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`refit train exited with ${code}`))));
  });
  const seconds = (performance.now() - start) / 1000;
  const events = lines.map((l) => JSON.parse(l));
  const extract = events.filter((e) => e.type === 'progress' && e.phase === 'extract' && e.imagesPerSec);
  const epochs = events.filter((e) => e.type === 'epoch').map((e) => e.record.seconds as number);
  const result = events.at(-1);
  return {
    run,
    seconds: Number(seconds.toFixed(1)),
    extractImagesPerSec: extract.length ? Number(extract.at(-1).imagesPerSec.toFixed(2)) : null,
    headEpochSeconds: Number((epochs.reduce((a, b) => a + b, 0) / epochs.length).toFixed(3)),
    valAccuracy: result.metrics.valAccuracy,
    trainingProcessPeakRssMiB: watch.stop(),
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
