// Rough training-time estimates for the model cards: "how long would a default run of each mode take
// on this dataset, on this machine". They are meant to tell minutes from hours, nothing finer.
//
// The formula (N usable images; V = round(N × valSplit) held out, T = N − V trained on; E epochs;
// F = the backbone's FLOPs for one image at its default input size, from the registry):
//
//   head      = startup + max(extract FLOPs / R_fwd, decoded images / D) + E × save
//               extract FLOPs = (T × views + V) × F   (views = 4 with augmentation: the trainer caches
//               that many feature vectors per training image; training the head on cached features is
//               negligible next to that, saving the best classifier after an improving epoch is not)
//   finetune  = head + E × [max(T × ((1 − s) × F / R_fwd + 3 × s × F / R_top), T / D)
//                           + V × ((1 − s) × F / R_fwd + s × F / R_inf) + save]
//               (the frozen stages run forward only, in onnxruntime when it can; the last stage and
//               the head, s = their share of the FLOPs (BackboneSpec.lastStageShare), train, backward
//               costing about twice the forward; validation = the same trunk + the top's forward)
//   full      = startup + E × [max(T × 3F / R_train, T / D) + V × F / R_val] + E × save
//               (validation in onnxruntime when the network trains there, R_val = R_fwd; else in
//               TF.js, R_val = R_inf)
//   With an onnxruntime rate the network phase trains in onnxruntime (training/train-engine.ts) unless
//   settings.trainer is 'tfjs': R_top = R_train = R_onnx × ONNX_TRAIN_EFFICIENCY instead of the TF.js
//   rates below (ONNX_TRAIN_EFFICIENCY is from bench:train-vs-torch, not yet checked on whole runs).
//
//   R_inf   = the forward throughput of the TF.js backend on whole networks (FLOP/s), measured:
//             one 3×3 convolution (56×56×64 → 64, a typical ResNet layer) is timed on the backend
//             in use, × NETWORK_EFFICIENCY (a whole network runs slower than its best layer:
//             1×1 convolutions, BatchNorm, activations, memory traffic). The service keeps the best
//             of its measurements: a busy machine only ever makes one lower;
//   R_onnx  = the forward throughput of onnxruntime on whole networks, measured the same way: a
//             small stack of that convolution (3-channel stem, 2 × [3×3 64 → 64, BatchNorm, ReLU],
//             pooled; 4 images of 56×56) goes through createForwardPass like the trainer's forward
//             passes, × ONNX_NETWORK_EFFICIENCY; null when onnxruntime cannot load, is turned off
//             (REFIT_FORWARD=tfjs) or refuses the probe;
//   R_fwd   = R_onnx when there is one, else R_inf;
//   R_train = R_inf × TRAIN_EFFICIENCY (backprop kernels, optimizer updates, no fused kernels);
//   R_top   = R_inf × TOP_TRAIN_EFFICIENCY (training steps of a last stage + head alone);
//   D       = DECODE_RATE, images/s sharp decodes and resizes (it overlaps with compute: max());
//   startup = process start + backend init + building the model (≈ 3 s + params / 20 M s);
//   save    = one checkpoint per epoch (params × 4 bytes at SAVE_BYTES_PER_SEC).
//
// Calibration (measured on these machines, wasm backend, 2 cores, `npm run bench:models` and
// `bench:train`): the probe convolution runs at ≈ 35 GFLOP/s; whole networks infer at 27–31 GFLOP/s
// (ResNet-18 30.5, GoogLeNet 28, ResNet-50 27; feature extraction with decoding 24.8) → NETWORK_EFFICIENCY
// 0.75; training steps run at 8.3–11.2 GFLOP/s (counting 3 × forward) → TRAIN_EFFICIENCY 0.35. Check:
// head mode of ImageNet ResNet-50 on photos5 with the defaults took 188 s in TF.js; the formula says
// ≈ 177 s without an onnxruntime rate.
// onnxruntime-node 1.30 (2 threads): its probe runs at 370–435 GFLOP/s; feature extraction of
// ImageNet ResNet-50 with decoding runs at 25.5–27.7 images/s = 197–214 GFLOP/s → ONNX_NETWORK_EFFICIENCY
// 0.5 (the frozen stages alone, batches of 16 without decoding: 255–326 GFLOP/s). The last stage +
// head train at 13.1–18.2 GFLOP/s (ResNet-50 15.5, ResNet-18 18, GoogLeNet 14.7, Xception 13.9;
// their forward in TF.js 15–26) → TOP_TRAIN_EFFICIENCY 0.55. Checks on photos5 (168 images; 138
// train / 30 val), ImageNet ResNet-50, defaults, probe 35 / 388 GFLOP/s: head mode took 28.0–30.3 s,
// the formula says 32 s; fine-tune mode (10 + 10 epochs, no early stop) took 495 s, 46.3 s per
// fine-tune epoch, the formula says 518 s, 48.6 s per epoch (without onnxruntime it would say 1009 s).
import * as tf from '@tensorflow/tfjs';
import { countFlops } from '../../models/flops';
import type { BackboneSpec } from '../../models/catalog';
import { HEAD_VIEWS_WITH_AUGMENTATION, TRAIN_DEFAULTS } from '../api/train-config';
import { estimateTrainMemory, runMemoryInput } from '../../models/onnx-train/memory';
import { TRAIN_MEMORY_FACTS } from '../../models/onnx-train/memory-table';
import { createForwardPass, type ForwardPass } from './onnx-runtime';

export interface Throughput {
  /** FLOP/s of forward passes through whole networks. */
  inferenceFlops: number;
  /** FLOP/s of training steps (forward + backward + update counted as 3 forward passes). */
  trainingFlops: number;
  /** FLOP/s the probe convolution ran at. */
  probeFlops: number;
  /**
   * FLOP/s of forward passes through whole networks in onnxruntime (the trainer's feature extraction
   * and frozen stages), or null when onnxruntime does not serve them here.
   */
  onnxFlops: number | null;
  /** FLOP/s the onnxruntime probe's convolutions ran at (null: not measured). */
  onnxProbeFlops: number | null;
  /** The TF.js backend. */
  backend: string;
}

export interface EstimateSettings {
  epochs: number;
  valSplit: number;
  augment: boolean;
  /** The network phase's engine (default: onnxruntime when there is an onnxruntime rate, as the trainer chooses on CPU). */
  trainer?: 'onnxruntime' | 'tfjs';
}

/** What a "default run" is for the estimates: the UI's and CLI's defaults. */
export const DEFAULT_ESTIMATE_SETTINGS: EstimateSettings = { epochs: TRAIN_DEFAULTS.epochs, valSplit: TRAIN_DEFAULTS.valSplit, augment: TRAIN_DEFAULTS.augment };

/** Whole-network forward throughput ÷ the probe convolution's (see the calibration above). */
export const NETWORK_EFFICIENCY = 0.75;
/** Whole-network forward throughput in onnxruntime ÷ its probe's (see the calibration above). */
export const ONNX_NETWORK_EFFICIENCY = 0.5;
/** Training-step throughput (3 × forward FLOPs per image) ÷ whole-network forward throughput. */
export const TRAIN_EFFICIENCY = 0.35;
/**
 * Training-step throughput (3 × forward FLOPs per image) of a backbone's last stage + head alone
 * ÷ whole-network forward throughput: small late feature maps with many channels train far more
 * efficiently than whole networks do (see the calibration above).
 */
export const TOP_TRAIN_EFFICIENCY = 0.55;
/**
 * Training-step throughput (3 × forward FLOPs per image) in onnxruntime ÷ its whole-network forward
 * throughput: bench:train-vs-torch at 224², batch 16, 2 cores, against onnxruntime forward at ≈ 200
 * GFLOP/s: full ResNet-18 11.8 img/s (3 × 3.63 GFLOP each: 128 GFLOP/s, 0.64); ResNet-50's fine-tune
 * top ≈ 14 img/s (its trunk forward takes 31 ms an image of the 71, the top's 3 × 1.47 GFLOP the
 * rest: 110 GFLOP/s, 0.55). The lower, rounded down.
 */
export const ONNX_TRAIN_EFFICIENCY = 0.5;
/** The fine-tune share assumed for a backbone whose catalogue entry has none (BackboneSpec.lastStageShare). */
export const LAST_STAGE_SHARE = 0.2;
export const DECODE_RATE = 150;
const SAVE_BYTES_PER_SEC = 200e6;
const STARTUP_SECONDS = 3;

/** The probe convolution of the backend in use: 3×3, 56×56×64 → 64 (a typical ResNet layer). */
async function probeBackend(): Promise<number> {
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
    return flopsPerRun / Math.max(seconds, 1e-6);
  } finally {
    tf.dispose([x, k]);
  }
}

/** Images per onnxruntime probe run, and timed runs after the warm-up. */
const PROBE_BATCH = 4;
const ONNX_PROBE_RUNS = 6;

/**
 * The onnxruntime probe: a tiny TF.js model (a 3-channel stem, then two of the probe's convolutions
 * with BatchNorm and ReLU, pooled) exported and run through createForwardPass, exactly the way the
 * trainer's forward passes go. FLOP/s of its convolutions (best of a few runs), or null when
 * onnxruntime is unavailable, disabled (REFIT_FORWARD=tfjs) or refuses the model.
 */
async function probeOnnx(): Promise<number | null> {
  const size = 56;
  const input = tf.input({ shape: [size, size, 3], name: 'probe_input' });
  let y = tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', useBias: false, name: 'probe_stem' }).apply(input) as tf.SymbolicTensor;
  for (let i = 1; i <= 2; i++) {
    y = tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', useBias: false, name: `probe_conv${i}` }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization({ name: `probe_bn${i}` }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.reLU({ name: `probe_relu${i}` }).apply(y) as tf.SymbolicTensor;
  }
  y = tf.layers.globalAveragePooling2d({ name: 'probe_pool' }).apply(y) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y, name: 'refit_throughput_probe' });
  let forward: ForwardPass | null = null;
  try {
    forward = await createForwardPass(model, { inputSize: size });
    if (forward.runtime !== 'onnxruntime') return null;
    const flopsPerRun = PROBE_BATCH * countFlops(model);
    const pixels = new Float32Array(PROBE_BATCH * size * size * 3).map(() => Math.random());
    const run = async () => {
      const started = performance.now();
      await forward!.runFloat32(pixels, PROBE_BATCH);
      return (performance.now() - started) / 1000;
    };
    const warm = await run();
    let seconds = warm;
    if (warm < 0.1) {
      const times: number[] = [];
      for (let i = 0; i < ONNX_PROBE_RUNS; i++) times.push(await run());
      seconds = Math.min(...times);
    }
    return flopsPerRun / Math.max(seconds, 1e-6);
  } catch {
    return null; // no onnxruntime rate: the estimates assume TF.js for everything
  } finally {
    forward?.dispose();
    model.dispose();
  }
}

/**
 * Times the probe convolution on the active TF.js backend (warm-up, then up to 3 timed runs, fewer
 * when one run is already slow) and, when onnxruntime serves forward passes here, a small
 * convolution stack through it; derives whole-network throughputs from them. Takes ~0.1–0.3 s on wasm
 * (onnxruntime included).
 */
export async function measureThroughput(): Promise<Throughput> {
  const probeFlops = await probeBackend();
  const onnxProbeFlops = await probeOnnx();
  const inferenceFlops = probeFlops * NETWORK_EFFICIENCY;
  return {
    probeFlops,
    inferenceFlops,
    trainingFlops: inferenceFlops * TRAIN_EFFICIENCY,
    onnxProbeFlops,
    onnxFlops: onnxProbeFlops === null ? null : onnxProbeFlops * ONNX_NETWORK_EFFICIENCY,
    backend: tf.getBackend(),
  };
}

/**
 * The better of two measurements, rate by rate (other work on the machine only ever makes a
 * measurement lower). An onnxruntime rate is kept only while the newer measurement has one too:
 * null there means onnxruntime no longer serves forward passes (e.g. REFIT_FORWARD=tfjs).
 */
export function bestThroughput(previous: Throughput | null, measured: Throughput): Throughput {
  if (!previous || previous.backend !== measured.backend) return measured;
  const better = measured.probeFlops > previous.probeFlops ? measured : previous;
  const onnx =
    measured.onnxProbeFlops === null
      ? measured
      : previous.onnxProbeFlops !== null && previous.onnxProbeFlops > measured.onnxProbeFlops
        ? previous
        : measured;
  return {
    probeFlops: better.probeFlops,
    inferenceFlops: better.inferenceFlops,
    trainingFlops: better.trainingFlops,
    onnxProbeFlops: onnx.onnxProbeFlops,
    onnxFlops: onnx.onnxFlops,
    backend: measured.backend,
  };
}


/** Seconds for a default run of each mode (see the formula at the top). */
export function estimateSeconds(
  info: Pick<BackboneSpec, 'flops' | 'params'> & Partial<Pick<BackboneSpec, 'lastStageShare'>>,
  images: number,
  throughput: Pick<Throughput, 'inferenceFlops' | 'trainingFlops'> & Partial<Pick<Throughput, 'onnxFlops'>>,
  settings: EstimateSettings = DEFAULT_ESTIMATE_SETTINGS,
): { head: number; finetune: number; full: number } {
  const N = Math.max(0, images);
  const V = Math.round(N * settings.valSplit);
  const T = N - V;
  const E = settings.epochs;
  const F = info.flops;
  const s = info.lastStageShare ?? LAST_STAGE_SHARE;
  const { inferenceFlops: rInf, trainingFlops: rTrain } = throughput;
  // Forward-only work (feature extraction, the frozen stages) runs in onnxruntime when it can.
  const rFwd = throughput.onnxFlops ?? rInf;
  // The network phase trains in onnxruntime where onnxruntime runs (the trainer's default on CPU).
  const rOnnxTrain = throughput.onnxFlops && settings.trainer !== 'tfjs' ? throughput.onnxFlops * ONNX_TRAIN_EFFICIENCY : null;
  const rTop = rOnnxTrain ?? rInf * TOP_TRAIN_EFFICIENCY;
  const rFullTrain = rOnnxTrain ?? rTrain;
  const startup = STARTUP_SECONDS + info.params / 20e6;
  const save = (info.params * 4) / SAVE_BYTES_PER_SEC;
  const views = settings.augment ? HEAD_VIEWS_WITH_AUGMENTATION : 1;

  const extractImages = T * views + V;
  const head = startup + Math.max((extractImages * F) / rFwd, extractImages / DECODE_RATE) + E * save;
  const finetuneTrain = T * (((1 - s) * F) / rFwd + (3 * s * F) / rTop);
  const finetuneValidate = V * (((1 - s) * F) / rFwd + (s * F) / rInf);
  const finetuneEpoch = Math.max(finetuneTrain, T / DECODE_RATE) + finetuneValidate + save;
  const rVal = rOnnxTrain ? rFwd : rInf;
  const fullEpoch = Math.max((T * 3 * F) / rFullTrain, T / DECODE_RATE) + (V * F) / rVal + save;
  return {
    head: Math.round(head),
    finetune: Math.round(head + E * finetuneEpoch),
    full: Math.round(startup + E * fullEpoch),
  };
}

/**
 * Peak memory (bytes) of a network-mode run of `info` training in onnxruntime, at `batchSize` and
 * `inputSize` (default: the defaults): the estimate the trainer checks before it starts
 * (models/onnx-train/memory.ts), from the per-image counts of memory-table.ts instead of a built graph.
 * Null for a backbone the table lacks.
 */
export function estimateMemory(
  info: Pick<BackboneSpec, 'id' | 'params' | 'inputSize'>,
  run: { batchSize?: number; inputSize?: number } = {},
): { finetune: number; full: number } | null {
  const facts = TRAIN_MEMORY_FACTS[info.id];
  if (!facts) return null;
  const pixelScale = ((run.inputSize ?? info.inputSize) / info.inputSize) ** 2;
  const o = { batchSize: run.batchSize ?? TRAIN_DEFAULTS.batchSize, pixelScale, modelFloats: info.params };
  return {
    finetune: Math.round(estimateTrainMemory(runMemoryInput(facts.finetune, o)).bytes),
    full: Math.round(estimateTrainMemory(runMemoryInput(facts.full, o)).bytes),
  };
}
