// Turning RGB pixels in [0, 255] into what a backbone was trained on.
import * as tf from '@tensorflow/tfjs';
import type { Preprocessing } from './types';

/** BGR ImageNet mean used by Keras "caffe" preprocessing (ResNet50 weights). */
export const CAFFE_BGR_MEAN: [number, number, number] = [103.939, 116.779, 123.68];
export const TORCH_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const TORCH_STD: [number, number, number] = [0.229, 0.224, 0.225];

export const PREPROCESSING = {
  caffe: { mode: 'caffe', mean: CAFFE_BGR_MEAN },
  torch: { mode: 'torch', mean: TORCH_MEAN, std: TORCH_STD },
  tf: { mode: 'tf' },
} as const satisfies Record<Preprocessing['mode'], Preprocessing>;

/** `pixels`: [batch, H, W, 3] RGB in [0, 255] (any dtype). Returns float32. Does not dispose `pixels`. */
export function preprocess(pixels: tf.Tensor4D, p: Preprocessing): tf.Tensor4D {
  if (pixels.rank !== 4 || pixels.shape[3] !== 3) throw new Error(`preprocess: expected [batch, H, W, 3] RGB pixels, got [${pixels.shape.join(', ')}]`);
  return tf.tidy(() => {
    const x = pixels.toFloat();
    switch (p.mode) {
      case 'caffe':
        return tf.sub(tf.reverse(x, -1), tf.tensor1d(p.mean)) as tf.Tensor4D;
      case 'torch':
        return tf.div(tf.sub(tf.div(x, 255), tf.tensor1d(p.mean)), tf.tensor1d(p.std)) as tf.Tensor4D;
      case 'tf':
        return tf.sub(tf.div(x, 127.5), 1) as tf.Tensor4D;
      default:
        throw new Error(`preprocess: unknown mode "${(p as { mode: string }).mode}"`);
    }
  });
}
