// classify.gradCam through the engine service: a tiny run really trained on photos5, its best
// checkpoint explained for files by path and for uploaded bytes, for the predicted class or one asked
// for; bad requests and bad files get errors that name what is wrong.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClassifyRow, EventName, Events } from '../../main/api/contract';
import type { GradCamRow } from '../../main/api/grad-cam';
import type { RunRecord, TrainConfig } from '../../main/api/training';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { copyPhotos } from '../fixtures/tiny-run';

let tmp: string;
let service: EngineService;
let runId: string;
let files: string[];
const call = <T>(method: string, params: unknown = {}) => service.call(method, params) as Promise<T>;

function ended(id: string): Promise<Events['training.ended']> {
  return new Promise((resolve) => {
    const off = service.on((name: EventName, payload) => {
      if (name === 'training.ended' && (payload as Events['training.ended']).runId === id) {
        off();
        resolve(payload as Events['training.ended']);
      }
    });
  });
}

const config: TrainConfig = {
  backbone: 'resnet18',
  weights: 'none',
  mode: 'head',
  inputSize: 64,
  head: { kind: 'linear' },
  epochs: 1,
  batchSize: 8,
  valSplit: 0.25,
  seed: 5,
  augment: false,
  patience: 5,
  classWeights: false,
};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-gradcam-service-'));
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'recent.json') });
  const data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit'], 6);
  await call('project.open', { dir: path.join(tmp, 'project'), create: true });
  await call('dataset.addFolders', { folders: [data] });
  runId = (await call<{ runId: string }>('training.start', { config })).runId;
  expect(await ended(runId)).toEqual({ runId, status: 'completed' });
  files = ['birds/blackbird.png', 'fruit/apple_fuji.png'].map((f) => path.join(data, f));
}, 240_000);

afterAll(async () => {
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('classify.gradCam', () => {
  it('explains the predicted class by default (the prediction Classify gives), and a class asked for', async () => {
    const record = await call<RunRecord>('runs.get', { runId });
    const rows = await call<GradCamRow[]>('classify.gradCam', { paths: files, runId });
    const classified = await call<ClassifyRow[]>('classify.files', { paths: files, runId, topK: 1 });
    expect(rows.map((r) => r.file)).toEqual(files);
    for (const [i, row] of rows.entries()) {
      expect(row.error).toBeUndefined();
      // ResNet-18 at 64 px: stage4 is 2×2.
      expect([row.height, row.width]).toEqual([2, 2]);
      expect(row.map).toHaveLength(4);
      expect(row.map!.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(row.predicted!.label).toBe(classified[i].top[0].label);
      expect(row.predicted!.probability).toBeCloseTo(classified[i].top[0].probability, 4);
      expect(row.target).toBe(row.predicted!.label);
    }
    // blackbird.png is 197×125: padded above and below to a square; apple_fuji.png is 49×50.
    expect(rows[0].content).toEqual({ x: 0, y: (1 - 125 / 197) / 2, width: 1, height: 125 / 197 });
    expect(rows[1].content).toEqual({ x: (1 - 49 / 50) / 2, y: 0, width: 49 / 50, height: 1 });
    const other = record.labels.find((l) => l !== rows[0].predicted!.label)!;
    const [asked] = await call<GradCamRow[]>('classify.gradCam', { paths: [files[0]], runId, className: other });
    expect(asked.target).toBe(other);
    expect(asked.predicted).toEqual(rows[0].predicted);
  }, 120_000);

  it('takes uploaded bytes (the browser host) and names bad ones', async () => {
    const bytes = await readFile(files[1]);
    const rows = await call<GradCamRow[]>('classify.gradCam', {
      images: [
        { name: 'apple.png', data: bytes.toString('base64') },
        { name: 'notes.png', data: Buffer.from('not an image at all').toString('base64') },
      ],
    });
    const [byPath] = await call<GradCamRow[]>('classify.gradCam', { paths: [files[1]] });
    expect(rows[0]).toMatchObject({ file: 'apple.png', predicted: byPath.predicted, target: byPath.target });
    rows[0].map!.forEach((v, k) => expect(v).toBeCloseTo(byPath.map![k], 6));
    expect(rows[1].file).toBe('notes.png');
    expect(rows[1].error).toMatch(/Cannot decode image notes\.png: not an image/);
  }, 60_000);

  it('refuses requests that cannot work, saying what to change', async () => {
    await expect(call('classify.gradCam', { paths: files, runId, className: 'cats' })).rejects.toThrow(`className "cats" is not a class of run ${runId}; its classes are birds, fruit`);
    await expect(call('classify.gradCam', { runId })).rejects.toThrow(/classify\.gradCam: invalid request — params: give either paths .* or images/);
    await expect(call('classify.gradCam', { paths: files, images: [{ name: 'a.png', data: '' }] })).rejects.toThrow(/give either paths/);
    await expect(call('classify.gradCam', { paths: Array(33).fill(files[0]) })).rejects.toThrow(/paths: .*32/);
    await expect(call('classify.gradCam', { paths: files, runId: 'no-such-run' })).rejects.toThrow(/no-such-run/);
    const [missing] = await call<GradCamRow[]>('classify.gradCam', { paths: [path.join(tmp, 'gone.png')] });
    expect(missing.error).toContain(path.join(tmp, 'gone.png'));
  }, 60_000);
});
