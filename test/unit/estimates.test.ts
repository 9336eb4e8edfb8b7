// The model cards' time estimates: the formula at the top of main/engine/estimates.ts on given
// throughputs (with and without an onnxruntime rate for the forward-only work) and how measurements
// are combined. The throughput probe on this machine and the fine-tune FLOP share measured on a real
// ResNet-18 are in test/integration/estimates-measured.test.ts.
import { describe, it, expect } from 'vitest';
import {
  bestThroughput,
  DECODE_RATE,
  DEFAULT_ESTIMATE_SETTINGS,
  estimateSeconds,
  LAST_STAGE_SHARE,
  NETWORK_EFFICIENCY,
  ONNX_NETWORK_EFFICIENCY,
  ONNX_TRAIN_EFFICIENCY,
  TOP_TRAIN_EFFICIENCY,
  TRAIN_EFFICIENCY,
  type Throughput,
} from '../../main/engine/estimates';
import { HEAD_VIEWS_WITH_AUGMENTATION } from '../../main/api/train-config';
import { getBackbone, listBackbones } from '../../models/registry';

/** Rates like this machine's: TF.js wasm ≈ 35 GFLOP/s probe, onnxruntime several times faster. */
const TFJS = { inferenceFlops: 26e9, trainingFlops: 26e9 * TRAIN_EFFICIENCY };
const WITH_ONNX = { ...TFJS, onnxFlops: 190e9 };

function throughput(overrides: Partial<Throughput>): Throughput {
  return { probeFlops: 35e9, inferenceFlops: 26e9, trainingFlops: 9e9, onnxProbeFlops: null, onnxFlops: null, backend: 'wasm', ...overrides };
}

describe('estimateSeconds', () => {
  // A hand-computed case: F = 1 GFLOP, 33 M params (startup 3 + 1.65 = 4.65 s, save 0.66 s per epoch),
  // no id (s = LAST_STAGE_SHARE = 0.2), 100 images (V = 20, T = 80), defaults (10 epochs, 4 views),
  // R_inf 10, R_train 5 (R_top = 10 × 0.55 = 5.5), onnxruntime 40 GFLOP/s.
  const info = { flops: 1e9, params: 33e6 };
  const rates = { inferenceFlops: 10e9, trainingFlops: 5e9 };

  it('uses the constants the hand-computed cases assume', () => {
    expect([LAST_STAGE_SHARE, TOP_TRAIN_EFFICIENCY, DECODE_RATE, HEAD_VIEWS_WITH_AUGMENTATION]).toEqual([0.2, 0.55, 150, 4]);
    expect(DEFAULT_ESTIMATE_SETTINGS).toEqual({ epochs: 10, valSplit: 0.2, augment: true });
  });

  it('matches the formula by hand with an onnxruntime rate', () => {
    // head: 4.65 + (80 × 4 + 20) × 1/40 + 10 × 0.66 = 4.65 + 8.5 + 6.6 = 19.75
    // The network phase trains in onnxruntime at 40 × ONNX_TRAIN_EFFICIENCY (0.5) = 20 GFLOP/s:
    // finetune epoch: 80 × (0.8/40 + 3 × 0.2/20) = 4 train, 20 × (0.8/40 + 0.2/10) = 0.8 val,
    //   + 0.66 save = 5.46 → 19.75 + 54.6 = 74.35
    // full (validated in onnxruntime too): 4.65 + 10 × (80 × 3/20 + 20 × 1/40 + 0.66) = 4.65 + 131.6 = 136.25
    expect(ONNX_TRAIN_EFFICIENCY).toBe(0.5);
    expect(estimateSeconds(info, 100, { ...rates, onnxFlops: 40e9 })).toEqual({ head: 20, finetune: 74, full: 136 });
  });

  it('matches the formula by hand without one (everything in TF.js)', () => {
    // head: 4.65 + 340 × 1/10 + 6.6 = 45.25
    // finetune epoch: 80 × (0.8/10 + 3 × 0.2/5.5) = 15.127 train, 20 × (0.08 + 0.02) = 2 val, + 0.66
    //   = 17.787 → 45.25 + 177.87 = 223.1
    const expected = { head: 45, finetune: 223, full: 511 };
    expect(estimateSeconds(info, 100, { ...rates, onnxFlops: null })).toEqual(expected);
    expect(estimateSeconds(info, 100, rates)).toEqual(expected); // no onnxFlops at all: the same
  });

  it('is bounded by decoding when compute is fast', () => {
    const fast = { inferenceFlops: 1e15, trainingFlops: 1e15, onnxFlops: 1e15 };
    expect(estimateSeconds(info, 100, fast).head).toBe(Math.round(4.65 + 340 / DECODE_RATE + 6.6));
  });

  it('takes the last-stage share of the backbone when it knows it', () => {
    for (const backbone of listBackbones()) expect(backbone.lastStageShare, backbone.id).toBeGreaterThan(0);
    const r50 = getBackbone('resnet50');
    const withShare = (lastStageShare: number) => estimateSeconds({ flops: r50.flops, params: r50.params, lastStageShare }, 168, WITH_ONNX).finetune;
    expect(estimateSeconds(r50, 168, WITH_ONNX).finetune).toBe(withShare(r50.lastStageShare));
    expect(estimateSeconds({ flops: r50.flops, params: r50.params }, 168, WITH_ONNX).finetune).toBe(withShare(LAST_STAGE_SHARE));
    // VGG-16 trains a tiny share of its FLOPs in fine-tune mode: more of its epoch goes to the trunk.
    const vgg = getBackbone('vgg16');
    const asUnknown = { flops: vgg.flops, params: vgg.params };
    expect(estimateSeconds(vgg, 168, WITH_ONNX).finetune).toBeLessThan(estimateSeconds(asUnknown, 168, WITH_ONNX).finetune);
    expect(estimateSeconds(vgg, 168, WITH_ONNX).head).toBe(estimateSeconds(asUnknown, 168, WITH_ONNX).head);
  });

  it('makes every mode faster with onnxruntime (features, frozen stages and the network phase)', () => {
    for (const backbone of listBackbones()) {
      const without = estimateSeconds(backbone, 168, TFJS);
      const withOnnx = estimateSeconds(backbone, 168, WITH_ONNX);
      expect(withOnnx.head, backbone.id).toBeLessThan(without.head);
      expect(withOnnx.finetune, backbone.id).toBeLessThan(without.finetune);
      expect(withOnnx.full, backbone.id).toBeLessThan(without.full);
      // The cards' ordering holds either way.
      expect(withOnnx.finetune, backbone.id).toBeGreaterThan(withOnnx.head);
      expect(withOnnx.full, backbone.id).toBeGreaterThan(withOnnx.finetune);
    }
  });

  it('grows with the number of images', () => {
    const resnet50 = getBackbone('resnet50');
    for (const rates of [TFJS, WITH_ONNX]) {
      let previous = estimateSeconds(resnet50, 0, rates);
      for (const images of [10, 50, 168, 500, 2000, 10_000]) {
        const next = estimateSeconds(resnet50, images, rates);
        for (const mode of ['head', 'finetune', 'full'] as const) expect(next[mode], `${mode} @ ${images}`).toBeGreaterThan(previous[mode]);
        previous = next;
      }
    }
  });

  it('puts ImageNet ResNet-50 on photos5 near the measured times (see the calibration)', () => {
    // The rates the probes give on these machines: TF.js 35, onnxruntime ≈ 400 GFLOP/s.
    const inferenceFlops = 35e9 * NETWORK_EFFICIENCY;
    const measured = { inferenceFlops, trainingFlops: inferenceFlops * TRAIN_EFFICIENCY, onnxFlops: 400e9 * ONNX_NETWORK_EFFICIENCY };
    // Measured with the fine-tune top trained in TF.js (REFIT_TRAINER=tfjs today).
    const { head, finetune } = estimateSeconds(getBackbone('resnet50'), 168, measured, { ...DEFAULT_ESTIMATE_SETTINGS, trainer: 'tfjs' });
    expect(head).toBeGreaterThan(28 * 0.8); // measured 28.0–30.3 s
    expect(head).toBeLessThan(30.3 * 1.2);
    expect(finetune).toBeGreaterThan(495 * 0.8); // measured 495 s
    expect(finetune).toBeLessThan(495 * 1.2);
    // The onnxruntime trainer (the default) makes the estimate shorter.
    expect(estimateSeconds(getBackbone('resnet50'), 168, measured).finetune).toBeLessThan(finetune);
  });
});

describe('bestThroughput', () => {
  it('keeps the best of each rate', () => {
    const a = throughput({ probeFlops: 30e9, inferenceFlops: 22.5e9, trainingFlops: 7e9, onnxProbeFlops: 300e9, onnxFlops: 200e9 });
    const b = throughput({ probeFlops: 35e9, inferenceFlops: 26e9, trainingFlops: 9e9, onnxProbeFlops: 200e9, onnxFlops: 150e9 });
    expect(bestThroughput(a, b)).toEqual({ ...b, onnxProbeFlops: 300e9, onnxFlops: 200e9 });
    expect(bestThroughput(b, a)).toEqual({ ...b, onnxProbeFlops: 300e9, onnxFlops: 200e9 });
    expect(bestThroughput(null, a)).toEqual(a);
  });

  it('drops the onnxruntime rate once onnxruntime no longer serves forward passes', () => {
    const before = throughput({ onnxProbeFlops: 300e9, onnxFlops: 200e9 });
    const now = throughput({ probeFlops: 20e9, inferenceFlops: 15e9, trainingFlops: 5e9 });
    expect(bestThroughput(before, now)).toEqual({ ...before, onnxProbeFlops: null, onnxFlops: null });
  });
});
