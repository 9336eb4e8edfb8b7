import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { trainStep, microBatchSize } from '../../main/engine/training/step';
import { getBackbone } from '../../models/registry';
import { buildHead, attachHead, disposeAll } from '../../models/heads';

function smallNet(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const y = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y });
}

describe('trainStep', () => {
  it('a batch sent through in slices updates the weights exactly as the whole batch does', async () => {
    const x = tf.randomUniform([6, 12, 12, 3], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3).toFloat() as tf.Tensor2D;
    const weights = tf.tensor1d([1, 2, 0.5]);
    const after: Float32Array[][] = [];
    const losses: number[] = [];
    for (const micro of [Infinity, 2, 4]) {
      const model = smallNet(11);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const optimizer = tf.train.sgd(0.5);
      const { loss, hits } = await trainStep(optimizer, variables, (xs) => model.apply(xs) as tf.Tensor2D, x, y, weights, micro);
      expect(hits).toBeGreaterThanOrEqual(0);
      expect(hits).toBeLessThanOrEqual(6);
      losses.push(loss);
      after.push(model.getWeights().map((w) => w.dataSync() as Float32Array));
    }
    for (const other of [after[1], after[2]]) {
      other.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(after[0][i][j], 5)));
    }
    expect(losses[1]).toBeCloseTo(losses[0], 5);
    expect(losses[2]).toBeCloseTo(losses[0], 5);
    // The step really changed something.
    expect(smallNet(11).getWeights()[0].dataSync()[0]).not.toBeCloseTo(after[0][0][0], 6);
  });

  it('sizes slices to the wasm heap and refuses a network that cannot train there, saying why', () => {
    const resnet18 = getBackbone('resnet18');
    const small = attachHead(resnet18.build({ inputSize: 224 }), buildHead(512, 5));
    const fits = microBatchSize(small, 64, 'wasm');
    expect(fits).toBeGreaterThan(1);
    expect(fits).toBeLessThan(64);
    expect(microBatchSize(small, 64, 'tensorflow')).toBe(64);
    disposeAll(small);

    const vgg = getBackbone('vgg16');
    const big = attachHead(vgg.build({ inputSize: 224 }), buildHead(4096, 5));
    expect(() => microBatchSize(big, 8, 'wasm')).toThrow(/training 134M weights of vgg16 needs about 4\.\d GiB, more than the 3\.7 GiB .* use head mode/);
    disposeAll(big);
  });
});
