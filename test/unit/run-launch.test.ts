// The one run launch of every host (refit train, the engine service): what it refuses before any
// scanning, and what it warns about. The launch itself (a real training process) is exercised by
// test/integration/cli-train.test.ts and service.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendReport } from '../../main/api/backends';
import type { TrainConfig } from '../../main/api/train-config';
import { checkLaunch, cpuFullModeWarning, launchRun } from '../../main/engine/run-launch';

const config: TrainConfig = {
  backbone: 'resnet18',
  weights: 'none',
  mode: 'head',
  head: { kind: 'linear' },
  epochs: 2,
  batchSize: 4,
  valSplit: 0.2,
  seed: 1,
  augment: false,
  patience: 2,
  classWeights: false,
};

const cpu: BackendReport = { name: 'wasm', tfBackend: 'wasm', accelerator: 'cpu', threads: 1, attempts: [] };
const gpu: BackendReport = { name: 'node-gpu', tfBackend: 'tensorflow', accelerator: 'gpu', threads: 1, attempts: [] };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'refit-launch-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('checkLaunch', () => {
  it('resolves a new run: a fresh run id, defaults filled, a validation folder made absolute', async () => {
    const checked = await checkLaunch({ projectDir: dir, config: { ...config, validationFolder: 'some/where' } });
    expect(checked.runId).toMatch(/^\d{8}-\d{6}/);
    expect(checked.resume).toBe(false);
    expect(checked.resolved).toMatchObject({ inputSize: 224, learningRate: 1e-3 });
    expect(checked.config.validationFolder).toBe(path.resolve('some/where'));
  });

  it('refuses bad settings and missing runs before any work, naming the field or the run', async () => {
    await expect(checkLaunch({ projectDir: dir, config: { ...config, backbone: 'resnet19' } })).rejects.toThrow(/^backbone: unknown backbone "resnet19"; valid ids are resnet18/);
    await expect(checkLaunch({ projectDir: dir, config: { ...config, weights: 'imagenet' } })).rejects.toThrow(/^weights: resnet18 has no ImageNet weights/);
    await expect(checkLaunch({ projectDir: dir, config: { ...config, inputSize: 16 } })).rejects.toThrow(/^inputSize: .*at least 32×32/);
    await expect(checkLaunch({ projectDir: dir, resumeRunId: 'nope' })).rejects.toThrow(/No run "nope"/);
    await expect(checkLaunch({ projectDir: dir, config, parentRunId: 'gone' })).rejects.toThrow(/No run "gone"/);
    await expect(checkLaunch({ projectDir: dir })).rejects.toThrow(/^config: a new run needs a training config/);
  });
});

describe('launchRun', () => {
  it('warns about full mode on a CPU backend only', () => {
    expect(cpuFullModeWarning({ ...config, mode: 'full' }, cpu)).toMatch(/Full mode trains every layer of ResNet-18; on this wasm \(CPU\) backend that is very slow/);
    expect(cpuFullModeWarning({ ...config, mode: 'full' }, gpu)).toBeNull();
    expect(cpuFullModeWarning({ ...config, mode: 'finetune' }, cpu)).toBeNull();
  });

  it('refuses a dataset without usable images, naming it, and starts nothing', async () => {
    const checked = await checkLaunch({ projectDir: dir, config });
    let started = false;
    await expect(
      launchRun(checked, dir, { images: [], datasetName: 'Project birds', skipped: 3, onEvent: () => undefined, beforeStart: () => (started = true) }),
    ).rejects.toThrow('Project birds has no usable images (3 skipped): add folders of images first');
    expect(started).toBe(false);
  });

  it('refuses a validation folder without usable images after reporting why', async () => {
    const empty = path.join(dir, 'val');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(path.join(empty, 'cats'), { recursive: true });
    await writeFile(path.join(empty, 'cats', 'not-an-image.jpg'), 'hello');
    const checked = await checkLaunch({ projectDir: dir, config: { ...config, validationFolder: empty } });
    const events: unknown[] = [];
    const image = { file: '/x.png', className: 'a', hash: 'h', width: 1, height: 1 };
    await expect(launchRun(checked, dir, { images: [image], datasetName: 'd', onEvent: (e) => events.push(e) })).rejects.toThrow(
      `The validation folder ${empty} has no usable images`,
    );
    expect(events).toContainEqual(expect.objectContaining({ type: 'problem', file: path.join(empty, 'cats', 'not-an-image.jpg') }));
  });
});
