// GoogLeNet (Inception v1) as torchvision builds it: every conv is conv (no bias) + BN (eps 1e-3) +
// ReLU, no auxiliary classifiers, and the "5×5" branch uses a 3×3 conv (torchvision's long-standing
// choice, which its published 6,624,904 parameters depend on). Output: the 1024-d average-pooled
// vector; dropout and fc belong to the head.
import * as tf from '@tensorflow/tfjs';
import { conv2dBn, globalAvgPool, imageInput, maxPool, type SymbolicTensor } from './layers';

// torch BatchNorm2d(momentum=0.1) updates running = 0.9·running + 0.1·batch, i.e. Keras momentum 0.9.
const BN_EPSILON = 1e-3;
const BN_MOMENTUM = 0.9;

/** torchvision's Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), minus `in`. */
interface InceptionSpec {
  name: string;
  ch1x1: number;
  ch3x3red: number;
  ch3x3: number;
  ch5x5red: number;
  ch5x5: number;
  poolProj: number;
}

/** Each stage opens with a ceil-mode max-pool, then runs its Inception modules. */
const STAGES: readonly { stage: string; pool: { size: number; stride: number }; modules: readonly InceptionSpec[] }[] = [
  {
    stage: 'stage3',
    pool: { size: 3, stride: 2 },
    modules: [
      { name: 'inception3a', ch1x1: 64, ch3x3red: 96, ch3x3: 128, ch5x5red: 16, ch5x5: 32, poolProj: 32 },
      { name: 'inception3b', ch1x1: 128, ch3x3red: 128, ch3x3: 192, ch5x5red: 32, ch5x5: 96, poolProj: 64 },
    ],
  },
  {
    stage: 'stage4',
    pool: { size: 3, stride: 2 },
    modules: [
      { name: 'inception4a', ch1x1: 192, ch3x3red: 96, ch3x3: 208, ch5x5red: 16, ch5x5: 48, poolProj: 64 },
      { name: 'inception4b', ch1x1: 160, ch3x3red: 112, ch3x3: 224, ch5x5red: 24, ch5x5: 64, poolProj: 64 },
      { name: 'inception4c', ch1x1: 128, ch3x3red: 128, ch3x3: 256, ch5x5red: 24, ch5x5: 64, poolProj: 64 },
      { name: 'inception4d', ch1x1: 112, ch3x3red: 144, ch3x3: 288, ch5x5red: 32, ch5x5: 64, poolProj: 64 },
      { name: 'inception4e', ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, poolProj: 128 },
    ],
  },
  {
    stage: 'stage5',
    pool: { size: 2, stride: 2 },
    modules: [
      { name: 'inception5a', ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, poolProj: 128 },
      { name: 'inception5b', ch1x1: 384, ch3x3red: 192, ch3x3: 384, ch5x5red: 48, ch5x5: 128, poolProj: 128 },
    ],
  },
];

type Sym = SymbolicTensor;

/** torchvision's BasicConv2d: conv (no bias) → BN → ReLU, padded k // 2 on every side as torch. */
function basicConv(x: Sym, name: string, filters: number, kernel: number, stride = 1): Sym {
  return conv2dBn(x, {
    name,
    names: { conv: name, bn: `${name}_bn`, act: `${name}_relu`, pad: `${name}_pad` },
    filters,
    kernel,
    stride,
    padding: 'same',
    epsilon: BN_EPSILON,
    momentum: BN_MOMENTUM,
  });
}

/** Output side of torch's MaxPool2d(size, stride, padding=0, ceil_mode=True). */
export function ceilModePoolOutputSize(inputSize: number, size: number, stride: number): number {
  return Math.ceil((inputSize - size) / stride) + 1;
}

/**
 * torch's MaxPool2d(size, stride, ceil_mode=True): ceil mode lets the last window hang over the
 * bottom/right edge, where torch simply ignores the missing cells. Here those cells are zeros
 * (ZeroPadding2D on the bottom/right only, exactly as many as the overhang), then a 'valid' pool.
 * Every input to these pools comes straight from a ReLU, so it is ≥ 0 and each window keeps at
 * least one real cell: a padded zero can never exceed the true maximum, and the result equals torch's.
 */
function ceilModeMaxPool(x: Sym, name: string, size: number, stride: number): Sym {
  const [height, width] = [x.shape[1] as number, x.shape[2] as number];
  const overhang = (n: number) => (ceilModePoolOutputSize(n, size, stride) - 1) * stride + size - n;
  const [padBottom, padRight] = [overhang(height), overhang(width)];
  if (padBottom > 0 || padRight > 0) {
    x = tf.layers.zeroPadding2d({ name: `${name}_pad`, padding: [[0, padBottom], [0, padRight]] }).apply(x) as Sym;
  }
  return maxPool(x, { name, pool: size, stride, padding: 'valid' });
}

function inceptionModule(x: Sym, prefix: string, spec: InceptionSpec): Sym {
  const branch1 = basicConv(x, `${prefix}_branch1_conv`, spec.ch1x1, 1);

  let branch2 = basicConv(x, `${prefix}_branch2_conv1`, spec.ch3x3red, 1);
  branch2 = basicConv(branch2, `${prefix}_branch2_conv2`, spec.ch3x3, 3);

  let branch3 = basicConv(x, `${prefix}_branch3_conv1`, spec.ch5x5red, 1);
  branch3 = basicConv(branch3, `${prefix}_branch3_conv2`, spec.ch5x5, 3); // 3×3, as torchvision

  // torch: MaxPool2d(3, stride=1, padding=1, ceil_mode=True) pads with -inf; 'same' at stride 1 ignores
  // the border the same way, and ceil mode changes nothing at stride 1.
  let branch4 = maxPool(x, { name: `${prefix}_branch4_pool`, pool: 3, stride: 1, padding: 'same' });
  branch4 = basicConv(branch4, `${prefix}_branch4_conv`, spec.poolProj, 1);

  return tf.layers.concatenate({ name: `${prefix}_concat`, axis: -1 }).apply([branch1, branch2, branch3, branch4]) as Sym;
}


/** `inputSize` must be at least the catalogue's minInputSize (the registry checks it). */
export function buildGoogLeNet({ inputSize }: { inputSize: number }): tf.LayersModel {
  const input = imageInput(inputSize, 'stem_input');

  let x = basicConv(input, 'stem_conv1', 64, 7, 2);
  x = ceilModeMaxPool(x, 'stem_pool1', 3, 2);
  x = basicConv(x, 'stem_conv2', 64, 1);
  x = basicConv(x, 'stem_conv3', 192, 3);

  for (const { stage, pool, modules } of STAGES) {
    x = ceilModeMaxPool(x, `${stage}_pool`, pool.size, pool.stride);
    for (const spec of modules) x = inceptionModule(x, `${stage}_${spec.name}`, spec);
  }

  x = globalAvgPool(x, 'features_pool');
  return tf.model({ name: 'googlenet', inputs: input, outputs: x });
}
