// The parts of the time estimates measured on this machine (moved from test/unit/estimates.test.ts):
// the fine-tune FLOP share on a real ResNet-18, and the throughput probe (onnxruntime rate present
// unless REFIT_FORWARD=tfjs turns onnxruntime off).
import { afterEach, describe, expect, it } from 'vitest';
import { measureThroughput, NETWORK_EFFICIENCY, ONNX_NETWORK_EFFICIENCY, TRAIN_EFFICIENCY } from '../../main/engine/estimates';
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
