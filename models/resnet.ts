// ResNet (He et al. 2015) and SE-ResNet (Hu et al. 2018) backbones, table-driven like
// torchvision's BasicBlock/Bottleneck + stage table, with Keras-style stable layer names.
import * as tf from '@tensorflow/tfjs';
import { add, activationLayer, batchNorm, conv2d, conv2dBn, globalAvgPool, imageInput, maxPool, type AttentionLayer, type SymbolicTensor } from './layers';
import { RESNET_DEPTHS, type ResNetDepth } from './catalog';

export type ResNetUnit = 'basic' | 'bottleneck';

interface ResNetSpec {
  unit: ResNetUnit;
  /** Units per stage (stage1..stage4). */
  blocks: [number, number, number, number];
}

export const RESNET_SPECS: Record<ResNetDepth, ResNetSpec> = {
  18: { unit: 'basic', blocks: [2, 2, 2, 2] },
  34: { unit: 'basic', blocks: [3, 4, 6, 3] },
  50: { unit: 'bottleneck', blocks: [3, 4, 6, 3] },
  101: { unit: 'bottleneck', blocks: [3, 4, 23, 3] },
  152: { unit: 'bottleneck', blocks: [3, 8, 36, 3] },
};

/** Bottleneck width per stage; a stage outputs width × expansion channels. */
const STAGE_WIDTHS = [64, 128, 256, 512] as const;
const EXPANSION: Record<ResNetUnit, number> = { basic: 1, bottleneck: 4 };

const BN_EPSILON = 1e-5;

interface UnitArgs {
  /** e.g. 'stage2_block1' */
  prefix: string;
  width: number;
  stride: number;
  /** Channel attention on the residual branch (e.g. squeeze-and-excitation), if any. */
  attention?: AttentionLayer;
  /** Where a bottleneck unit strides: '1x1' (ResNet v1, Keras) or '3x3' (v1.5, torchvision). */
  strideOn: ResNetStrideOn;
  /** A ReLU at the end of a basic unit's branch (see ResNetOptions.basicBranchRelu). */
  basicBranchRelu?: boolean;
}

/**
 * Where a downsampling bottleneck unit puts its stride: on the first 1×1 conv (ResNet v1: He et al.
 * 2015, Keras ResNet50, the original SENet) or on the 3×3 conv (ResNet v1.5: torchvision and most timm
 * weights). Basic units (ResNet-18/34) stride on their first 3×3 either way. The layers, their names and
 * their weight shapes are the same in both; only the arithmetic differs.
 */
export type ResNetStrideOn = '1x1' | '3x3';

const names = (prefix: string, k: number) => ({
  pad: `${prefix}_pad${k}`,
  conv: `${prefix}_conv${k}`,
  bn: `${prefix}_bn${k}`,
  act: `${prefix}_relu${k}`,
});

/** Residual branch of a basic unit: 3×3 (stride) → BN → ReLU → 3×3 → BN. */
function basicBranch(x: SymbolicTensor, { prefix, width, stride, basicBranchRelu }: UnitArgs): SymbolicTensor {
  const common = { kernel: 3, padding: 'same' as const, epsilon: BN_EPSILON };
  x = conv2dBn(x, { ...common, name: prefix, names: names(prefix, 1), filters: width, stride });
  return conv2dBn(x, { ...common, name: prefix, names: names(prefix, 2), filters: width, activation: basicBranchRelu ? 'relu' : 'linear' });
}

/**
 * Residual branch of a bottleneck unit: 1×1 → 3×3 → 1×1 (4× expansion), BN after each. The stride sits
 * on the first 1×1 conv (ResNet v1, Keras ResNet50 — the default, so the bundled Keras ImageNet weights
 * reproduce their reference model exactly) or on the 3×3 (`strideOn: '3x3'`, torchvision's v1.5).
 */
function bottleneckBranch(x: SymbolicTensor, { prefix, width, stride, strideOn }: UnitArgs): SymbolicTensor {
  const e = { epsilon: BN_EPSILON };
  const [stride1, stride3] = strideOn === '3x3' ? [1, stride] : [stride, 1];
  x = conv2dBn(x, { ...e, name: prefix, names: names(prefix, 1), filters: width, kernel: 1, stride: stride1, padding: 'valid' });
  x = conv2dBn(x, { ...e, name: prefix, names: names(prefix, 2), filters: width, kernel: 3, stride: stride3, padding: 'same' });
  return conv2dBn(x, { ...e, name: prefix, names: names(prefix, 3), filters: width * 4, kernel: 1, padding: 'valid', activation: 'linear' });
}

const BRANCH: Record<ResNetUnit, (x: SymbolicTensor, a: UnitArgs) => SymbolicTensor> = {
  basic: basicBranch,
  bottleneck: bottleneckBranch,
};

/** One residual unit: branch (+ attention) + shortcut (1×1 conv + BN projection when the shape changes), then ReLU. */
function residualUnit(x: SymbolicTensor, unit: ResNetUnit, args: UnitArgs): SymbolicTensor {
  const { prefix, width, stride, attention } = args;
  const outChannels = width * EXPANSION[unit];
  let branch = BRANCH[unit](x, args);
  if (attention) branch = attention(branch, prefix);

  let shortcut = x;
  const inChannels = x.shape[x.shape.length - 1];
  if (stride !== 1 || inChannels !== outChannels) {
    shortcut = conv2d(x, { name: `${prefix}_shortcut_conv`, filters: outChannels, kernel: 1, stride, padding: 'valid' });
    shortcut = batchNorm(shortcut, `${prefix}_shortcut_bn`, BN_EPSILON);
  }
  const sum = add([branch, shortcut], `${prefix}_add`);
  return activationLayer(sum, `${prefix}_out`, 'relu');
}

/**
 * How the stem's 3×3/2 max-pool lines up its windows: 'pad' — one zero row/column on every side
 * (torchvision's padding=1, Keras' pool1_pad); 'ceil' — no padding, and PyTorch's ceil_mode keeps the
 * last, partial window (the SENet reference's MaxPool2d(3, stride=2, ceil_mode=True), kept by timm's
 * legacy SE-ResNets "to preserve compatibility with Caffe weights"). Both give 56² from 112², on grids
 * one pixel apart. Ceil mode equals one zero row/column on the bottom/right only, then a 'valid' pool:
 * the extra window's missing cell is padding, and zeros are neutral after the stem's ReLU.
 */
export type StemPool = 'pad' | 'ceil';

export interface ResNetOptions {
  depth: ResNetDepth;
  /** Channel attention on every unit's residual branch: squeezeExcitation() makes an SE-ResNet. */
  attention?: AttentionLayer;
  inputSize: number;
  /** The model's name; default `resnet<depth>`. */
  name?: string;
  /** Bottleneck stride placement: '1x1' (v1, default) or '3x3' (v1.5, for torchvision weights). */
  strideOn?: ResNetStrideOn;
  /** The stem max-pool's alignment: 'pad' (default) or 'ceil' (the SENet reference, timm's legacy SE-ResNets). */
  stemPool?: StemPool;
  /**
   * A ReLU after a basic unit's second BN, before the attention and the add: the SENet reference's
   * SEResNetBlock (timm legacy_seresnet18/34) has it; standard basic units do not. No effect on bottlenecks.
   */
  basicBranchRelu?: boolean;
}

/** ResNet/SE-ResNet backbone: [batch, size, size, 3] (caffe-preprocessed) → [batch, 512 | 2048]. */
export function buildResNet({ depth, attention, inputSize, name = `resnet${depth}`, strideOn = '1x1', stemPool = 'pad', basicBranchRelu = false }: ResNetOptions): tf.LayersModel {
  const spec = RESNET_SPECS[depth];
  if (!spec) throw new Error(`ResNet depth ${depth} is not supported; expected one of ${RESNET_DEPTHS.join(', ')}`);
  const input = imageInput(inputSize);

  let x = conv2dBn(input, { name: 'stem', filters: 64, kernel: 7, stride: 2, padding: 3, epsilon: BN_EPSILON });
  if (stemPool === 'ceil') {
    x = tf.layers.zeroPadding2d({ name: 'stem_pool_pad', padding: [[0, 1], [0, 1]] }).apply(x) as SymbolicTensor;
    x = maxPool(x, { name: 'stem_pool', pool: 3, stride: 2, padding: 'valid' });
  } else {
    x = maxPool(x, { name: 'stem_pool', pool: 3, stride: 2, padding: 1 });
  }

  spec.blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++) {
      x = residualUnit(x, spec.unit, {
        prefix: `stage${s + 1}_block${b + 1}`,
        width: STAGE_WIDTHS[s],
        // stage1 follows the max-pool, so it keeps the resolution.
        stride: b === 0 && s > 0 ? 2 : 1,
        strideOn,
        basicBranchRelu,
        ...(attention ? { attention } : {}),
      });
    }
  });

  const features = globalAvgPool(x, 'features_pool');
  return tf.model({ inputs: input, outputs: features, name });
}
