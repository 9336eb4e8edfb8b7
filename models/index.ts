// Public surface of the models package.
export type { BackboneInfo, BuildOptions, Preprocessing } from './types';
export { listBackbones, getBackbone, backboneIds, paramCountConvention, type ParamCountConvention } from './registry';
export { buildResNet, resnetFeatureDim, RESNET_SPECS, RESNET_STAGES, RESNET_DEPTHS, type ResNetDepth, type ResNetOptions } from './resnet';
export { buildXception } from './xception';
export { buildGoogLeNet } from './googlenet';
export { buildVgg16 } from './vgg';
export {
  buildHead,
  attachHead,
  splitClassifier,
  replaceHead,
  disposeAll,
  classCount,
  HEAD_PREFIX,
  HEAD_STAGE,
  type HeadConfig,
} from './heads';
export { freezeBackbone, unfreezeAll, lastStages, stageOf, type FreezeOptions } from './freeze';
export { countFlops, countParams, flopsByLayer, type ParamCountOptions } from './flops';
export { preprocess, PREPROCESSING, CAFFE_BGR_MEAN, TORCH_MEAN, TORCH_STD } from './preprocess';
