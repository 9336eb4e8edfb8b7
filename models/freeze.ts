// Freezing a backbone by stage. Layer names start with `${stage}_` (models/types.ts), so a layer's
// stage is the longest stage name that prefixes it. Head layers (`head_*`) always stay trainable.
//
// tfjs reads `trainable` when a model is compiled: freeze before compile, or compile again.
import type * as tf from '@tensorflow/tfjs';
import type { BackboneInfo } from './types';
import { HEAD_PREFIX } from './heads';

export interface FreezeOptions {
  /** Backbone stages that stay trainable; [] (the default) freezes the whole backbone. */
  trainableStages?: readonly string[];
}

const INFERENCE_WHEN_FROZEN = Symbol('refit.bnInferenceWhenFrozen');

/**
 * tfjs runs BatchNormalization in training mode during fit() even when the layer is frozen: it
 * normalises with batch statistics and keeps updating the moving mean/variance, which wrecks
 * pretrained features on small fine-tuning batches. Keras (TF2) runs a frozen BN in inference
 * mode; this gives the layer that behaviour. It reads `trainable` at call time, so unfreezing
 * restores normal training. Nothing is serialised: a reloaded model needs freezeBackbone again.
 */
function inferenceWhenFrozen(layer: tf.layers.Layer): void {
  const patched = layer as tf.layers.Layer & { [INFERENCE_WHEN_FROZEN]?: true };
  if (layer.getClassName() !== 'BatchNormalization' || patched[INFERENCE_WHEN_FROZEN]) return;
  const call = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => call(inputs, layer.trainable ? kwargs : { ...kwargs, training: false });
  patched[INFERENCE_WHEN_FROZEN] = true;
}

/**
 * Layers whose weights are fixed by construction (VGG's adaptive average pool as fixed linear maps)
 * never train, whatever their stage's setting.
 */
export function isFixedLayer(layer: tf.layers.Layer): boolean {
  return /_avgpool_[wh]$/.test(layer.name);
}

/** The stage a layer belongs to, or undefined (e.g. the input or `features_pool`, which have no weights). */
export function stageOf(layerName: string, stages: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const stage of stages) {
    if (layerName.startsWith(`${stage}_`) && (!best || stage.length > best.length)) best = stage;
  }
  return best;
}

function checkStages(requested: readonly string[], info: Pick<BackboneInfo, 'id' | 'stages'>): void {
  const unknown = requested.filter((s) => !info.stages.includes(s));
  if (unknown.length > 0) {
    throw new Error(
      `${info.id} has no stage${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')}; ` +
        `valid stages are ${info.stages.join(', ')}`,
    );
  }
}

/**
 * Makes exactly the layers of `trainableStages` (and any head) trainable in `model`, which is a
 * backbone or a classifier built on one. Throws on unknown stage names, and on a layer with
 * weights that belongs to no stage (a naming bug that would silently leave it trainable).
 */
export function freezeBackbone(
  model: tf.LayersModel,
  info: Pick<BackboneInfo, 'id' | 'stages'>,
  { trainableStages = [] }: FreezeOptions = {},
): void {
  checkStages(trainableStages, info);
  const keep = new Set(trainableStages);
  for (const layer of model.layers) {
    if (layer.name.startsWith(HEAD_PREFIX)) {
      layer.trainable = true;
      continue;
    }
    const stage = stageOf(layer.name, info.stages);
    if (stage === undefined) {
      if (layer.weights.length > 0) throw new Error(`layer ${layer.name} of ${info.id} has weights but belongs to no stage (${info.stages.join(', ')})`);
      continue;
    }
    layer.trainable = keep.has(stage) && !isFixedLayer(layer);
    inferenceWhenFrozen(layer);
  }
}

/** The last `n` stages (closest to the output): the usual "fine-tune the top of the network" choice. */
export function lastStages(info: Pick<BackboneInfo, 'id' | 'stages'>, n: number): string[] {
  if (!Number.isInteger(n) || n < 0 || n > info.stages.length) {
    throw new Error(`${info.id} has ${info.stages.length} stages; cannot pick the last ${n}`);
  }
  return n === 0 ? [] : info.stages.slice(-n);
}

/**
 * The network phase's fine-tune recipe, the standard one for small data: the last stage and the head
 * train, every batch norm stays frozen (inference mode, fixed statistics). Returns the trainable stages.
 */
export function freezeForFineTune(classifier: tf.LayersModel, info: Pick<BackboneInfo, 'id' | 'stages'>): string[] {
  const stages = lastStages(info, 1);
  freezeBackbone(classifier, info, { trainableStages: stages });
  classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
  return stages;
}

/** Makes every layer trainable again (full fine-tuning). */
export function unfreezeAll(model: tf.LayersModel): void {
  for (const layer of model.layers) layer.trainable = !isFixedLayer(layer);
}
