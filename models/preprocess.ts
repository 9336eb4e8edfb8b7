// Turning RGB pixels in [0, 255] into what a backbone was trained on.
import * as tf from '@tensorflow/tfjs';
import type { Preprocessing } from './types';

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
