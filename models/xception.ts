// Xception (Chollet 2017) as Keras Applications builds it, with Keras' block numbers in the layer
// names behind a stage prefix (`entry_block2_sepconv1` ↔ Keras `block2_sepconv1`), so Keras weights
// map by name. 2 regular + 34 separable convolutions (plus four 1×1 strided shortcut convs), BN
// epsilon 1e-3 / momentum 0.99 as Keras, global average pool → 2048.
import * as tf from '@tensorflow/tfjs';
import { activationLayer, add, conv2dBn, globalAvgPool, imageInput, separableConv2dBn, type SymbolicTensor } from './layers';

const BN_EPSILON = 1e-3;
const BN_MOMENTUM = 0.99;
const MIDDLE_FLOW_WIDTH = 728;
const MIDDLE_FLOW_BLOCKS = 8;

/** Downsampling residual blocks (two separable convs, 3×3/2 max-pool, 1×1/2 conv shortcut), by Keras block number. */
const ENTRY_BLOCKS: readonly { block: number; filters: [number, number] }[] = [
  { block: 2, filters: [128, 128] },
  { block: 3, filters: [256, 256] },
  { block: 4, filters: [728, 728] },
];
const EXIT_BLOCK = { block: 13, filters: [728, 1024] as [number, number] };

type Sym = SymbolicTensor;

/** SeparableConv2D 3×3 'same' (no bias) → BN, named `${name}` / `${name}_bn`. */
function sepConvBn(x: Sym, name: string, filters: number): Sym {
  return separableConv2dBn(x, {
    name,
    names: { sepconv: name, bn: `${name}_bn` },
    filters,
    kernel: 3,
    padding: 'same',
    epsilon: BN_EPSILON,
    momentum: BN_MOMENTUM,
    activation: 'linear',
  });
}

const relu = (x: Sym, name: string): Sym => activationLayer(x, name, 'relu');

/**
 * Keras' entry/exit block: [ReLU] → sepconv → BN → ReLU → sepconv → BN → max-pool 3×3/2, plus a
 * 1×1/2 conv + BN shortcut. The first ReLU is skipped in block 2, whose input is already rectified.
 * As in Keras, the ReLU in front of sepconv k is named `sepconvk_act`.
 */
function downsamplingBlock(x: Sym, prefix: string, [filters1, filters2]: [number, number], preActivate: boolean): Sym {
  const shortcut = conv2dBn(x, {
    name: `${prefix}_shortcut`,
    names: { conv: `${prefix}_shortcut`, bn: `${prefix}_shortcut_bn` },
    filters: filters2,
    kernel: 1,
    stride: 2,
    padding: 'valid', // 1×1/2 'valid' keeps ceil(n/2) rows, as TF's 'same' does for a 1×1 kernel
    epsilon: BN_EPSILON,
    momentum: BN_MOMENTUM,
    activation: 'linear',
  });
  let y = preActivate ? relu(x, `${prefix}_sepconv1_act`) : x;
  y = sepConvBn(y, `${prefix}_sepconv1`, filters1);
  y = relu(y, `${prefix}_sepconv2_act`);
  y = sepConvBn(y, `${prefix}_sepconv2`, filters2);
  // TF's own 'same' (extra padding bottom/right for even sides), not explicit symmetric padding:
  // Keras' Xception was trained with it, and the 1×1/2 shortcut samples the same grid.
  y = tf.layers.maxPooling2d({ name: `${prefix}_pool`, poolSize: 3, strides: 2, padding: 'same' }).apply(y) as Sym;
  return add([y, shortcut], `${prefix}_add`);
}

/** Middle-flow block: three × (ReLU → sepconv 728 → BN) with an identity shortcut. */
function middleBlock(x: Sym, prefix: string): Sym {
  let y = x;
  for (const k of [1, 2, 3]) {
    y = relu(y, `${prefix}_sepconv${k}_act`);
    y = sepConvBn(y, `${prefix}_sepconv${k}`, MIDDLE_FLOW_WIDTH);
  }
  return add([y, x], `${prefix}_add`);
}


/** `inputSize` must be at least the catalogue's minInputSize (the registry checks it). */
export function buildXception({ inputSize }: { inputSize: number }): tf.LayersModel {
  const input = imageInput(inputSize, 'entry_input');

  // Entry flow, block 1: two regular 3×3 'valid' convs.
  let x = input;
  for (const [k, filters, stride] of [[1, 32, 2], [2, 64, 1]] as const) {
    const name = `entry_block1_conv${k}`;
    x = conv2dBn(x, {
      name,
      names: { conv: name, bn: `${name}_bn`, act: `${name}_act` },
      filters,
      kernel: 3,
      stride,
      padding: 'valid',
      epsilon: BN_EPSILON,
      momentum: BN_MOMENTUM,
    });
  }

  for (const { block, filters } of ENTRY_BLOCKS) x = downsamplingBlock(x, `entry_block${block}`, filters, block !== 2);
  for (let i = 0; i < MIDDLE_FLOW_BLOCKS; i++) x = middleBlock(x, `middle_block${5 + i}`);
  x = downsamplingBlock(x, `exit_block${EXIT_BLOCK.block}`, EXIT_BLOCK.filters, true);

  // Exit flow, block 14: sepconv → BN → ReLU (activation after, unlike the blocks above).
  for (const [k, filters] of [[1, 1536], [2, 2048]] as const) {
    const name = `exit_block14_sepconv${k}`;
    x = relu(sepConvBn(x, name, filters), `${name}_act`);
  }

  x = globalAvgPool(x, 'features_pool');
  return tf.model({ name: 'xception', inputs: input, outputs: x });
}
