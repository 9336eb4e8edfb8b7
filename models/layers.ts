// Small shared layer builders for the backbones (ResNet, SE-ResNet, Xception, GoogLeNet, VGG).
//
// Padding policy: a convolution or pooling that pads and is strided gets an explicit
// ZeroPadding2D followed by 'valid', so the padding is symmetric as in torchvision/Keras
// Applications. TF's 'same' pads asymmetrically (more at the bottom/right) for even inputs
// with stride 2, which shifts every feature map by half a pixel and breaks published weights.
// For stride 1 with an odd kernel 'same' is symmetric, so it is used directly (one layer fewer).
import * as tf from '@tensorflow/tfjs';

export type SymbolicTensor = tf.SymbolicTensor;
export type Size2 = number | [number, number];
/** 'same' = keep size at stride 1 (k//2 on each side); a number = explicit symmetric padding. */
export type Padding = 'same' | 'valid' | number;
export type Activation = 'relu' | 'sigmoid' | 'linear';

/** Layer names of one conv(+BN)(+activation) unit. Unset names derive from `name`. */
export interface ConvBnNames {
  pad?: string;
  conv?: string;
  bn?: string;
  act?: string;
}

export interface ConvBnOptions {
  /** Prefix for default names: `${name}_pad`, `${name}_conv`, `${name}_bn`, `${name}_relu`. */
  name: string;
  /** Override individual layer names (e.g. `stage1_block1_conv1` / `stage1_block1_bn1`). */
  names?: ConvBnNames;
  filters: number;
  kernel: Size2;
  /** Default 1. */
  stride?: Size2;
  /** Default 'same'. */
  padding?: Padding;
  /** Convolution bias; default false (the BN that follows has its own shift). */
  bias?: boolean;
  /** BatchNorm epsilon; default 1e-5 (torchvision). Keras Applications use 1e-3 for Xception. */
  epsilon?: number;
  /** BatchNorm moving-average momentum in Keras convention (1 − torch momentum); default 0.9. */
  momentum?: number;
  /** Activation after BN; default 'relu'. 'linear' adds no activation layer. */
  activation?: Activation;
  /** Skip the BatchNorm (e.g. VGG16 without BN); default true. */
  batchNorm?: boolean;
}

const pair = (v: Size2): [number, number] => (Array.isArray(v) ? v : [v, v]);

function apply(layer: tf.layers.Layer, x: SymbolicTensor): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}

/** He-normal (fan-out would match torchvision; tfjs offers fan-in, close enough for random init). */
export const CONV_INIT = 'heNormal' as const;

let initSeed: number | undefined;

/**
 * Runs `build` so that every weight it creates starts from a seeded initializer (each layer's seed
 * derived from `seed` and the layer's name): the same seed gives the same random start, so a run
 * trained from scratch is repeatable. Without a seed, initial weights are random as usual.
 */
export function withInitSeed<T>(seed: number | undefined, build: () => T): T {
  const previous = initSeed;
  initSeed = seed;
  try {
    return build();
  } finally {
    initSeed = previous;
  }
}

/** FNV-1a over `${seed}:${name}`: a stable 31-bit seed per layer. */
function layerSeed(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${initSeed}:${name}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** The kernel initializer of the layer named `name`: seeded inside withInitSeed, else tfjs' default. */
function kernelInit(name: string, kind: 'heNormal' | 'glorotUniform'): ReturnType<typeof tf.initializers.heNormal> | typeof kind {
  if (initSeed === undefined) return kind;
  return kind === 'heNormal' ? tf.initializers.heNormal({ seed: layerSeed(name) }) : tf.initializers.glorotUniform({ seed: layerSeed(name) });
}

/** Symmetric zero padding of `pad` pixels (or [rows, cols]) on each side. */
export function zeroPad(x: SymbolicTensor, name: string, pad: Size2): SymbolicTensor {
  const [ph, pw] = pair(pad);
  return apply(tf.layers.zeroPadding2d({ name, padding: [[ph, ph], [pw, pw]] }), x);
}

/**
 * Resolves a padding request into (explicit symmetric pad, tfjs padding mode).
 * 'same' at stride 1 with odd kernels stays 'same' (already symmetric); otherwise pad explicitly.
 */
function resolvePadding(padding: Padding, kernel: Size2, stride: Size2): { pad: [number, number]; mode: 'same' | 'valid' } {
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(stride);
  if (padding === 'valid') return { pad: [0, 0], mode: 'valid' };
  if (padding === 'same') {
    if (sh === 1 && sw === 1 && kh % 2 === 1 && kw % 2 === 1) return { pad: [0, 0], mode: 'same' };
    if (kh % 2 === 0 || kw % 2 === 0) throw new Error(`padding 'same' with an even kernel (${kh}×${kw}) is ambiguous; pass an explicit number`);
    return { pad: [(kh - 1) / 2, (kw - 1) / 2], mode: 'valid' };
  }
  return padding > 0 ? { pad: [padding, padding], mode: 'valid' } : { pad: [0, 0], mode: 'valid' };
}

export function activationLayer(x: SymbolicTensor, name: string, activation: Activation): SymbolicTensor {
  if (activation === 'linear') return x;
  return apply(activation === 'relu' ? tf.layers.reLU({ name }) : tf.layers.activation({ name, activation }), x);
}

export function batchNorm(x: SymbolicTensor, name: string, epsilon = 1e-5, momentum = 0.9): SymbolicTensor {
  return apply(tf.layers.batchNormalization({ name, axis: -1, epsilon, momentum }), x);
}

/** Plain Conv2D with explicit symmetric padding when needed; padding defaults to 'same', no bias. */
export function conv2d(
  x: SymbolicTensor,
  o: { name: string; padName?: string; filters: number; kernel: Size2; stride?: Size2; padding?: Padding; bias?: boolean; activation?: Activation },
): SymbolicTensor {
  const stride = o.stride ?? 1;
  const { pad, mode } = resolvePadding(o.padding ?? 'same', o.kernel, stride);
  if (pad[0] > 0 || pad[1] > 0) x = zeroPad(x, o.padName ?? `${o.name}_pad`, pad);
  return apply(
    tf.layers.conv2d({
      name: o.name,
      filters: o.filters,
      kernelSize: pair(o.kernel),
      strides: pair(stride),
      padding: mode,
      useBias: o.bias ?? false,
      activation: o.activation ?? 'linear',
      kernelInitializer: kernelInit(o.name, CONV_INIT),
    }),
    x,
  );
}

/** [ZeroPadding2D] → Conv2D → [BatchNorm] → [activation]. Returns the last tensor. */
export function conv2dBn(x: SymbolicTensor, o: ConvBnOptions): SymbolicTensor {
  const n = o.names ?? {};
  const activation = o.activation ?? 'relu';
  let y = conv2d(x, {
    name: n.conv ?? `${o.name}_conv`,
    padName: n.pad ?? `${o.name}_pad`,
    filters: o.filters,
    kernel: o.kernel,
    stride: o.stride,
    padding: o.padding ?? 'same',
    bias: o.bias ?? false,
  });
  if (o.batchNorm ?? true) y = batchNorm(y, n.bn ?? `${o.name}_bn`, o.epsilon ?? 1e-5, o.momentum ?? 0.9);
  return activationLayer(y, n.act ?? `${o.name}_${activation}`, activation);
}

/** SeparableConv2D (depthwise 3×3 + pointwise 1×1, no bias by default) → [BN] → [activation]. */
export function separableConv2dBn(
  x: SymbolicTensor,
  o: Omit<ConvBnOptions, 'stride'> & { names?: ConvBnNames & { sepconv?: string } },
): SymbolicTensor {
  const n = o.names ?? {};
  const activation = o.activation ?? 'relu';
  const { pad, mode } = resolvePadding(o.padding ?? 'same', o.kernel, 1);
  if (pad[0] > 0 || pad[1] > 0) x = zeroPad(x, n.pad ?? `${o.name}_pad`, pad);
  let y = apply(
    tf.layers.separableConv2d({
      name: n.sepconv ?? n.conv ?? `${o.name}_sepconv`,
      filters: o.filters,
      kernelSize: pair(o.kernel),
      padding: mode,
      useBias: o.bias ?? false,
      depthwiseInitializer: kernelInit(`${n.sepconv ?? n.conv ?? `${o.name}_sepconv`}/depthwise`, CONV_INIT),
      pointwiseInitializer: kernelInit(`${n.sepconv ?? n.conv ?? `${o.name}_sepconv`}/pointwise`, CONV_INIT),
    }),
    x,
  );
  if (o.batchNorm ?? true) y = batchNorm(y, n.bn ?? `${o.name}_bn`, o.epsilon ?? 1e-5, o.momentum ?? 0.9);
  return activationLayer(y, n.act ?? `${o.name}_${activation}`, activation);
}

/**
 * Max pooling with explicit symmetric zero padding when `padding` is a number.
 * Zero padding equals torch's −inf padding here because every pool in these backbones follows a
 * ReLU (inputs ≥ 0); Keras ResNet50 does the same (`pool1_pad`).
 */
export function maxPool(
  x: SymbolicTensor,
  o: { name: string; padName?: string; pool: Size2; stride?: Size2; padding?: Padding },
): SymbolicTensor {
  const stride = o.stride ?? o.pool;
  const { pad, mode } = resolvePadding(o.padding ?? 'valid', o.pool, stride);
  if (pad[0] > 0 || pad[1] > 0) x = zeroPad(x, o.padName ?? `${o.name}_pad`, pad);
  return apply(tf.layers.maxPooling2d({ name: o.name, poolSize: pair(o.pool), strides: pair(stride), padding: mode }), x);
}

export function globalAvgPool(x: SymbolicTensor, name: string): SymbolicTensor {
  return apply(tf.layers.globalAveragePooling2d({ name }), x);
}

export function add(xs: SymbolicTensor[], name: string): SymbolicTensor {
  return tf.layers.add({ name }).apply(xs) as SymbolicTensor;
}

export function dense(
  x: SymbolicTensor,
  o: { name: string; units: number; activation?: Activation | 'softmax'; bias?: boolean },
): SymbolicTensor {
  return apply(
    tf.layers.dense({ name: o.name, units: o.units, activation: o.activation ?? 'linear', useBias: o.bias ?? true, kernelInitializer: kernelInit(o.name, 'glorotUniform') }),
    x,
  );
}

/**
 * Squeeze-and-excitation (Hu et al. 2018) on a channels-last feature map: global average pool →
 * dense(C/ratio, ReLU) → dense(C, sigmoid) → reshape [1,1,C] → channel-wise multiply.
 * Layers: `${prefix}_pool`, `_reduce`, `_expand`, `_reshape`, `_scale`.
 */
export function squeezeExcite(x: SymbolicTensor, prefix: string, ratio = 16): SymbolicTensor {
  const channels = x.shape[x.shape.length - 1] as number;
  let s = globalAvgPool(x, `${prefix}_pool`);
  s = dense(s, { name: `${prefix}_reduce`, units: Math.max(1, Math.floor(channels / ratio)), activation: 'relu' });
  s = dense(s, { name: `${prefix}_expand`, units: channels, activation: 'sigmoid' });
  s = apply(tf.layers.reshape({ name: `${prefix}_reshape`, targetShape: [1, 1, channels] }), s);
  return tf.layers.multiply({ name: `${prefix}_scale` }).apply([x, s]) as SymbolicTensor;
}

/** Channel attention applied to a block's output (`prefix` names the block), e.g. squeeze-and-excitation. */
export type AttentionLayer = (x: SymbolicTensor, prefix: string) => SymbolicTensor;

/** Squeeze-and-excitation as a pluggable attention layer: layers `${prefix}_se_*`. */
export function squeezeExcitation(ratio = 16): AttentionLayer {
  return (x, prefix) => squeezeExcite(x, `${prefix}_se`, ratio);
}

/** The image input of a backbone: [batch, size, size, 3], channels-last. */
export function imageInput(inputSize: number, name = 'input'): SymbolicTensor {
  return tf.input({ shape: [inputSize, inputSize, 3], name });
}
