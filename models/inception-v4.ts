// Inception-v4 (Szegedy et al. 2016) as timm builds `inception_v4` (timm/models/inception_v4.py,
// ported from TF-slim): every conv is conv (no bias) → BN (ε 1e-3) → ReLU; stem (three convs, Mixed
// 3a/4a/5a), 4 × Inception-A, Reduction-A, 7 × Inception-B, Reduction-B, 3 × Inception-C, global
// average pool → 1536. Dropout and the classifier belong to the head.
//
// The modules are tables whose unit names are timm's module paths with '.' → '_' (timm
// `features.6.branch1.1` ↔ our `stage1_a1_branch1_1`; models/weights/timm-inception.ts maps them), so
// the weight map is derived from the same tables. SE-Inception-v4 adds squeeze-and-excitation to each
// Inception-A/B/C module's concatenated output (the SENet paper's SE-Inception module).
import * as tf from '@tensorflow/tfjs';
import { conv2dBn, globalAvgPool, imageInput, maxPool, type AttentionLayer, type SymbolicTensor } from './layers';

// torch BatchNorm2d(momentum=0.1) is Keras momentum 0.9.
const BN_EPSILON = 1e-3;
const BN_MOMENTUM = 0.9;

/** One conv + BN + ReLU unit: timm's ConvNormAct. 'same' = timm's explicit k//2 padding at stride 1. */
export interface ConvUnit {
  op: 'conv';
  /** timm's path inside the module (e.g. `branch1.1`, `branch2_3a`, `conv`). */
  path: string;
  filters: number;
  kernel: [number, number];
  stride: 1 | 2;
  padding: 'same' | 'valid';
}
/** 3×3 pools: max-pool 3×3/2 'valid' (stem and reductions), average pool 3×3/1 not counting the padding. */
type PoolUnit = { op: 'maxpool' } | { op: 'avgpool' };
type Unit = ConvUnit | PoolUnit;

/** A branch runs its units in sequence; a `fork` then applies each of its convs to that output and concatenates them. */
interface Branch {
  units: readonly Unit[];
  fork?: readonly ConvUnit[];
}
type ModuleTable = readonly Branch[];

const conv = (path: string, filters: number, kernel: number | [number, number], o: { stride?: 2; valid?: true } = {}): ConvUnit => ({
  op: 'conv',
  path,
  filters,
  kernel: Array.isArray(kernel) ? kernel : [kernel, kernel],
  stride: o.stride ?? 1,
  padding: o.valid || o.stride === 2 ? 'valid' : 'same',
});
const MAXPOOL: PoolUnit = { op: 'maxpool' };
const AVGPOOL: PoolUnit = { op: 'avgpool' };

/** timm's module classes, branches in timm's concatenation order. */
const MODULE_TABLES = {
  mixed3a: [{ units: [MAXPOOL] }, { units: [conv('conv', 96, 3, { stride: 2 })] }],
  mixed4a: [
    { units: [conv('branch0.0', 64, 1), conv('branch0.1', 96, 3, { valid: true })] },
    { units: [conv('branch1.0', 64, 1), conv('branch1.1', 64, [1, 7]), conv('branch1.2', 64, [7, 1]), conv('branch1.3', 96, 3, { valid: true })] },
  ],
  mixed5a: [{ units: [conv('conv', 192, 3, { stride: 2 })] }, { units: [MAXPOOL] }],
  inceptionA: [
    { units: [conv('branch0', 96, 1)] },
    { units: [conv('branch1.0', 64, 1), conv('branch1.1', 96, 3)] },
    { units: [conv('branch2.0', 64, 1), conv('branch2.1', 96, 3), conv('branch2.2', 96, 3)] },
    { units: [AVGPOOL, conv('branch3.1', 96, 1)] },
  ],
  reductionA: [
    { units: [conv('branch0', 384, 3, { stride: 2 })] },
    { units: [conv('branch1.0', 192, 1), conv('branch1.1', 224, 3), conv('branch1.2', 256, 3, { stride: 2 })] },
    { units: [MAXPOOL] },
  ],
  inceptionB: [
    { units: [conv('branch0', 384, 1)] },
    { units: [conv('branch1.0', 192, 1), conv('branch1.1', 224, [1, 7]), conv('branch1.2', 256, [7, 1])] },
    {
      units: [conv('branch2.0', 192, 1), conv('branch2.1', 192, [7, 1]), conv('branch2.2', 224, [1, 7]), conv('branch2.3', 224, [7, 1]), conv('branch2.4', 256, [1, 7])],
    },
    { units: [AVGPOOL, conv('branch3.1', 128, 1)] },
  ],
  reductionB: [
    { units: [conv('branch0.0', 192, 1), conv('branch0.1', 192, 3, { stride: 2 })] },
    { units: [conv('branch1.0', 256, 1), conv('branch1.1', 256, [1, 7]), conv('branch1.2', 320, [7, 1]), conv('branch1.3', 320, 3, { stride: 2 })] },
    { units: [MAXPOOL] },
  ],
  inceptionC: [
    { units: [conv('branch0', 256, 1)] },
    { units: [conv('branch1_0', 384, 1)], fork: [conv('branch1_1a', 256, [1, 3]), conv('branch1_1b', 256, [3, 1])] },
    {
      units: [conv('branch2_0', 384, 1), conv('branch2_1', 448, [3, 1]), conv('branch2_2', 512, [1, 3])],
      fork: [conv('branch2_3a', 256, [1, 3]), conv('branch2_3b', 256, [3, 1])],
    },
    { units: [AVGPOOL, conv('branch3.1', 256, 1)] },
  ],
} satisfies Record<string, ModuleTable>;

export type ModuleKind = keyof typeof MODULE_TABLES;
export const MODULES: Readonly<Record<ModuleKind, ModuleTable>> = MODULE_TABLES;

/** One entry of timm's `features` Sequential: a plain conv unit (the stem's first three) or a module. */
export interface Feature {
  /** timm's index in `features`. */
  index: number;
  /** Our name prefix: stage name first. */
  name: string;
  body: ConvUnit | ModuleKind;
  /** Squeeze-and-excitation goes on this module's output in SE-Inception-v4. */
  attention?: boolean;
}

/**
 * timm's `features`, in order, with our names (the catalogue's stages: stem, stage1…3): the stem (0–5), stage1 = 4 × Inception-A (6–9), stage2 =
 * Reduction-A + 7 × Inception-B (10–17), stage3 = Reduction-B + 3 × Inception-C (18–21). Fine-tuning
 * trains stage3, the last 8×8 part (as the other backbones train their last resolution).
 */
export const FEATURES: readonly Feature[] = (() => {
  const features: Feature[] = [
    { index: 0, name: 'stem_conv1', body: conv('', 32, 3, { stride: 2 }) },
    { index: 1, name: 'stem_conv2', body: conv('', 32, 3, { valid: true }) },
    { index: 2, name: 'stem_conv3', body: conv('', 64, 3) },
    { index: 3, name: 'stem_mixed3a', body: 'mixed3a' },
    { index: 4, name: 'stem_mixed4a', body: 'mixed4a' },
    { index: 5, name: 'stem_mixed5a', body: 'mixed5a' },
  ];
  const push = (name: string, body: ModuleKind, attention = false) => features.push({ index: features.length, name, body, ...(attention ? { attention } : {}) });
  for (let i = 1; i <= 4; i++) push(`stage1_a${i}`, 'inceptionA', true);
  push('stage2_reduction', 'reductionA');
  for (let i = 1; i <= 7; i++) push(`stage2_b${i}`, 'inceptionB', true);
  push('stage3_reduction', 'reductionB');
  for (let i = 1; i <= 3; i++) push(`stage3_c${i}`, 'inceptionC', true);
  return features;
})();

/** Our layer-name prefix of a conv unit inside a module (`stage1_a1` + `branch1.1` → `stage1_a1_branch1_1`). */
export function unitName(moduleName: string, unit: ConvUnit): string {
  return unit.path ? `${moduleName}_${unit.path.replace(/\./g, '_')}` : moduleName;
}

type Sym = SymbolicTensor;

/** conv (no bias) → BN → ReLU, named `${name}_conv`, `_bn`, `_relu`. */
function convUnit(x: Sym, name: string, u: ConvUnit): Sym {
  return conv2dBn(x, {
    name,
    filters: u.filters,
    kernel: u.kernel,
    stride: u.stride,
    padding: u.padding,
    epsilon: BN_EPSILON,
    momentum: BN_MOMENTUM,
  });
}

function applyUnit(x: Sym, moduleName: string, u: Unit, position: string): Sym {
  if (u.op === 'conv') return convUnit(x, unitName(moduleName, u), u);
  if (u.op === 'maxpool') return maxPool(x, { name: `${moduleName}_${position}_maxpool`, pool: 3, stride: 2, padding: 'valid' });
  // torch AvgPool2d(3, 1, padding=1, count_include_pad=False): TF's 'same' average pool also
  // averages over the cells inside the image only.
  return tf.layers.averagePooling2d({ name: `${moduleName}_${position}_avgpool`, poolSize: 3, strides: 1, padding: 'same' }).apply(x) as Sym;
}

const concat = (xs: Sym[], name: string): Sym => tf.layers.concatenate({ name, axis: -1 }).apply(xs) as Sym;

function inceptionModule(x: Sym, name: string, table: ModuleTable): Sym {
  const outputs = table.map((branch, b) => {
    let y = branch.units.reduce((t, u) => applyUnit(t, name, u, `branch${b}`), x);
    if (branch.fork) y = concat(branch.fork.map((u) => convUnit(y, unitName(name, u), u)), `${name}_branch${b}_concat`);
    return y;
  });
  return concat(outputs, `${name}_concat`);
}

export interface InceptionV4Options {
  inputSize: number;
  /** Model name; default 'inceptionv4'. */
  name?: string;
  /** Channel attention on each Inception-A/B/C module's output (SE-Inception-v4). */
  attention?: AttentionLayer;
}

/** `inputSize` must be at least the catalogue's minInputSize, 75 (the registry checks it). */
export function buildInceptionV4({ inputSize, name = 'inceptionv4', attention }: InceptionV4Options): tf.LayersModel {
  const input = imageInput(inputSize, 'stem_input');
  let x = input;
  for (const f of FEATURES) {
    if (typeof f.body !== 'string') {
      x = convUnit(x, f.name, f.body);
      continue;
    }
    x = inceptionModule(x, f.name, MODULES[f.body]);
    if (attention && f.attention) x = attention(x, f.name);
  }
  x = globalAvgPool(x, 'features_pool');
  return tf.model({ name, inputs: input, outputs: x });
}
