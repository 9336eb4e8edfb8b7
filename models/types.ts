import type * as tf from '@tensorflow/tfjs';

/** How raw RGB pixels in [0, 255] become the backbone's input. */
export type Preprocessing =
  /** Keras "caffe": RGB→BGR, subtract the BGR ImageNet mean, no scaling. */
  | { mode: 'caffe'; mean: [number, number, number] }
  /** torchvision: x/255, then (x - mean) / std per RGB channel. */
  | { mode: 'torch'; mean: [number, number, number]; std: [number, number, number] }
  /** Keras "tf" (Xception, Inception): x/127.5 - 1. */
  | { mode: 'tf' };

export interface BuildOptions {
  /** Square input side in pixels; defaults to the registry's inputSize. Must be ≥ minInputSize. */
  inputSize?: number;
  /** Seeds the random initial weights (the same seed, the same start); default: unseeded. */
  seed?: number;
}

/**
 * A backbone maps a preprocessed [batch, H, W, 3] image (channels-last) to its
 * global-average-pooled feature vector [batch, featureDim]. Heads are separate (models/heads.ts).
 *
 * Layer-name convention: every layer's name starts with the name of the stage it belongs to
 * followed by '_' (e.g. `stem_conv`, `stage3_block2_conv1`), so that freezing by stage and
 * weight mapping work by name. `stages` lists the stage names from input to output.
 */
export interface BackboneInfo {
  id: string;
  name: string;
  description: string;
  family: 'resnet' | 'seresnet' | 'xception' | 'googlenet' | 'vgg';
  inputSize: number;
  minInputSize: number;
  preprocessing: Preprocessing;
  featureDim: number;
  /** Floating-point operations (2 × multiply-adds) for one image at the default input size, backbone + 1000-class head. */
  flops: number;
  /** Parameters with a 1000-class linear head at 224², as published. */
  params: number;
  /** Pretrained weights Refit can load for this backbone ('imagenet'), besides random init. */
  weights: readonly string[];
  stages: readonly string[];
  build(options?: BuildOptions): tf.LayersModel;
}
