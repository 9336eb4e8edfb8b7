// The SENet reference's stem max-pool (MaxPool2d(3, stride=2, ceil_mode=True), no padding) as Refit builds
// it for the 'senet' variant — one zero row/column at the bottom/right, then a 'valid' pool — checked
// against that pooling computed directly, at an even and an odd stem output (64² → 32², 66² → 33²).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { getBackbone } from '../../models/registry';

/** PyTorch's ceil-mode max pool, 3×3 stride 2 without padding, on one [h, w, c] map (windows clipped at the edge). */
function ceilModePool(x: Float32Array, h: number, w: number, c: number) {
  const out = (n: number) => Math.ceil((n - 3) / 2) + 1;
  const [oh, ow] = [out(h), out(w)];
  const y = new Float32Array(oh * ow * c);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++)
      for (let k = 0; k < c; k++) {
        let m = -Infinity;
        for (let di = 0; di < 3; di++)
          for (let dj = 0; dj < 3; dj++) {
            const [r, s] = [2 * i + di, 2 * j + dj];
            if (r < h && s < w) m = Math.max(m, x[(r * w + s) * c + k]);
          }
        y[(i * ow + j) * c + k] = m;
      }
  return { y, oh, ow };
}

describe("the 'senet' variant's stem pool", () => {
  for (const size of [64, 66]) {
    it(`equals PyTorch's ceil-mode pool at input ${size}`, () => {
      const model = getBackbone('seresnet18').build({ inputSize: size, variant: 'senet', seed: 1 });
      const probe = tf.model({ inputs: model.inputs, outputs: [model.getLayer('stem_relu').output, model.getLayer('stem_pool').output] as tf.SymbolicTensor[] });
      const [relu, pool] = probe.predict(tf.randomUniform([1, size, size, 3], -2, 2, 'float32', 7)) as tf.Tensor[];
      const [, h, w, c] = relu.shape;
      const { y, oh, ow } = ceilModePool(relu.dataSync() as Float32Array, h!, w!, c!);
      expect(pool.shape).toEqual([1, oh, ow, c]);
      expect(h! % 2).toBe(size === 64 ? 0 : 1);
      expect(Array.from(pool.dataSync())).toEqual(Array.from(y));
      // The zero-padded pool of the other variants: the same size from an even side (on a grid one pixel
      // apart), one more row and column from an odd side (as torch's padding=1 without ceil mode).
      const padded = getBackbone('seresnet18').build({ inputSize: size, variant: 'resnet-v1', seed: 1 });
      const extra = h! % 2;
      expect(padded.getLayer('stem_pool').outputShape).toEqual([null, oh + extra, ow + extra, c]);
      tf.dispose([relu, pool]);
      model.dispose();
      padded.dispose();
    });
  }

  it('puts a ReLU at the end of a basic unit\'s branch only in the senet variant', () => {
    const names = (variant: 'senet' | 'resnet-v1') => getBackbone('seresnet18').build({ inputSize: 32, variant }).layers.map((l) => l.name);
    expect(names('senet')).toContain('stage1_block1_relu2');
    expect(names('resnet-v1')).not.toContain('stage1_block1_relu2');
    expect(() => getBackbone('resnet18').build({ inputSize: 32, variant: 'senet' })).toThrow('ResNet-18 has no architecture variant "senet" (available: resnet-v1, resnet-v1.5)');
  });
});
