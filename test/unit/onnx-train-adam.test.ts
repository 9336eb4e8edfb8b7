// Refit's Adam on Float32Arrays (models/onnx-train/adam.ts) against tf.train.adam, same gradients.
import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Adam } from '../../models/onnx-train/adam';

describe('Adam on Float32Arrays', () => {
  it('takes the steps tf.train.adam takes', () => {
    let s = 12345;
    const rand = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
    const sizes = [7, 13];
    const weights = sizes.map((n) => Float32Array.from({ length: n }, rand));
    const initial = weights.map((w) => Float32Array.from(w));
    const vars = weights.map((w, i) => tf.variable(tf.tensor1d(w), true, `adam_w${i}`));
    const adam = new Adam(sizes, { learningRate: 0.01 });
    const opt = tf.train.adam(0.01);
    for (let step = 0; step < 6; step++) {
      const grads = sizes.map((n) => Float32Array.from({ length: n }, () => rand() * (step + 1)));
      adam.apply(weights, grads);
      opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor1d(grads[i]) })));
    }
    let worst = 0;
    vars.forEach((v, i) => {
      const t = v.dataSync();
      t.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - weights[i][k]))));
    });
    expect(adam.steps).toBe(6);
    expect(worst).toBeLessThan(1e-6);
    // And it really moved (6 steps of ~lr each).
    expect(Math.abs(weights[0][0] - initial[0][0])).toBeGreaterThan(0.01);
    tf.dispose([...vars]);
    opt.dispose();
  });
});
