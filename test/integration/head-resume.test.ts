// Head mode keeps its progress in head-last/ while only the head trains (last/ holds the starting
// network). A cancelled head-mode run must resume from the head it had reached, reuse the cached
// features, and finish with the full history.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TrainConfig, TrainEvent } from '../../main/api/training';
import { loadModel, checkpointExists } from '../../main/engine/checkpoint';
import { addSources, createProject, newRunId, readRun, runDir, scanProject } from '../../main/engine/project';
import { runTraining } from '../../main/engine/trainer';
import { disposeAll } from '../../models/heads';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-head-resume-'));
  for (const c of ['birds', 'fruit', 'mammals']) {
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 8);
    await mkdir(path.join(tmp, 'data', c), { recursive: true });
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(tmp, 'data', c, f));
  }
});

afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('resuming a head-mode run', () => {
  it('continues from the head it reached, with cached features, and completes the history', async () => {
    const config: TrainConfig = {
      backbone: 'resnet50', weights: 'imagenet', mode: 'head', inputSize: 64, head: { kind: 'linear' },
      epochs: 6, batchSize: 4, valSplit: 0.25, seed: 5, augment: false, patience: 10, classWeights: false,
    };
    const project = await createProject(path.join(tmp, 'project'), { name: 'resume' });
    await addSources(project, [path.join(tmp, 'data')]);
    const { images } = await scanProject(project);
    const runId = newRunId();
    const dir = runDir(project.dir, runId);

    // Cancel once epoch 3 is on disk.
    const controller = new AbortController();
    const first: TrainEvent[] = [];
    const cancelled = await runTraining({ projectDir: project.dir, runId, config, images }, {
      signal: controller.signal,
      emit: (e) => {
        first.push(e);
        if (e.type === 'epoch' && e.record.epoch === 3) controller.abort();
      },
    });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(await checkpointExists(path.join(dir, 'head-last'))).toBe(true);
    const reached = await loadModel(path.join(dir, 'head-last'));
    const reachedWeights = reached.getWeights().map((w) => Array.from(w.dataSync()));
    disposeAll(reached);

    const second: TrainEvent[] = [];
    const resumed = await runTraining({ projectDir: project.dir, runId, config, images, resume: true }, { emit: (e) => second.push(e) });
    expect(resumed.status).toBe('completed');
    const record = await readRun(project.dir, runId);
    expect(record.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(record.history.slice(0, 3)).toEqual(cancelled.history);

    // No feature was extracted again.
    expect(second.some((e) => e.type === 'progress' && e.phase === 'extract' && /all \d+ features cached/.test(e.message ?? ''))).toBe(true);
    expect(second.some((e) => e.type === 'progress' && e.phase === 'extract' && e.imagesPerSec !== undefined)).toBe(false);

    // Training went on from the head reached, not from a fresh one: epoch 4's validation loss is
    // closer to epoch 3's than to epoch 1's (a fresh head starts near epoch 1's loss).
    const [e1, , e3, e4] = record.history;
    console.log(`head-mode resume: val loss epoch 1 ${e1.valLoss.toFixed(4)}, 3 ${e3.valLoss.toFixed(4)}, resumed 4 ${e4.valLoss.toFixed(4)}`);
    expect(e1.valLoss - e3.valLoss).toBeGreaterThan(0.05);
    expect(Math.abs(e4.valLoss - e3.valLoss)).toBeLessThan(Math.abs(e4.valLoss - e1.valLoss));

    // And the head it finished with moved on from there.
    const final = await loadModel(path.join(dir, 'head-last'));
    const finalWeights = final.getWeights().map((w) => Array.from(w.dataSync()));
    disposeAll(final);
    expect(finalWeights.length).toBe(reachedWeights.length);
    expect(finalWeights.some((w, i) => w.some((v, j) => v !== reachedWeights[i][j]))).toBe(true);
  }, 300_000);
});
