// One optimizer step (with its memory budget on the WebAssembly backend) and the loss it minimises.
import * as tf from '@tensorflow/tfjs';

export function oneHot(indices: number[], depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(indices, 'int32'), depth).toFloat() as tf.Tensor2D);
}

/** Class-weighted categorical cross-entropy. */
export function weightedLoss(probabilities: tf.Tensor2D, labels: tf.Tensor2D, weights: tf.Tensor1D): tf.Scalar {
  const perExample = tf.neg(tf.sum(tf.mul(labels, tf.log(tf.clipByValue(probabilities, 1e-7, 1))), 1));
  const w = tf.sum(tf.mul(labels, weights), 1);
  return tf.mean(tf.mul(perExample, w)) as tf.Scalar;
}

/**
 * The wasm heap is a 32-bit WebAssembly memory: 4 GiB, of which a training step may use about this.
 * Measured on ResNet-50/101, SE-ResNet-152, Xception and VGG-16 at their default sizes: a step needs
 * ~24 bytes per element of all layer outputs per image, 4 bytes per weight, and ~28 more bytes per
 * trainable weight (gradient, Adam's two moments, their updates, transposed copies in matmul gradients).
 */
const WASM_TRAIN_BUDGET_BYTES = 4.0e9;
const WASM_BYTES_PER_ACTIVATION = 24;
const WASM_BYTES_PER_TRAINABLE_WEIGHT = 28;

/**
 * Images per forward/backward pass. On wasm a batch whose activations would not fit the heap goes
 * through in slices (trainStep sums their gradients); a network that does not fit even one image at
 * a time is refused with a clear error instead of crashing the training process. `model` is the part
 * that trains with gradients (its layer outputs stay alive for the backward pass); `residentParams`
 * counts every weight in the heap, frozen trunk included.
 */
export function microBatchSize(model: tf.LayersModel, batchSize: number, backend = tf.getBackend(), residentParams = model.countParams(), name = model.name): number {
  if (backend !== 'wasm') return batchSize;
  let activations = 0;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const shape of shapes) activations += shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  }
  const trainable = model.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
  const fixed = residentParams * 4 + trainable * WASM_BYTES_PER_TRAINABLE_WEIGHT;
  const perImage = activations * WASM_BYTES_PER_ACTIVATION;
  const fits = Math.floor((WASM_TRAIN_BUDGET_BYTES - fixed) / perImage);
  if (fits < 1) {
    const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
    throw new Error(
      `training ${(trainable / 1e6).toFixed(0)}M weights of ${name.replace(/_classifier$/, '')} needs about ${gib(fixed + perImage)} GiB, ` +
        `more than the ${gib(WASM_TRAIN_BUDGET_BYTES)} GiB a training step can use in the WebAssembly backend's 4 GiB heap: ` +
        'use head mode, a smaller input size, fine-tune mode on a smaller backbone, or a machine with a GPU backend',
    );
  }
  return Math.min(batchSize, fits);
}

/**
 * One optimizer step on a batch; returns the batch's mean loss and its number of correct predictions.
 * With `microBatch` smaller than the batch, the batch goes through in slices whose gradients are
 * summed (each slice's loss weighted by its share) before one update: the same step in less memory.
 */
export async function trainStep(
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  forward: (x: tf.Tensor) => tf.Tensor2D,
  x: tf.Tensor,
  labels: tf.Tensor2D,
  weights: tf.Tensor1D,
  microBatch = Infinity,
): Promise<{ loss: number; hits: number }> {
  const n = x.shape[0];
  let lossSum = 0;
  let hitSum = 0;
  let summed: Record<string, tf.Tensor> | null = null;
  for (let start = 0; start < n; start += microBatch) {
    const size = Math.min(microBatch, n - start);
    const { grads, loss, hits } = tf.tidy(() => {
      const xs = size === n ? x : x.slice(start, size);
      const ys = size === n ? labels : labels.slice(start, size);
      let h: tf.Scalar | undefined;
      const result = tf.variableGrads(() => {
        const probs = forward(xs);
        // Counted inside: the gradient scope frees its intermediate tensors.
        h = tf.keep(tf.sum(tf.equal(tf.argMax(probs, 1), tf.argMax(ys, 1)).toFloat()) as tf.Scalar);
        return tf.mul(weightedLoss(probs, ys, weights), size / n) as tf.Scalar;
      }, variables);
      return { grads: result.grads, loss: result.value, hits: h! };
    });
    if (summed) {
      const previous: Record<string, tf.Tensor> = summed;
      summed = Object.fromEntries(Object.entries(grads).map(([name, g]) => [name, tf.add(previous[name], g)]));
      tf.dispose([...Object.values(previous), ...Object.values(grads)]);
    } else {
      summed = grads;
    }
    const [l, h] = await Promise.all([loss.data(), hits.data()]);
    tf.dispose([loss, hits]);
    lossSum += l[0];
    hitSum += h[0];
  }
  optimizer.applyGradients(summed as tf.NamedTensorMap);
  tf.dispose(Object.values(summed!));
  return { loss: lossSum, hits: hitSum };
}

