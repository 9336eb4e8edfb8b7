// Head-mode feature extraction runs through onnxruntime when it is available: the cached features
// equal those TF.js computes (REFIT_FORWARD=tfjs) on the same real photos, within 1e-4.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TrainConfig, TrainEvent } from '../../main/api/training';
import { FORWARD_ENV } from '../../main/engine/onnx-runtime';
import { addSources, createProject, newRunId, scanProject } from '../../main/engine/project';
import { runTraining } from '../../main/engine/trainer';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
let tmp: string;
let data: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-onnx-features-'));
  data = path.join(tmp, 'data');
  for (const c of ['birds', 'fruit', 'mammals']) {
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 3);
    await mkdir(path.join(data, c), { recursive: true });
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(data, c, f));
  }
});

afterAll(async () => {
  delete process.env[FORWARD_ENV];
  await rm(tmp, { recursive: true, force: true });
});

const config: TrainConfig = {
  backbone: 'resnet50', weights: 'imagenet', mode: 'head', inputSize: 64, head: { kind: 'linear' },
  epochs: 1, batchSize: 8, valSplit: 0.25, seed: 7, augment: false, patience: 5, classWeights: false,
};

/** Trains in this process (head mode); the cached feature files (relative path → values) and which runtime computed them. */
async function featuresOf(name: string): Promise<{ features: Map<string, Float32Array>; runtime: string | undefined }> {
  const project = await createProject(path.join(tmp, name), { name });
  await addSources(project, [data]);
  const report = await scanProject(project);
  const events: TrainEvent[] = [];
  await runTraining({ projectDir: project.dir, runId: newRunId(), config, images: report.images }, { emit: (e) => events.push(e) });
  const root = path.join(project.dir, 'cache', 'features');
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.f32')).sort();
  const out = new Map<string, Float32Array>();
  for (const f of files) {
    const bytes = await readFile(path.join(root, f));
    out.set(f, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
  }
  const runtime = events.find((e) => e.type === 'progress' && e.phase === 'extract' && /feature vectors in/.test(e.message ?? ''));
  return { features: out, runtime: runtime?.type === 'progress' ? runtime.message : undefined };
}

describe('feature extraction through onnxruntime', () => {
  it('caches the same ResNet-50 features as TF.js', async () => {
    delete process.env[FORWARD_ENV];
    const { features: onnx, runtime: onnxRuntime } = await featuresOf('onnx');
    process.env[FORWARD_ENV] = 'tfjs';
    const { features: tfjs, runtime: tfjsRuntime } = await featuresOf('tfjs');
    delete process.env[FORWARD_ENV];
    expect(onnxRuntime).toBe('computing 9 feature vectors in onnxruntime');
    expect(tfjsRuntime).toBe(`computing 9 feature vectors in TF.js (${FORWARD_ENV}=tfjs)`);
    expect(onnx.size).toBe(9);
    expect([...onnx.keys()]).toEqual([...tfjs.keys()]);
    let worst = 0;
    let largest = 0;
    for (const [file, a] of onnx) {
      const b = tfjs.get(file)!;
      expect(a.length).toBe(2048);
      for (let i = 0; i < a.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - b[i]));
        largest = Math.max(largest, Math.abs(b[i]));
      }
    }
    console.log(`ResNet-50 64² features (9 photos × 2048): max |onnxruntime − TF.js| = ${worst.toExponential(2)} (largest |feature| ${largest.toFixed(2)})`);
    expect(largest).toBeGreaterThan(0.1);
    expect(worst).toBeLessThan(1e-4);
  });
});
