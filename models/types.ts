import type * as tf from '@tensorflow/tfjs';

import type { Preprocessing } from '../main/api/models';
import type { BackboneSpec, WeightSetId } from './catalog';

export type { Preprocessing };

export interface BuildOptions {
  /** Square input side in pixels; defaults to the registry's inputSize. Must be ≥ minInputSize. */
  inputSize?: number;
  /** Seeds the random initial weights (the same seed, the same start); default: unseeded. */
  seed?: number;
}

/**
 * A backbone maps a preprocessed [batch, H, W, 3] image (channels-last) to its
 * global-average-pooled feature vector [batch, featureDim]. Heads are separate (models/heads.ts).
 * The facts come from the catalogue (models/catalog.ts); the registry adds building and weights.
 */
export interface BackboneInfo extends BackboneSpec {
  /** A new backbone with random initial weights (seeded per layer name when `seed` is given). */
  build(options?: BuildOptions): tf.LayersModel;
  /** A new backbone carrying pretrained weights `set` (one of `weights`). */
  loadWeights(set: WeightSetId, options?: { inputSize?: number }): Promise<tf.LayersModel>;
}
