// Classification heads: a separate, replaceable piece on top of a backbone's pooled features
// (timm's reset_classifier idea). Head layers are named `head_*`.
import * as tf from '@tensorflow/tfjs';

import type { HeadConfig } from '../main/api/models';

export type { HeadConfig };

export const HEAD_PREFIX = 'head_';
export const HEAD_STAGE = 'head';

/** [featureDim] → probabilities over `numClasses`; the last layer is a dense with softmax. */
export function buildHead(featureDim: number, numClasses: number, config: HeadConfig = { kind: 'linear' }, seed?: number): tf.Sequential {
  // A seed makes the initial weights, and so a whole training run, repeatable.
  const init = (offset: number) => (seed === undefined ? {} : { kernelInitializer: tf.initializers.glorotUniform({ seed: seed + offset }) });
  if (!Number.isInteger(featureDim) || featureDim < 1) throw new Error(`head: featureDim must be a positive integer, got ${featureDim}`);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`head: need at least 2 classes, got ${numClasses}`);
  const layers: tf.layers.Layer[] = [];
  if (config.kind === 'mlp') {
    if (!Number.isInteger(config.hidden) || config.hidden < 1) throw new Error(`head: mlp hidden size must be a positive integer, got ${config.hidden}`);
    if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`head: mlp dropout must be in [0, 1), got ${config.dropout}`);
    layers.push(tf.layers.dense({ name: 'head_hidden', units: config.hidden, activation: 'relu', inputShape: [featureDim], ...init(1) }));
    layers.push(tf.layers.dropout({ name: 'head_dropout', rate: config.dropout }));
  } else if (config.kind !== 'linear') {
    throw new Error(`head: unknown kind "${(config as { kind: string }).kind}"; expected linear or mlp`);
  }
  layers.push(
    tf.layers.dense({
      name: 'head_classifier',
      units: numClasses,
      activation: 'softmax',
      ...(layers.length === 0 ? { inputShape: [featureDim] } : {}),
      ...init(0),
    }),
  );
  return tf.sequential({ name: 'head', layers });
}

/** Head layers of a head model, without its InputLayer. */
function headLayers(head: tf.LayersModel): tf.layers.Layer[] {
  return head.layers.filter((l) => l.getClassName() !== 'InputLayer');
}

/**
 * backbone → head as one flat functional model (no nested model, so plain tfjs save /
 * loadLayersModel round-trips it). Layer objects are shared: training the classifier trains the
 * backbone's and the head's weights in place.
 */
export function attachHead(backbone: tf.LayersModel, head: tf.LayersModel, name = `${backbone.name}_classifier`): tf.LayersModel {
  const features = backbone.outputs[0];
  const featureDim = features.shape[features.shape.length - 1];
  const expected = head.inputs[0].shape[head.inputs[0].shape.length - 1];
  if (featureDim !== expected) throw new Error(`head expects ${expected} features but backbone ${backbone.name} gives ${featureDim}`);
  let y = features;
  for (const layer of headLayers(head)) y = layer.apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: y, name });
}

/** The tensor that feeds the first head layer inside `classifier` (the backbone's features). */
function featureTensor(classifier: tf.LayersModel): tf.SymbolicTensor {
  const own = (classifier as unknown as { containerNodes?: Set<string> }).containerNodes;
  const firstHead = classifier.layers.find((l) => l.name.startsWith(HEAD_PREFIX) && l.getClassName() !== 'InputLayer');
  if (!firstHead) throw new Error(`model ${classifier.name} has no head layers (named ${HEAD_PREFIX}*)`);
  const node = firstHead.inboundNodes.find((_, i) => !own || own.has(`${firstHead.name}_ib-${i}`));
  if (!node) throw new Error(`head layer ${firstHead.name} is not connected inside ${classifier.name}`);
  return node.inputTensors[0];
}

/**
 * Splits a classifier (e.g. one loaded from disk) into its backbone and its head, sharing layers
 * (and therefore weights) with it.
 */
export function splitClassifier(classifier: tf.LayersModel): { backbone: tf.LayersModel; head: tf.LayersModel } {
  const features = featureTensor(classifier);
  const backbone = tf.model({ inputs: classifier.inputs, outputs: features, name: classifier.name.replace(/_classifier$/, '') });
  const headIn = tf.input({ shape: features.shape.slice(1) as number[], name: 'head_input' });
  let y: tf.SymbolicTensor = headIn;
  for (const layer of classifier.layers.filter((l) => l.name.startsWith(HEAD_PREFIX) && l.getClassName() !== 'InputLayer')) {
    y = layer.apply(y) as tf.SymbolicTensor;
  }
  return { backbone, head: tf.model({ inputs: headIn, outputs: y, name: 'head' }) };
}

/**
 * Frees a layer's weights whatever its reference count. tfjs counts one reference per symbolic
 * call, so a layer shared by a backbone, a head and a classifier would otherwise survive
 * `model.dispose()` (or be freed while another model still uses it).
 */
function disposeLayer(layer: tf.layers.Layer): void {
  if (layer.weights.length === 0) return;
  for (let guard = 0; guard < 1000; guard++) {
    if (layer.dispose().refCountAfterDispose <= 0) return;
  }
}

/**
 * Frees every weight of `model`'s layers, including layers it shares with the backbone and head
 * it was built from (which become unusable too). Use this, not `model.dispose()`, for models
 * built with attachHead / splitClassifier.
 */
export function disposeAll(model: tf.LayersModel): void {
  for (const layer of model.layers) disposeLayer(layer);
}

/**
 * A new head for `labels` on the same features as `parentHead` (trained for `parentLabels`): hidden
 * layers are copied, and each class that survives keeps its classifier column and bias, so a
 * continued run starts where the parent ended; new classes start from fresh (seeded) weights.
 * The parent head is left as it was.
 */
export function growHead(parentHead: tf.LayersModel, parentLabels: readonly string[], labels: readonly string[], config: HeadConfig, seed?: number): tf.LayersModel {
  const featureDim = parentHead.inputs[0].shape[1] as number;
  const head = buildHead(featureDim, labels.length, config, seed);
  const oldLayers = parentHead.layers.filter((l) => l.getWeights().length > 0);
  const newLayers = head.layers.filter((l) => l.getWeights().length > 0);
  if (oldLayers.length !== newLayers.length) {
    disposeAll(head);
    throw new Error(`continue training: the head kind differs from the earlier run (${oldLayers.length} vs ${newLayers.length} weighted layers)`);
  }
  newLayers.forEach((layer, i) => {
    const old = oldLayers[i];
    if (i < newLayers.length - 1) {
      layer.setWeights(old.getWeights());
      return;
    }
    const [kernel, bias] = layer.getWeights();
    const [oldKernel, oldBias] = old.getWeights();
    const k = kernel.arraySync() as number[][];
    const b = bias.arraySync() as number[];
    const ok = oldKernel.arraySync() as number[][];
    const ob = oldBias.arraySync() as number[];
    labels.forEach((label, c) => {
      const p = parentLabels.indexOf(label);
      if (p < 0) return;
      for (let d = 0; d < k.length; d++) k[d][c] = ok[d][p];
      b[c] = ob[p];
    });
    const [nextKernel, nextBias] = [tf.tensor2d(k), tf.tensor1d(b)];
    layer.setWeights([nextKernel, nextBias]);
    tf.dispose([nextKernel, nextBias]);
  });
  return head;
}

/** Number of classes a classifier predicts. */
export function classCount(classifier: tf.LayersModel): number {
  const out = classifier.outputs[0];
  return out.shape[out.shape.length - 1] as number;
}
