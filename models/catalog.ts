// The backbone catalogue: everything a caller needs to know about a backbone, as plain data (no
// TF.js), like timm's pretrained configs. The CLI, the UI's model cards, config validation and the
// time estimates read it without loading a network; models/registry.ts adds the builders and the
// weight loaders on top. `flops` and `params` are constants (building a model to count them is
// slow); the registry test checks them against models/flops.ts on real builds.
import type { Preprocessing } from '../main/api/models';
import { weightSetsOf, type WeightSetEntry, type WeightSetId } from './weight-sets';

export { checkInputSize } from '../main/api/train-config';

/** BGR ImageNet mean used by Keras "caffe" preprocessing (ResNet50 weights). */
export const CAFFE_BGR_MEAN: [number, number, number] = [103.939, 116.779, 123.68];
export const TORCH_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const TORCH_STD: [number, number, number] = [0.229, 0.224, 0.225];

export const PREPROCESSING = {
  caffe: { mode: 'caffe', mean: CAFFE_BGR_MEAN },
  torch: { mode: 'torch', mean: TORCH_MEAN, std: TORCH_STD },
  tf: { mode: 'tf' },
} as const satisfies Record<Preprocessing['mode'], Preprocessing>;

/**
 * How an entry's published parameter count was counted: torchvision/timm count learnable
 * parameters only; Keras' "Total params" (Xception) also counts BatchNorm moving mean/variance.
 */
export type ParamCountConvention = 'torch' | 'keras';

export type BackboneFamily = 'resnet' | 'seresnet' | 'xception' | 'googlenet' | 'vgg' | 'inception' | 'seinception';

export type { WeightSetEntry, WeightSetId } from './weight-sets';

/**
 * One backbone's facts. Layer-name convention of every builder: each layer's name starts with the
 * name of the stage it belongs to followed by '_' (e.g. `stem_conv`, `stage3_block2_conv1`), so that
 * freezing by stage and weight mapping work by name. `stages` lists the stage names from input to output.
 */
export interface BackboneSpec {
  id: string;
  name: string;
  description: string;
  family: BackboneFamily;
  /** Default square input side, and the smallest side the network accepts. */
  inputSize: number;
  minInputSize: number;
  preprocessing: Preprocessing;
  /** Width of the global-average-pooled feature vector the head takes. */
  featureDim: number;
  /** Floating-point operations (2 × multiply-adds) for one image at the default input size, backbone + 1000-class head. */
  flops: number;
  /** Parameters with a 1000-class linear head at 224², as published. */
  params: number;
  paramConvention: ParamCountConvention;
  /**
   * Pretrained weights Refit can load for this backbone without any user action ('imagenet' when a
   * set ships with Refit). The registry's BackboneInfo.weights adds the sets imported into the user cache.
   */
  weights: readonly WeightSetId[];
  /** Every published weight set Refit knows for this backbone (models/weight-sets.ts), default first. */
  weightSets: readonly WeightSetEntry[];
  stages: readonly string[];
  /**
   * Share of the FLOPs in what trains in fine-tune mode (the last stage + the head), counted with
   * models/flops on the trainer's split (models/trunk.ts splitAtStages); used by the time estimates.
   */
  lastStageShare: number;
}

export const RESNET_STAGES = ['stem', 'stage1', 'stage2', 'stage3', 'stage4'] as const;
export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export const RESNET_DEPTHS: readonly ResNetDepth[] = [18, 34, 50, 101, 152];

const RESNET_FACTS: Record<`${'' | 'se'}resnet${ResNetDepth}`, { params: number; flops: number; lastStageShare: number }> = {
  resnet18: { params: 11_689_512, flops: 3_628_146_688, lastStageShare: 0.227 },
  resnet34: { params: 21_797_672, flops: 7_327_522_816, lastStageShare: 0.175 },
  resnet50: { params: 25_557_032, flops: 7_715_946_496, lastStageShare: 0.19 },
  resnet101: { params: 44_549_160, flops: 15_140_388_864, lastStageShare: 0.097 },
  resnet152: { params: 60_192_808, flops: 22_564_831_232, lastStageShare: 0.065 },
  seresnet18: { params: 11_778_592, flops: 3_628_320_768, lastStageShare: 0.227 },
  seresnet34: { params: 21_958_868, flops: 7_327_837_184, lastStageShare: 0.175 },
  seresnet50: { params: 28_088_024, flops: 7_720_976_384, lastStageShare: 0.19 },
  seresnet101: { params: 49_326_872, flops: 15_149_875_200, lastStageShare: 0.097 },
  seresnet152: { params: 66_821_848, flops: 22_577_987_584, lastStageShare: 0.065 },
};

const RESNET_BLURB: Record<ResNetDepth, string> = {
  18: 'Small and fast; a good first choice for small datasets or slow computers.',
  34: 'A bit deeper than ResNet-18: somewhat more accurate, about twice as slow.',
  50: 'The classic all-rounder, with ImageNet weights available: usually the best place to start.',
  101: 'Deeper and slower than ResNet-50; can pay off with many images and a fast machine.',
  152: 'The deepest ResNet: slowest to train, for large datasets when accuracy matters most.',
};

/** Basic units (18, 34) end in 512 channels, bottleneck units (50+) in 512 × 4. */
export function resnetFeatureDim(depth: ResNetDepth): number {
  return depth < 50 ? 512 : 2048;
}

/** The catalogue's weight sets of a backbone, and 'imagenet' in `weights` when one ships with Refit. */
function weightFacts(id: string): { weights: readonly WeightSetId[]; weightSets: readonly WeightSetEntry[] } {
  const weightSets = weightSetsOf(id);
  return { weights: weightSets.some((s) => s.delivery === 'bundled') ? ['imagenet'] : [], weightSets };
}

function resnetSpec(depth: ResNetDepth, se: boolean): BackboneSpec {
  const id = `${se ? 'se' : ''}resnet${depth}` as const;
  return {
    id,
    name: `${se ? 'SE-' : ''}ResNet-${depth}`,
    description: se
      ? `ResNet-${depth} with channel attention ("squeeze-and-excitation"): a little more accurate for almost no extra compute.`
      : RESNET_BLURB[depth],
    family: se ? 'seresnet' : 'resnet',
    inputSize: 224,
    minInputSize: 32,
    preprocessing: PREPROCESSING.caffe,
    featureDim: resnetFeatureDim(depth),
    ...RESNET_FACTS[id],
    paramConvention: 'torch',
    ...weightFacts(id),
    stages: RESNET_STAGES,
  };
}

/** Reduction-B + 3 × Inception-C + head, of the whole (the same for SE-Inception-v4 to three digits). */
const LAST_STAGE_SHARE_INCEPTION_V4 = 0.113;

const SPECS: readonly BackboneSpec[] = Object.freeze(
  [
    ...RESNET_DEPTHS.map((d) => resnetSpec(d, false)),
    ...RESNET_DEPTHS.map((d) => resnetSpec(d, true)),
    {
      id: 'xception',
      name: 'Xception',
      description: 'Efficient and accurate on larger (299-pixel) images; slower per image than ResNet-50.',
      family: 'xception',
      inputSize: 299,
      /** Keras Applications' minimum for Xception. */
      minInputSize: 71,
      preprocessing: PREPROCESSING.tf,
      featureDim: 2048,
      params: 22_910_480,
      flops: 16_714_806_992,
      paramConvention: 'keras',
      ...weightFacts('xception'),
      stages: ['entry', 'middle', 'exit'],
      lastStageShare: 0.121,
    },
    {
      id: 'googlenet',
      name: 'GoogLeNet',
      description: 'Light and quick (Inception v1): a good choice when speed matters more than the last bit of accuracy.',
      family: 'googlenet',
      inputSize: 224,
      // Smallest side at which every max-pool's input is at least as large as its window
      // (31 → 16 → 8 → 4 → 2 → 1). torch accepts down to 15 by letting windows hang mostly off the edge.
      minInputSize: 31,
      preprocessing: PREPROCESSING.torch,
      featureDim: 1024,
      params: 6_624_904,
      flops: 2_996_752_384,
      paramConvention: 'torch',
      ...weightFacts('googlenet'),
      stages: ['stem', 'stage3', 'stage4', 'stage5'],
      lastStageShare: 0.076,
    },
    {
      id: 'vgg16',
      name: 'VGG-16',
      description: 'A simple, very large classic network: slow and memory-hungry, mostly useful for comparison.',
      family: 'vgg',
      inputSize: 224,
      // Five 2×2/2 floor pools: 32 → 1×1 before the adaptive pool; 31 would reach 0.
      minInputSize: 32,
      preprocessing: PREPROCESSING.torch,
      featureDim: 4096,
      params: 138_357_544,
      flops: 30_940_528_640,
      paramConvention: 'torch',
      ...weightFacts('vgg16'),
      stages: ['block1', 'block2', 'block3', 'block4', 'block5', 'fc'],
      lastStageShare: 0.008,
    },
    {
      id: 'inceptionv4',
      name: 'Inception-v4',
      description: 'Deep and accurate on larger (299-pixel) images, with ImageNet weights from TF-slim via timm; slow to train.',
      family: 'inception',
      inputSize: 299,
      // Smallest side at which every 'valid' conv and pool keeps at least one cell (75 → 37 → 35 → 17 → 15 → 7 → 3 → 1).
      minInputSize: 75,
      preprocessing: PREPROCESSING.tf,
      featureDim: 1536,
      params: 42_679_816,
      flops: 24_507_949_248,
      paramConvention: 'torch',
      ...weightFacts('inceptionv4'),
      stages: ['stem', 'stage1', 'stage2', 'stage3'],
      lastStageShare: LAST_STAGE_SHARE_INCEPTION_V4,
    },
    {
      id: 'seinceptionv4',
      name: 'SE-Inception-v4',
      description: 'Inception-v4 with channel attention ("squeeze-and-excitation") on every inception module; no published weights: starts from random weights.',
      family: 'seinception',
      inputSize: 299,
      minInputSize: 75,
      preprocessing: PREPROCESSING.tf,
      featureDim: 1536,
      params: 44_569_928,
      flops: 24_511_701_184,
      paramConvention: 'torch',
      ...weightFacts('seinceptionv4'),
      stages: ['stem', 'stage1', 'stage2', 'stage3'],
      lastStageShare: LAST_STAGE_SHARE_INCEPTION_V4,
    },
  ].map((spec) => Object.freeze(spec as BackboneSpec)),
);

const BY_ID = new Map(SPECS.map((spec) => [spec.id, spec]));

export function backboneIds(): string[] {
  return SPECS.map((spec) => spec.id);
}

export function listBackboneSpecs(): BackboneSpec[] {
  return [...SPECS];
}

export function getBackboneSpec(id: string): BackboneSpec {
  const spec = BY_ID.get(id);
  if (!spec) throw new Error(`unknown backbone "${id}"; valid ids are ${backboneIds().join(', ')}`);
  return spec;
}
