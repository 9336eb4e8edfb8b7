// Rough training-time estimates for the model cards: "how long would a default run of each mode take
// on this dataset, on this machine". They are meant to tell minutes from hours, nothing finer.
//
// The formula (N usable images; V = round(N × valSplit) held out, T = N − V trained on; E epochs;
// F = the backbone's FLOPs for one image at its default input size, from the registry):
//
//   head      = startup + max(extract FLOPs / R_inf, decoded images / D)
//               extract FLOPs = (T × views + V) × F   (views = 4 with augmentation: the trainer caches
//               that many feature vectors per training image; training the head on cached features is
//               negligible next to that)
//   finetune  = head + E × [max(T × F × (1 + 2s) / R_train, T / D) + V × F / R_inf] + E × save
//               (forward through everything, backward only through the last stage: s ≈ its share
//               of the FLOPs; backward costs about twice the forward)
//   full      = startup + E × [max(T × 3F / R_train, T / D) + V × F / R_inf] + E × save
//
//   R_inf   = the forward throughput of the active backend on whole networks (FLOP/s), measured:
//             one 3×3 convolution (56×56×64 → 64, a typical ResNet layer) is timed on the backend
//             in use, × NETWORK_EFFICIENCY (a whole network runs slower than its best layer:
//             1×1 convolutions, BatchNorm, activations, memory traffic). The service keeps the best
//             of its measurements: a busy machine only ever makes one lower;
//   R_train = R_inf × TRAIN_EFFICIENCY (backprop kernels, optimizer updates, no fused kernels);
//   D       = DECODE_RATE, images/s sharp decodes and resizes (it overlaps with compute: max());
//   startup = process start + backend init + building the model (≈ 3 s + params / 20 M s);
//   save    = one checkpoint per epoch (params × 4 bytes at SAVE_BYTES_PER_SEC).
//
// Calibration (measured on these machines, wasm backend, 2 cores, `npm run bench:models` and
// `bench:train`): the probe convolution runs at ≈ 35 GFLOP/s; whole networks infer at 27–31 GFLOP/s
// (ResNet-18 30.5, GoogLeNet 28, ResNet-50 27; feature extraction with decoding 24.8) → NETWORK_EFFICIENCY
// 0.75; training steps run at 8.3–11.2 GFLOP/s (counting 3 × forward) → TRAIN_EFFICIENCY 0.35. Check:
// head mode of ImageNet ResNet-50 on photos5 with the defaults took 188 s; the formula says ≈ 170 s.
import * as tf from '@tensorflow/tfjs';
import type { BackboneInfo } from '../../models/types';

export interface Throughput {
  /** FLOP/s of forward passes through whole networks. */
  inferenceFlops: number;
  /** FLOP/s of training steps (forward + backward + update counted as 3 forward passes). */
  trainingFlops: number;
  /** FLOP/s the probe convolution ran at. */
  probeFlops: number;
  backend: string;
}

export interface EstimateSettings {
  epochs: number;
  valSplit: number;
  augment: boolean;
}

/** What a "default run" is for the estimates: the UI's and CLI's defaults. */
export const DEFAULT_ESTIMATE_SETTINGS: EstimateSettings = { epochs: 10, valSplit: 0.2, augment: true };

/** Whole-network forward throughput ÷ the probe convolution's (see the calibration above). */
export const NETWORK_EFFICIENCY = 0.75;
/** Training-step throughput (3 × forward FLOPs per image) ÷ whole-network forward throughput. */
export const TRAIN_EFFICIENCY = 0.35;
/** Share of a backbone's FLOPs in its last stage (ResNets: ≈ 0.2–0.3). */
export const LAST_STAGE_SHARE = 0.25;
export const DECODE_RATE = 150;
export const HEAD_VIEWS_WITH_AUGMENTATION = 4;
const SAVE_BYTES_PER_SEC = 200e6;
const STARTUP_SECONDS = 3;

/**
 * Times one 3×3 convolution on the active backend (warm-up, then up to 3 timed runs, fewer when one
 * run is already slow) and derives whole-network throughputs from it. Takes ~0.1–0.3 s on wasm.
 */
export async function measureThroughput(): Promise<Throughput> {
  const [h, w, cin, cout] = [56, 56, 64, 64];
  const flopsPerRun = 2 * h * w * cin * cout * 9;
  const x = tf.randomUniform([1, h, w, cin]) as tf.Tensor4D;
  const k = tf.randomUniform([3, 3, cin, cout], -0.1, 0.1) as tf.Tensor4D;
  const run = async () => {
    const started = performance.now();
    const y = tf.conv2d(x, k, 1, 'same');
    await y.data();
    y.dispose();
    return (performance.now() - started) / 1000;
  };
  try {
    const warm = await run();
    let seconds = warm;
    if (warm < 0.2) {
      const times = [await run(), await run(), await run()];
      seconds = Math.min(...times);
    }
    const probeFlops = flopsPerRun / Math.max(seconds, 1e-6);
    const inferenceFlops = probeFlops * NETWORK_EFFICIENCY;
    return { probeFlops, inferenceFlops, trainingFlops: inferenceFlops * TRAIN_EFFICIENCY, backend: tf.getBackend() };
  } finally {
    tf.dispose([x, k]);
  }
}

/** Seconds for a default run of each mode (see the formula at the top). */
export function estimateSeconds(
  info: Pick<BackboneInfo, 'flops' | 'params'>,
  images: number,
  throughput: Pick<Throughput, 'inferenceFlops' | 'trainingFlops'>,
  settings: EstimateSettings = DEFAULT_ESTIMATE_SETTINGS,
): { head: number; finetune: number; full: number } {
  const N = Math.max(0, images);
  const V = Math.round(N * settings.valSplit);
  const T = N - V;
  const E = settings.epochs;
  const F = info.flops;
  const { inferenceFlops: rInf, trainingFlops: rTrain } = throughput;
  const startup = STARTUP_SECONDS + info.params / 20e6;
  const save = (info.params * 4) / SAVE_BYTES_PER_SEC;
  const views = settings.augment ? HEAD_VIEWS_WITH_AUGMENTATION : 1;

  const extractImages = T * views + V;
  const head = startup + Math.max((extractImages * F) / rInf, extractImages / DECODE_RATE);
  const validate = (V * F) / rInf;
  const finetuneEpoch = Math.max((T * F * (1 + 2 * LAST_STAGE_SHARE)) / rTrain, T / DECODE_RATE) + validate + save;
  const fullEpoch = Math.max((T * 3 * F) / rTrain, T / DECODE_RATE) + validate + save;
  return {
    head: Math.round(head),
    finetune: Math.round(head + E * finetuneEpoch),
    full: Math.round(startup + E * fullEpoch),
  };
}
