// The parts of the time estimates measured on this machine (moved from test/unit/estimates.test.ts):
// the fine-tune FLOP share on a real ResNet-18, the throughput probe (onnxruntime rate present
// unless REFIT_FORWARD=tfjs turns onnxruntime off), and the estimates against real short runs.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Events } from '../../main/api/contract';
import type { TrainConfig } from '../../main/api/train-config';
import { estimateSeconds, measureThroughput, NETWORK_EFFICIENCY, ONNX_NETWORK_EFFICIENCY, TRAIN_EFFICIENCY } from '../../main/engine/estimates';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { copyPhotos } from '../fixtures/tiny-run';
import { FORWARD_ENV } from '../../main/engine/onnx-runtime';
import { countFlops } from '../../models/flops';
import { lastStages } from '../../models/freeze';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { getBackbone } from '../../models/registry';
import { splitAtStages } from '../../models/trunk';

describe('estimateSeconds', () => {
  it('has the share of the FLOPs that fine-tune mode trains, for ResNet-18', () => {
    const info18 = getBackbone('resnet18');
    const classifier = attachHead(info18.build(), buildHead(info18.featureDim, 5));
    try {
      const { top } = splitAtStages(classifier, info18, lastStages(info18, 1));
      expect(countFlops(top) / countFlops(classifier)).toBeCloseTo(info18.lastStageShare, 2);
    } finally {
      disposeAll(classifier);
    }
  });
});

describe('measureThroughput', () => {
  const saved = process.env[FORWARD_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[FORWARD_ENV];
    else process.env[FORWARD_ENV] = saved;
  });

  it('reports an onnxruntime rate here', async () => {
    delete process.env[FORWARD_ENV];
    const t = await measureThroughput();
    expect(t.probeFlops).toBeGreaterThan(0);
    expect(t.inferenceFlops).toBeCloseTo(t.probeFlops * NETWORK_EFFICIENCY, -3);
    expect(t.trainingFlops).toBeCloseTo(t.inferenceFlops * TRAIN_EFFICIENCY, -3);
    expect(t.onnxProbeFlops).toBeGreaterThan(0);
    expect(t.onnxFlops).toBeCloseTo(t.onnxProbeFlops! * ONNX_NETWORK_EFFICIENCY, -3);
    console.log(`probe: TF.js ${t.backend} ${(t.probeFlops / 1e9).toFixed(1)} GFLOP/s, onnxruntime ${(t.onnxProbeFlops! / 1e9).toFixed(1)} GFLOP/s`);
  });

  it('reports none with REFIT_FORWARD=tfjs', async () => {
    process.env[FORWARD_ENV] = 'tfjs';
    const t = await measureThroughput();
    expect(t.probeFlops).toBeGreaterThan(0);
    expect(t.onnxProbeFlops).toBeNull();
    expect(t.onnxFlops).toBeNull();
  });
});

// The estimator against real runs, the way the app starts them (engine service → training process):
// a short head-mode run and a short fine-tune run of ResNet-18 (112 px) on 36 photos5 images, each timed from
// training.start to training.ended, beside estimateSeconds for the same images and settings with a
// throughput measured just before. Not a speed test: the assertion is on the estimator's ratio,
// estimate ÷ measured within [1/3, 3] — generous because runs this short are dominated by fixed
// costs (process start, model build, checkpoint saves) that the formula only approximates, and the
// machine is shared (the probe and the run are slowed by other work at different moments). The
// cards' promise is only "minutes, not hours"; a formula off by more than 3× here would break it.
describe('estimateSeconds against measured runs', () => {
  const ESTIMATE_FACTOR = 3;
  /** Half the default size: a quarter of the compute, to keep the file short. */
  const INPUT_SIZE = 112;
  let tmp: string;
  let service: EngineService;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-estimates-'));
    service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'recent.json') });
    const data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit', 'flowers'], 12);
    await service.call('project.open', { dir: path.join(tmp, 'project'), create: true });
    await service.call('dataset.addFolders', { folders: [data] });
  });
  afterAll(async () => {
    await service?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function measure(mode: 'head' | 'finetune'): Promise<{ seconds: number; estimate: number }> {
    const config: TrainConfig = { backbone: 'resnet18', weights: 'none', mode, inputSize: INPUT_SIZE, head: { kind: 'linear' }, epochs: 2, batchSize: 16, valSplit: 0.25, seed: 1, augment: false, patience: 10, classWeights: false };
    const throughput = await measureThroughput();
    // The catalogue's FLOPs are at the default 224 px; a convolutional network's scale with the pixels.
    const spec = getBackbone('resnet18');
    const info = { ...spec, flops: spec.flops * (INPUT_SIZE / spec.inputSize) ** 2, lastStageShare: spec.lastStageShare };
    const estimate = estimateSeconds(info, 36, throughput, { epochs: config.epochs, valSplit: config.valSplit, augment: config.augment })[mode];
    const started = performance.now();
    const { runId } = (await service.call('training.start', { config })) as { runId: string };
    const ended = await new Promise<Events['training.ended']>((resolve) => {
      const off = service.on((event, payload) => {
        if (event === 'training.ended' && (payload as Events['training.ended']).runId === runId) {
          off();
          resolve(payload as Events['training.ended']);
        }
      });
    });
    const seconds = (performance.now() - started) / 1000;
    expect(ended.status).toBe('completed');
    console.log(`estimates vs measured: ResNet-18 ${mode} at ${INPUT_SIZE} px, 36 images (27 train / 9 held back), 2 epochs${mode === 'finetune' ? ' per phase' : ''}: estimated ${estimate} s, took ${seconds.toFixed(1)} s (ratio ${(estimate / seconds).toFixed(2)}; probe ${(throughput.probeFlops / 1e9).toFixed(1)} GFLOP/s TF.js, ${throughput.onnxProbeFlops ? (throughput.onnxProbeFlops / 1e9).toFixed(0) : '—'} GFLOP/s onnxruntime)`);
    return { seconds, estimate };
  }

  it(`estimates a head-mode run within ${ESTIMATE_FACTOR}× of its measured time`, async () => {
    const { seconds, estimate } = await measure('head');
    expect(estimate / seconds).toBeGreaterThan(1 / ESTIMATE_FACTOR);
    expect(estimate / seconds).toBeLessThan(ESTIMATE_FACTOR);
  }, 180_000);

  it(`estimates a fine-tune run within ${ESTIMATE_FACTOR}× of its measured time`, async () => {
    const { seconds, estimate } = await measure('finetune');
    expect(estimate / seconds).toBeGreaterThan(1 / ESTIMATE_FACTOR);
    expect(estimate / seconds).toBeLessThan(ESTIMATE_FACTOR);
  }, 300_000);
});
