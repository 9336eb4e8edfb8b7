// The backbone registry: everything a caller needs to pick, build and feed a backbone.
// `flops` and `params` are constants (building a model to count them is slow); the registry test
// checks them against models/flops.ts on real builds.
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo, BuildOptions } from './types';
import { buildResNet, RESNET_STAGES, resnetFeatureDim, type ResNetDepth } from './resnet';
import { buildXception, XCEPTION_DEFAULT_INPUT, XCEPTION_FEATURE_DIM, XCEPTION_MIN_INPUT, XCEPTION_STAGES } from './xception';
import { buildGoogLeNet, GOOGLENET_DEFAULT_INPUT, GOOGLENET_FEATURE_DIM, GOOGLENET_MIN_INPUT, GOOGLENET_STAGES } from './googlenet';
import { buildVgg16, VGG16_DEFAULT_INPUT, VGG16_FEATURE_DIM, VGG16_MIN_INPUT, VGG16_STAGES } from './vgg';
import { PREPROCESSING } from './preprocess';
import { withInitSeed } from './layers';

/**
 * How an entry's published parameter count was counted: torchvision/timm count learnable
 * parameters only; Keras' "Total params" (Xception) also counts BatchNorm moving mean/variance.
 */
export type ParamCountConvention = 'torch' | 'keras';

type Entry = Omit<BackboneInfo, 'build'> & {
  paramConvention: ParamCountConvention;
  builder: (inputSize: number) => tf.LayersModel;
};

/** Parameters (1000-class linear head, 224²) and FLOPs (default input) per ResNet variant. */
const RESNET_COUNTS: Record<`${'' | 'se'}resnet${ResNetDepth}`, { params: number; flops: number }> = {
  resnet18: { params: 11_689_512, flops: 3_628_146_688 },
  resnet34: { params: 21_797_672, flops: 7_327_522_816 },
  resnet50: { params: 25_557_032, flops: 7_715_946_496 },
  resnet101: { params: 44_549_160, flops: 15_140_388_864 },
  resnet152: { params: 60_192_808, flops: 22_564_831_232 },
  seresnet18: { params: 11_778_592, flops: 3_628_320_768 },
  seresnet34: { params: 21_958_868, flops: 7_327_837_184 },
  seresnet50: { params: 28_088_024, flops: 7_720_976_384 },
  seresnet101: { params: 49_326_872, flops: 15_149_875_200 },
  seresnet152: { params: 66_821_848, flops: 22_577_987_584 },
};

const RESNET_BLURB: Record<ResNetDepth, string> = {
  18: 'Small and fast; a good first choice for small datasets or slow computers.',
  34: 'A bit deeper than ResNet-18: somewhat more accurate, about twice as slow.',
  50: 'The classic all-rounder, with ImageNet weights available: usually the best place to start.',
  101: 'Deeper and slower than ResNet-50; can pay off with many images and a fast machine.',
  152: 'The deepest ResNet: slowest to train, for large datasets when accuracy matters most.',
};

function resnetEntry(depth: ResNetDepth, se: boolean): Entry {
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
    ...RESNET_COUNTS[id],
    paramConvention: 'torch',
    weights: id === 'resnet50' ? ['imagenet'] : [],
    stages: RESNET_STAGES,
    builder: (inputSize) => buildResNet({ depth, se, inputSize }),
  };
}

const DEPTHS: ResNetDepth[] = [18, 34, 50, 101, 152];

const ENTRIES: Entry[] = [
  ...DEPTHS.map((d) => resnetEntry(d, false)),
  ...DEPTHS.map((d) => resnetEntry(d, true)),
  {
    id: 'xception',
    name: 'Xception',
    description: 'Efficient and accurate on larger (299-pixel) images; slower per image than ResNet-50.',
    family: 'xception',
    inputSize: XCEPTION_DEFAULT_INPUT,
    minInputSize: XCEPTION_MIN_INPUT,
    preprocessing: PREPROCESSING.tf,
    featureDim: XCEPTION_FEATURE_DIM,
    params: 22_910_480,
    flops: 16_714_806_992,
    paramConvention: 'keras',
    weights: [],
    stages: XCEPTION_STAGES,
    builder: (inputSize) => buildXception({ inputSize }),
  },
  {
    id: 'googlenet',
    name: 'GoogLeNet',
    description: 'Light and quick (Inception v1): a good choice when speed matters more than the last bit of accuracy.',
    family: 'googlenet',
    inputSize: GOOGLENET_DEFAULT_INPUT,
    minInputSize: GOOGLENET_MIN_INPUT,
    preprocessing: PREPROCESSING.torch,
    featureDim: GOOGLENET_FEATURE_DIM,
    params: 6_624_904,
    flops: 2_996_752_384,
    paramConvention: 'torch',
    weights: [],
    stages: GOOGLENET_STAGES,
    builder: (inputSize) => buildGoogLeNet({ inputSize }),
  },
  {
    id: 'vgg16',
    name: 'VGG-16',
    description: 'A simple, very large classic network: slow and memory-hungry, mostly useful for comparison.',
    family: 'vgg',
    inputSize: VGG16_DEFAULT_INPUT,
    minInputSize: VGG16_MIN_INPUT,
    preprocessing: PREPROCESSING.torch,
    featureDim: VGG16_FEATURE_DIM,
    params: 138_357_544,
    flops: 30_940_528_640,
    paramConvention: 'torch',
    weights: [],
    stages: VGG16_STAGES,
    builder: (inputSize) => buildVgg16({ inputSize }),
  },
];

function toInfo({ paramConvention: _convention, builder, ...info }: Entry): BackboneInfo {
  return Object.freeze({
    ...info,
    build(options: BuildOptions = {}): tf.LayersModel {
      const size = options.inputSize ?? info.inputSize;
      if (!Number.isInteger(size) || size < info.minInputSize) {
        throw new Error(`${info.name} (${info.id}) needs an input of at least ${info.minInputSize}×${info.minInputSize} pixels; got ${size}`);
      }
      return withInitSeed(options.seed, () => builder(size));
    },
  });
}

const INFOS: readonly BackboneInfo[] = Object.freeze(ENTRIES.map(toInfo));
const BY_ID = new Map(INFOS.map((info) => [info.id, info]));
const CONVENTION = new Map(ENTRIES.map((e) => [e.id, e.paramConvention]));

export function listBackbones(): BackboneInfo[] {
  return [...INFOS];
}

export function backboneIds(): string[] {
  return INFOS.map((info) => info.id);
}

export function getBackbone(id: string): BackboneInfo {
  const info = BY_ID.get(id);
  if (!info) throw new Error(`unknown backbone "${id}"; valid ids are ${backboneIds().join(', ')}`);
  return info;
}

/** Whether `params` of backbone `id` counts BatchNorm statistics ('keras') or not ('torch'). */
export function paramCountConvention(id: string): ParamCountConvention {
  getBackbone(id);
  return CONVENTION.get(id)!;
}
