// Training-time augmentation on a batch of raw RGB pixels (0..255): random resized crop, horizontal
// flip and mild colour jitter, all as batched tensor ops. Each image has its own random source, so an
// image's augmented views are reproducible from (seed, image hash, view).
import * as tf from '@tensorflow/tfjs';

export interface AugmentOptions {
  /** Crop area as a fraction of the image, [min, max]. Milder than ImageNet's 0.08 for small datasets. */
  scale?: [number, number];
  /** Crop aspect ratio range. */
  ratio?: [number, number];
  /** Max relative change of brightness, contrast and saturation. */
  jitter?: number;
}

function uniform(random: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * random();
}

export function augmentBatch(pixels: tf.Tensor4D, randoms: readonly (() => number)[], options: AugmentOptions = {}): tf.Tensor4D {
  const { scale = [0.45, 1], ratio = [3 / 4, 4 / 3], jitter = 0.2 } = options;
  const [n, height, width] = pixels.shape;
  if (randoms.length !== n) throw new Error(`augmentBatch: ${n} images but ${randoms.length} random sources`);
  const boxes: number[][] = [];
  const factors: number[][] = [];
  for (const random of randoms) {
    const area = uniform(random, scale[0], scale[1]);
    const aspect = Math.exp(uniform(random, Math.log(ratio[0]), Math.log(ratio[1])));
    const h = Math.min(1, Math.sqrt(area / aspect));
    const w = Math.min(1, Math.sqrt(area * aspect));
    const y0 = random() * (1 - h);
    const x0 = random() * (1 - w);
    // A box whose x2 < x1 makes cropAndResize mirror the crop: that is the horizontal flip.
    boxes.push(random() < 0.5 ? [y0, x0, y0 + h, x0 + w] : [y0, x0 + w, y0 + h, x0]);
    factors.push([uniform(random, 1 - jitter, 1 + jitter), uniform(random, 1 - jitter, 1 + jitter), uniform(random, 1 - jitter, 1 + jitter)]);
  }
  return tf.tidy(() => {
    const cropped = tf.image.cropAndResize(
      pixels,
      tf.tensor2d(boxes),
      tf.range(0, n, 1, 'int32') as tf.Tensor1D,
      [height, width],
      'bilinear',
    );
    const f = tf.tensor2d(factors).reshape([n, 1, 1, 3]);
    const [brightness, contrast, saturation] = tf.split(f, 3, 3);
    const gray = cropped.mean(3, true);
    let x = gray.add(cropped.sub(gray).mul(saturation));
    const mean = x.mean([1, 2, 3], true);
    x = mean.add(x.sub(mean).mul(contrast)).mul(brightness);
    return x.clipByValue(0, 255) as tf.Tensor4D;
  });
}
