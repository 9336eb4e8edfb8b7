// Grad-CAM (Selvaraju et al., 2017): where a trained classifier looks. From the activations A of the
// backbone's last convolutional stage (before global pooling) and the gradient of one class's score
// (the logit before the head's softmax) with respect to A:
//   α_k = mean over space of ∂score/∂A_k,   map = ReLU(Σ_k α_k A_k) / max
// one small map per image (the stage's grid, e.g. 7×7 at 224²), values in [0, 1]. The renderer
// upsamples and colours it over the image, placed by `content` (Refit pads to a square, never crops).
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import type { ContentBox } from '../api/grad-cam';
import type { BackboneSpec } from '../../models/catalog';
import { modelNodes } from '../../models/graph';
import { stageOf } from '../../models/freeze';
import { HEAD_PREFIX } from '../../models/heads';
import type { Preprocessing } from '../../models/types';
import { decodeImageRgb } from './image-decode';
import { preprocessInto } from './preprocess-float';

/** A classifier cut at the last convolutional stage, ready for Grad-CAM. Shares weights with the classifier. */
export interface GradCamModel {
  /** image → A, the last convolutional stage's output [1, h, w, c]. */
  trunk: tf.LayersModel;
  /** A → the features the head's last (softmax) dense takes. */
  top: tf.LayersModel;
  /** That dense's kernel and bias: logits = features · kernel + bias. */
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable;
  /** Name of the layer whose output is A (e.g. stage4_block2_out). */
  stageOutput: string;
  mapHeight: number;
  mapWidth: number;
  inputSize: number;
  classes: number;
}

export interface GradCamMap {
  /** height × width values in [0, 1], row-major. All zero when nothing in the image speaks for the class. */
  values: Float32Array;
  height: number;
  width: number;
  /** The class the map explains, and the class the model predicts with its probability. */
  classIndex: number;
  predictedIndex: number;
  probability: number;
}

/** The last stage (in the catalogue's order) that has a convolution, e.g. stage4, exit, block5 (VGG's fc stage has none). */
function lastConvStage(classifier: tf.LayersModel, stages: readonly string[]): string {
  const withConv = new Set<string>();
  for (const layer of classifier.layers) {
    if (!/Conv2D$/.test(layer.getClassName())) continue;
    const stage = stageOf(layer.name, stages);
    if (stage) withConv.add(stage);
  }
  const last = [...stages].reverse().find((s) => withConv.has(s));
  if (!last) throw new Error(`Grad-CAM: ${classifier.name} has no convolution in any of its stages (${stages.join(', ')})`);
  return last;
}

/** The head's last dense (`head_classifier`): the one whose pre-softmax output is the class score. */
function classifierDense(classifier: tf.LayersModel): tf.layers.Layer {
  const dense = classifier.layers.filter((l) => l.name.startsWith(HEAD_PREFIX) && l.getClassName() === 'Dense').pop();
  if (!dense) throw new Error(`Grad-CAM: ${classifier.name} has no head dense layer (named ${HEAD_PREFIX}*)`);
  return dense;
}

/**
 * Cuts `classifier` (a catalogue backbone with a Refit head, e.g. a run's best/ checkpoint) after its
 * last convolutional stage. The returned models share layers with `classifier`: dispose that, not these.
 */
export function gradCamModel(classifier: tf.LayersModel, spec: Pick<BackboneSpec, 'stages'>): GradCamModel {
  const stage = lastConvStage(classifier, spec.stages);
  const dense = classifierDense(classifier);
  const nodes = modelNodes(classifier);
  const stageNodes = nodes.filter((n) => stageOf(n.outboundLayer.name, spec.stages) === stage);
  const cutNode = stageNodes[stageNodes.length - 1];
  const cut = cutNode.outputTensors[0];
  if (cut.shape.length !== 4) throw new Error(`Grad-CAM: ${cutNode.outboundLayer.name} gives shape ${JSON.stringify(cut.shape)}, not an image-shaped [batch, h, w, c]`);
  const denseNode = nodes.find((n) => n.outboundLayer === dense)!;
  const features = denseNode.inputTensors[0];

  // Re-applies every layer between A and the dense's input to a new input (as models/trunk.ts does).
  const topInput = tf.input({ shape: cut.shape.slice(1) as number[], name: `${classifier.name}_gradcam_input` });
  const values = new Map<number, tf.SymbolicTensor>([[cut.id, topInput]]);
  for (const node of nodes) {
    if (node === denseNode) break;
    if (!node.inputTensors.some((t) => values.has(t.id))) continue;
    const inputs = node.inputTensors.map((t) => {
      const v = values.get(t.id);
      if (!v) throw new Error(`Grad-CAM: ${node.outboundLayer.name} takes a tensor from before ${cutNode.outboundLayer.name}; cannot cut ${classifier.name} there`);
      return v;
    });
    const out = node.outboundLayer.apply(inputs.length === 1 ? inputs[0] : inputs, node.callArgs ?? {});
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((t, i) => values.set(t.id, outs[i] as tf.SymbolicTensor));
  }
  const topOutput = values.get(features.id);
  if (!topOutput) throw new Error(`Grad-CAM: the head of ${classifier.name} does not depend on ${cutNode.outboundLayer.name}`);
  const [kernel, bias] = dense.weights;
  if (!kernel || !bias) throw new Error(`Grad-CAM: ${dense.name} has no bias`);
  return {
    trunk: tf.model({ inputs: classifier.inputs, outputs: cut, name: `${classifier.name}_gradcam_trunk` }),
    top: tf.model({ inputs: topInput, outputs: topOutput, name: `${classifier.name}_gradcam_top` }),
    kernel,
    bias,
    stageOutput: cutNode.outboundLayer.name,
    mapHeight: cut.shape[1] as number,
    mapWidth: cut.shape[2] as number,
    inputSize: classifier.inputs[0].shape[1] as number,
    classes: kernel.shape[1] as number,
  };
}

/**
 * The Grad-CAM map of one preprocessed image (`input`: size×size×3, NHWC) for `classIndex`
 * (default: the predicted class).
 */
export async function gradCamMap(model: GradCamModel, input: Float32Array, classIndex?: number): Promise<GradCamMap> {
  const size = model.inputSize;
  if (input.length !== size * size * 3) throw new Error(`Grad-CAM: input has ${input.length} values, expected ${size}×${size}×3`);
  if (classIndex !== undefined && !(Number.isInteger(classIndex) && classIndex >= 0 && classIndex < model.classes)) {
    throw new Error(`Grad-CAM: class index ${classIndex} is out of range (the model has ${model.classes} classes)`);
  }
  const logitsOf = (a: tf.Tensor): tf.Tensor2D => {
    const features = model.top.apply(a, { training: false }) as tf.Tensor2D;
    return tf.add(tf.matMul(features, model.kernel.read() as tf.Tensor2D), model.bias.read()) as tf.Tensor2D;
  };
  const activations = tf.tidy(() => model.trunk.apply(tf.tensor4d(input, [1, size, size, 3]), { training: false }) as tf.Tensor4D);
  try {
    const probabilities = tf.tidy(() => tf.softmax(logitsOf(activations)));
    const probs = (await probabilities.data()) as Float32Array;
    probabilities.dispose();
    let predictedIndex = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[predictedIndex]) predictedIndex = i;
    const target = classIndex ?? predictedIndex;
    const map = tf.tidy(() => {
      // The target's logit as a dot product with a one-hot row (gather has no gradient kernel on wasm).
      const oneHot = tf.oneHot(tf.tensor1d([target], 'int32'), model.classes);
      const score = (a: tf.Tensor) => tf.sum(tf.mul(logitsOf(a), oneHot));
      const gradient = tf.grad(score)(activations);
      const alpha = gradient.mean([1, 2], true); // [1, 1, 1, c]
      const cam = tf.relu(tf.sum(tf.mul(activations, alpha), -1)).squeeze([0]); // [h, w]
      const max = cam.max();
      // No positive evidence anywhere: an all-zero map rather than 0/0.
      return tf.where(tf.greater(max, 0), tf.div(cam, tf.maximum(max, Number.MIN_VALUE)), tf.zerosLike(cam));
    });
    const values = (await map.data()) as Float32Array;
    map.dispose();
    return { values, height: model.mapHeight, width: model.mapWidth, classIndex: target, predictedIndex, probability: probs[predictedIndex] };
  } finally {
    activations.dispose();
  }
}

/**
 * The "contain" rule of image-decode: the image (after its EXIF orientation) scaled to fit the
 * square and centred, the rest white padding.
 */
export async function contentBox(file: string): Promise<ContentBox> {
  const meta = await sharp(file, { limitInputPixels: false })
    .metadata()
    .catch((err: unknown) => {
      throw new Error(`Cannot read the size of image ${file}: ${err instanceof Error ? err.message : String(err)}`);
    });
  if (!meta.width || !meta.height) throw new Error(`Cannot read the size of image ${file}`);
  const turned = (meta.orientation ?? 1) >= 5;
  const [w, h] = turned ? [meta.height, meta.width] : [meta.width, meta.height];
  const side = Math.max(w, h);
  return { x: (1 - w / side) / 2, y: (1 - h / side) / 2, width: w / side, height: h / side };
}

/** Decodes and preprocesses `file` as the run's classifier sees it. */
export async function gradCamInput(file: string, inputSize: number, preprocessing: Preprocessing): Promise<Float32Array> {
  const rgb = await decodeImageRgb(file, inputSize);
  const input = new Float32Array(rgb.length);
  preprocessInto(input, 0, rgb, preprocessing);
  return input;
}
