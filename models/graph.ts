// The node graph of a functional TF.js model, which tfjs keeps internal: the ONNX exporter and the
// trunk/top split both walk it in topological order.
import type * as tf from '@tensorflow/tfjs';

export interface TfNode {
  outboundLayer: tf.layers.Layer;
  inputTensors: tf.SymbolicTensor[];
  outputTensors: tf.SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}

interface ModelInternals {
  nodesByDepth?: Record<string, TfNode[]>;
}

/** The model's own nodes in topological order (inputs first). */
export function modelNodes(model: tf.LayersModel): TfNode[] {
  const internals = model as unknown as ModelInternals;
  if (!internals.nodesByDepth) throw new Error(`${model.name} is not a functional TF.js model`);
  const byDepth = internals.nodesByDepth;
  return Object.keys(byDepth)
    .map(Number)
    .sort((a, b) => b - a)
    .flatMap((d) => byDepth[String(d)]);
}
