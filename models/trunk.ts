// Splitting a classifier where its frozen part ends. In fine-tune mode only the last stage(s) and the
// head train; everything before them is a fixed function of the image, so it can run forward only
// (through onnxruntime, several times faster than TF.js on CPU) while the rest trains in TF.js.
//
//   trunk: the classifier's input → the one tensor the trainable part takes from the frozen part
//   top:   that tensor → the classifier's output, re-applying the classifier's own layers
// Both share layers (and therefore weights) with the classifier, so training the top trains the
// classifier and saving the classifier saves the result.
import * as tf from '@tensorflow/tfjs';
import type { BackboneInfo } from './types';
import { modelNodes } from './graph';
import { stageOf } from './freeze';

export interface StageSplit {
  trunk: tf.LayersModel;
  top: tf.LayersModel;
}

/**
 * Splits `classifier` (a backbone of `info` with a head) in front of `trainableStages`. Throws when
 * no split helps (the first stage trains, so the trunk would be empty) or when the trainable part
 * takes more than one tensor from the frozen part.
 */
export function splitAtStages(classifier: tf.LayersModel, info: Pick<BackboneInfo, 'id' | 'stages'>, trainableStages: readonly string[]): StageSplit {
  const trainable = new Set(trainableStages);
  const nodes = modelNodes(classifier);
  // A node is in the top when its layer belongs to a trainable stage or it depends on one that does.
  const topTensors = new Set<number>();
  const topNodes = nodes.filter((node) => {
    const layer = node.outboundLayer;
    if (layer.getClassName() === 'InputLayer') return false;
    const stage = stageOf(layer.name, info.stages);
    const isTop = (stage !== undefined && trainable.has(stage)) || node.inputTensors.some((t) => topTensors.has(t.id));
    if (isTop) node.outputTensors.forEach((t) => topTensors.add(t.id));
    return isTop;
  });
  const where = `${classifier.name} in front of ${[...trainable].join(', ') || 'no stage'}`;
  if (!classifier.outputs.every((o) => topTensors.has(o.id))) throw new Error(`cannot split ${where}: the output does not depend on a trainable stage`);
  const boundary = new Map<number, tf.SymbolicTensor>();
  for (const node of topNodes) for (const t of node.inputTensors) if (!topTensors.has(t.id)) boundary.set(t.id, t);
  if (boundary.size !== 1) throw new Error(`cannot split ${where}: the trainable part takes ${boundary.size} tensors from the frozen part, not one`);
  const [cut] = boundary.values();
  if (classifier.inputs.some((i) => i.id === cut.id)) throw new Error(`cannot split ${where}: nothing before it is frozen`);

  const trunk = tf.model({ inputs: classifier.inputs, outputs: cut, name: `${classifier.name}_trunk` });
  const topInput = tf.input({ shape: cut.shape.slice(1) as number[], name: `${classifier.name}_top_input` });
  const values = new Map<number, tf.SymbolicTensor>([[cut.id, topInput]]);
  for (const node of topNodes) {
    const inputs = node.inputTensors.map((t) => values.get(t.id)!);
    const out = node.outboundLayer.apply(inputs.length === 1 ? inputs[0] : inputs, node.callArgs ?? {});
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((t, i) => values.set(t.id, outs[i] as tf.SymbolicTensor));
  }
  const top = tf.model({ inputs: topInput, outputs: classifier.outputs.map((o) => values.get(o.id)!), name: `${classifier.name}_top` });
  return { trunk, top };
}
