// npx tsx bench/app-open.ts [-- --reps 3]
// The app's Classify screen, as the engine serves it (ClassifierSession, in this process, like the
// engine process of the app): a project whose newest run is a ResNet-50 classifier at 224² (random
// weights: speed does not depend on them), then classify.files over 48 photos of photos5. Reports the
// time to the first rows (model load included: a fresh session) and to the last, the same again with
// the model loaded, and the longest event-loop stall (what keeps IPC waiting). Medians of --reps.
// (Opening a project of thousands of images: `npm run bench:import`, its "warm" phase.)
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RunRecord } from '../main/api/training';
import { initBackend } from '../main/engine/backend';
import { listImageFiles } from '../main/engine/image-files';
import { createProject, runDir } from '../main/engine/project';
import { ClassifierSession } from '../main/engine/service/classifier-session';
import { formatTable } from '../main/host/format';
import { attachHead, buildHead, disposeAll } from '../models/heads';
import { getBackbone } from '../models/registry';
import { tfjsFolderHandler } from '../models/tfjs-folder';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PHOTOS = path.resolve(ROOT, '..', 'shared', 'datasets', 'photos5');
const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' } } });
const REPS = Number(values.reps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

await initBackend();
const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-app-'));
const project = await createProject(path.join(tmp, 'project'), { name: 'bench' });
const labels = ['birds', 'flowers', 'fruit', 'mammals', 'vegetables'];
const info = getBackbone('resnet50');
const id = 'run-20250101-0001';
const record: RunRecord = {
  format: 'refit-run', version: 1, id, created: '2025-01-01T10:00:00.000Z', updated: '2025-01-01T10:05:00.000Z', status: 'completed',
  config: { backbone: 'resnet50', weights: 'none', mode: 'full', inputSize: 224, head: { kind: 'linear' }, epochs: 1, batchSize: 8, learningRate: 0.001, valSplit: 0.2, seed: 1, augment: false, patience: 3, classWeights: false },
  labels, preprocessing: info.preprocessing, datasetFingerprint: 'ab'.repeat(32), featureKey: 'resnet50/none/224', trainImages: 1, valImages: 1,
  history: [], bestEpoch: 1, lastEpoch: 1,
  metrics: { valAccuracy: 0, valLoss: 0, bestEpoch: 1, labels, confusion: labels.map((_, i) => labels.map((_, j) => (i === j ? 1 : 0))), perClass: labels.map((name) => ({ name, precision: 1, recall: 1, f1: 1, support: 1 })), misclassified: [] },
};
const folder = runDir(project.dir, id);
await mkdir(folder, { recursive: true });
await writeFile(path.join(folder, 'run.json'), JSON.stringify(record));
const model = attachHead(info.build({ inputSize: 224 }), buildHead(info.featureDim, labels.length));
await model.save(tfjsFolderHandler(path.join(folder, 'best')));
disposeAll(model);

const photos = (await listImageFiles([path.join(PHOTOS, 'birds'), path.join(PHOTOS, 'mammals')])).slice(0, 48);

interface Sample {
  first: number;
  total: number;
  stall: number;
}
async function classifyOnce(session: ClassifierSession, events: { t: number; rows: number }[]): Promise<Sample> {
  events.length = 0;
  let last = performance.now();
  let stall = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last - 5);
    last = now;
  }, 5);
  const started = performance.now();
  await session.files({ paths: photos, tag: 'bench' });
  const total = (performance.now() - started) / 1000;
  clearInterval(timer);
  const first = events.find((e) => e.rows > 0);
  return { first: first ? (first.t - started) / 1000 : NaN, total, stall: stall / 1000 };
}

const cold: Sample[] = [];
const warm: Sample[] = [];
for (let rep = 0; rep < REPS; rep++) {
  const events: { t: number; rows: number }[] = [];
  const session = new ClassifierSession(() => project, (p) => events.push({ t: performance.now(), rows: p.rows.length }));
  cold.push(await classifyOnce(session, events));
  warm.push(await classifyOnce(session, events));
  session.close();
}
await rm(tmp, { recursive: true, force: true });
const row = (name: string, s: Sample[]) => [name, Number(median(s.map((x) => x.first)).toFixed(2)), Number(median(s.map((x) => x.total)).toFixed(2)), Number((photos.length / median(s.map((x) => x.total))).toFixed(1)), Math.round(median(s.map((x) => x.stall)) * 1000)];
console.log(`Classify screen (engine's ClassifierSession), ${photos.length} photos, ResNet-50 @224², medians of ${REPS}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(formatTable(['request', 'first rows s', 'all rows s', 'img/s', 'longest event-loop stall ms'], [row('first (model loads)', cold), row('next (model loaded)', warm)]));
console.log(JSON.stringify({ photos: photos.length, cold, warm }, null, 2));
