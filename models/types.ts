import type * as tf from '@tensorflow/tfjs';

import type { Preprocessing } from '../main/api/models';
import type { BackboneSpec, WeightSetId } from './catalog';
import type { ArchitectureVariant, WeightSetEntry } from './weight-sets';

export type { Preprocessing };

export interface BuildOptions {
  /** Square input side in pixels; defaults to the registry's inputSize. Must be ≥ minInputSize. */
  inputSize?: number;
  /** Seeds the random initial weights (the same seed, the same start); default: unseeded. */
  seed?: number;
  /** The architecture variant (e.g. 'resnet-v1.5' for torchvision weights); default: the family's own. */
  variant?: ArchitectureVariant;
}

/**
 * A backbone maps a preprocessed [batch, H, W, 3] image (channels-last) to its
 * global-average-pooled feature vector [batch, featureDim]. Heads are separate (models/heads.ts).
 * The facts come from the catalogue (models/catalog.ts); the registry adds building and weights.
 */
export interface BackboneInfo extends BackboneSpec {
  /** A new backbone with random initial weights (seeded per layer name when `seed` is given). */
  build(options?: BuildOptions): tf.LayersModel;
  /**
   * A new backbone carrying pretrained weights `set`: 'imagenet' (the default set present on this
   * machine) or a set id of `weightSets`; bundled sets load from their package, others from the user's
   * weights cache (`refit weights import`). Throws saying how to get the weights when they are absent.
   */
  loadWeights(set: WeightSetId, options?: { inputSize?: number }): Promise<tf.LayersModel>;
  /** The catalogue entry `set` resolves to now (its preprocessing, variant, publisher); throws like loadWeights when absent. */
  weightSet(set: WeightSetId): WeightSetEntry;
}
