// VGG-16 (configuration "D", no batch norm) as torchvision builds it: 13 3×3 convs with bias in
// five blocks, AdaptiveAvgPool2d(7×7), then fc6/fc7 (4096, ReLU, dropout 0.5). fc6/fc7 belong to the
// backbone so that backbone + a 1000-class linear head has the published 138,357,544 parameters.
import * as tf from '@tensorflow/tfjs';
import { conv2d, dense, imageInput, maxPool } from './layers';

/** Output channels of each conv, per block (torchvision cfg "D"). */
const VGG16_BLOCKS: readonly (readonly number[])[] = [
  [64, 64],
  [128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [512, 512, 512],
];
const POOLED_SIDE = 7;
const FC_UNITS = 4096;
const FC_DROPOUT = 0.5;

/**
 * torch's AdaptiveAvgPool1d as a matrix: row i averages inputs [floor(i·n/m), ceil((i+1)·n/m)).
 * Returned as [n, m] (input index, output index), the layout of a Dense kernel.
 */
export function adaptiveAvgPoolMatrix(inputSize: number, outputSize: number): number[][] {
  const kernel = Array.from({ length: inputSize }, () => new Array<number>(outputSize).fill(0));
  for (let i = 0; i < outputSize; i++) {
    const start = Math.floor((i * inputSize) / outputSize);
    const end = Math.ceil(((i + 1) * inputSize) / outputSize);
    for (let j = start; j < end; j++) kernel[j][i] = 1 / (end - start);
  }
  return kernel;
}

/** A frozen Dense map along the last axis (no bias), its kernel fixed to `kernel` ([in, out]). */
function applyFixedLinearMap(name: string, kernel: number[][], x: tf.SymbolicTensor): tf.SymbolicTensor {
  const layer = tf.layers.dense({ name, units: kernel[0].length, useBias: false, trainable: false });
  const y = layer.apply(x) as tf.SymbolicTensor;
  // The variable takes its own reference to the data, so the temporary tensor can go.
  tf.tidy(() => layer.setWeights([tf.tensor2d(kernel)]));
  return y;
}

/**
 * [b, s, s, c] → [b, c, 7, 7], i.e. torch's AdaptiveAvgPool2d((7, 7)) followed by its NCHW layout,
 * so that flattening gives torch's C·H·W order and torchvision's classifier weights load as they are.
 *
 * Adaptive pooling is linear and separable, so for s ≠ 7 it is two fixed Dense maps (no bias,
 * not trainable), along width then height; plain tfjs layers, so the model saves and loads with
 * stock tfjs. At s = 7 it is the identity and adds no weights.
 */
export function adaptiveAvgPoolToChw(x: tf.SymbolicTensor, stage: string, outputSide = POOLED_SIDE): tf.SymbolicTensor {
  const side = x.shape[1];
  if (side == null || side !== x.shape[2]) throw new Error(`adaptive pool expects a square map, got ${JSON.stringify(x.shape)}`);
  let y = tf.layers.permute({ name: `${stage}_to_chw`, dims: [3, 1, 2] }).apply(x) as tf.SymbolicTensor; // [b, c, h, w]
  if (side === outputSide) return y;
  const matrix = adaptiveAvgPoolMatrix(side, outputSide);
  y = applyFixedLinearMap(`${stage}_avgpool_w`, matrix, y); // [b, c, h, 7]
  y = tf.layers.permute({ name: `${stage}_avgpool_swap_hw`, dims: [1, 3, 2] }).apply(y) as tf.SymbolicTensor; // [b, c, 7, h]
  y = applyFixedLinearMap(`${stage}_avgpool_h`, matrix, y); // [b, c, 7, 7] as (w, h)
  return tf.layers.permute({ name: `${stage}_avgpool_to_hw`, dims: [1, 3, 2] }).apply(y) as tf.SymbolicTensor; // [b, c, h, w]
}


/** `inputSize` must be at least the catalogue's minInputSize (the registry checks it). */
export function buildVgg16({ inputSize }: { inputSize: number }): tf.LayersModel {
  const input = imageInput(inputSize, 'block1_input');

  let x: tf.SymbolicTensor = input;
  VGG16_BLOCKS.forEach((convs, b) => {
    const block = `block${b + 1}`;
    convs.forEach((filters, c) => {
      x = conv2d(x, { name: `${block}_conv${c + 1}`, filters, kernel: 3, padding: 'same', bias: true, activation: 'relu' });
    });
    x = maxPool(x, { name: `${block}_pool`, pool: 2, stride: 2 });
  });

  x = adaptiveAvgPoolToChw(x, 'fc');
  x = tf.layers.flatten({ name: 'fc_flatten' }).apply(x) as tf.SymbolicTensor;
  for (const fc of ['fc6', 'fc7']) {
    x = dense(x, { name: `fc_${fc}`, units: FC_UNITS, activation: 'relu' });
    x = tf.layers.dropout({ name: `fc_${fc}_dropout`, rate: FC_DROPOUT }).apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ name: 'vgg16', inputs: input, outputs: x });
}
