// Refit's Adam in WebAssembly (models/onnx-train/adam.ts, adam.wat) against tf.train.adam, same
// gradients; and the checked-in binary (adam-wasm.ts) against a fresh compile of adam.wat.
import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Adam } from '../../models/onnx-train/adam';
import { ADAM_WASM_BASE64 } from '../../models/onnx-train/adam-wasm';
// @ts-expect-error a plain .mjs script without types
import { compileAdamWat } from '../../bin/adam-wasm.mjs';

describe('Adam in WebAssembly', () => {
  it('takes the steps tf.train.adam takes (weights not a multiple of 4, one larger than the gradient scratch)', () => {
    let s = 12345;
    const rand = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
    const sizes = [7, 13, 300_001];
    const adam = new Adam(sizes, { learningRate: 0.01 });
    const { weights } = adam;
    weights.forEach((w) => w.set(Float32Array.from({ length: w.length }, rand)));
    const initial = weights.map((w) => Float32Array.from(w));
    const vars = weights.map((w, i) => tf.variable(tf.tensor1d(w), true, `adam_w${i}`));
    const opt = tf.train.adam(0.01);
    for (let step = 0; step < 6; step++) {
      const grads = sizes.map((n) => Float32Array.from({ length: n }, () => rand() * (step + 1)));
      adam.apply(grads);
      opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor1d(grads[i]) })));
    }
    let worst = 0;
    vars.forEach((v, i) => {
      const t = v.dataSync();
      t.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - weights[i][k]))));
    });
    expect(adam.steps).toBe(6);
    expect(worst).toBeLessThan(1e-6);
    // And it really moved (6 steps of ~lr each), to the last value of the largest weight.
    expect(Math.abs(weights[0][0] - initial[0][0])).toBeGreaterThan(0.01);
    let tailMoved = 0;
    for (let i = 299_000; i <= 300_000; i++) tailMoved = Math.max(tailMoved, Math.abs(weights[2][i] - initial[2][i]));
    expect(tailMoved).toBeGreaterThan(0.01);
    tf.dispose([...vars]);
    opt.dispose();
  });

  it('runs the binary adam.wat compiles to', async () => {
    const fresh: Buffer = await compileAdamWat();
    expect(fresh.toString('base64'), 'adam-wasm.ts is stale: npm run gen:adam-wasm').toBe(ADAM_WASM_BASE64);
  });

  it('names the size when the weights do not fit in WebAssembly memory', () => {
    expect(() => new Adam([2 ** 29, 2 ** 29], { learningRate: 0.01 })).toThrow(/adam: cannot allocate 12289 MiB for 1073741824 weights/);
  });
});
