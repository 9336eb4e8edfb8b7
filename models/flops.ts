// Counting a built model's floating-point operations and parameters by walking its layers.
//
// FLOPs = 2 × multiply-accumulates of Conv2D, DepthwiseConv2D, SeparableConv2D and Dense, for
// one image. Bias adds, BatchNorm, activations, pooling, padding, merges and SE multiplies are
// not counted (they are < 1% for these networks and conventions differ between papers).
import * as tf from '@tensorflow/tfjs';

type Shape = (number | null)[];

interface LayerCall {
  layer: tf.layers.Layer;
  inputShape: Shape;
  outputShape: Shape;
}

const product = (dims: (number | null)[]): number =>
  dims.reduce<number>((acc, d) => {
    if (d == null) throw new Error('cannot count FLOPs of a model with unknown (null) spatial dimensions');
    return acc * d;
  }, 1);

function first(shape: Shape | Shape[]): Shape {
  return Array.isArray(shape[0]) ? (shape as Shape[])[0] : (shape as Shape);
}

/**
 * Every call of every layer inside `model` (recursing into nested models). A layer shared with
 * another model (e.g. a head's layers, which belong to both the head and the classifier) is
 * counted only for the calls that are part of this model, as tfjs' own summary does.
 */
function layerCalls(model: tf.LayersModel): LayerCall[] {
  // A Sequential keeps no node bookkeeping of its own until compiled; view it as a functional model.
  if (model instanceof tf.Sequential) model = tf.model({ inputs: model.inputs, outputs: model.outputs });
  // `containerNodes` (keys `${layer.name}_ib-${i}`) is how tfjs itself tells a model's own nodes apart.
  const own = (model as unknown as { containerNodes?: Set<string> }).containerNodes;
  const calls: LayerCall[] = [];
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) {
      calls.push(...layerCalls(layer));
      continue;
    }
    layer.inboundNodes.forEach((node, i) => {
      if (own && !own.has(`${layer.name}_ib-${i}`)) return;
      calls.push({ layer, inputShape: first(node.inputShapes), outputShape: first(node.outputShapes) });
    });
  }
  return calls;
}

/** Multiply-accumulates of one layer call for a batch of one. */
function layerMacs({ layer, inputShape, outputShape }: LayerCall): number {
  const cls = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const inChannels = inputShape[inputShape.length - 1] as number;
  const outPositions = product(outputShape.slice(1, -1)); // H × W of the output
  const outChannels = outputShape[outputShape.length - 1] as number;
  const [kh, kw] = (config.kernelSize as number[] | undefined) ?? [1, 1];
  switch (cls) {
    case 'Conv2D':
      return outPositions * outChannels * kh * kw * inChannels;
    case 'DepthwiseConv2D':
      return outPositions * outChannels * kh * kw;
    case 'SeparableConv2D': {
      const multiplier = (config.depthMultiplier as number | undefined) ?? 1;
      const depthwise = outPositions * inChannels * multiplier * kh * kw;
      const pointwise = outPositions * inChannels * multiplier * outChannels;
      return depthwise + pointwise;
    }
    case 'Dense':
      // Dense applies to the last axis; any extra leading axes repeat it.
      return product(inputShape.slice(1, -1)) * inChannels * outChannels;
    default:
      return 0;
  }
}

/** FLOPs (2 × MACs) of one forward pass of one image through `model`. */
export function countFlops(model: tf.LayersModel): number {
  return 2 * layerCalls(model).reduce((sum, call) => sum + layerMacs(call), 0);
}

/** FLOPs per layer name, largest first (for reports and sanity checks). */
export function flopsByLayer(model: tf.LayersModel): { name: string; className: string; flops: number }[] {
  return layerCalls(model)
    .map((call) => ({ name: call.layer.name, className: call.layer.getClassName(), flops: 2 * layerMacs(call) }))
    .filter((r) => r.flops > 0)
    .sort((a, b) => b.flops - a.flops);
}

const BN_STATISTIC = /\/moving_(mean|variance)$/;

export interface ParamCountOptions {
  /**
   * Count BatchNorm moving mean/variance too. Keras' "Total params" includes them;
   * torchvision/timm count only learnable parameters (the statistics are buffers there).
   */
  bnStatistics?: boolean;
}

/** Number of scalars in the model's weights (learnable parameters only, unless `bnStatistics`). */
export function countParams(model: tf.LayersModel, { bnStatistics = false }: ParamCountOptions = {}): number {
  let total = 0;
  for (const w of model.weights) {
    if (!bnStatistics && BN_STATISTIC.test(w.originalName)) continue;
    total += product(w.shape);
  }
  return total;
}
