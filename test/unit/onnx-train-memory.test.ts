// The training-memory estimate (models/onnx-train/memory.ts): its parts, how it scales, the refusal
// message with numbers, and bad input named. Checked against measured peak RSS by npm run bench:train-memory.
import { describe, it, expect } from 'vitest';
import { BYTES_PER_OUTPUT_FLOAT, estimateTrainMemory, memoryShortfall, RUNTIME_BYTES, trainMemoryInput, type TrainMemoryInput } from '../../models/onnx-train/memory';

const GiB = 2 ** 30;
const vggLike: TrainMemoryInput = {
  batchSize: 16,
  activationFloatsPerImage: 15e6,
  workspaceFloatsPerImage: 35e6,
  inputFloatsPerImage: 224 * 224 * 3,
  trainableFloats: 138e6,
  frozenFloats: 0,
  modelFloats: 138e6,
};

describe('estimateTrainMemory', () => {
  it('adds runtime, weights with gradients and Adam moments, activations per image and the input batch', () => {
    const e = estimateTrainMemory(vggLike);
    expect(e.parts.runtime).toBe(RUNTIME_BYTES);
    // TF.js copy + trainer copy, gradient, two moments.
    expect(e.parts.weights).toBe(4 * (138e6 + 4 * 138e6));
    expect(e.parts.activations).toBeCloseTo((BYTES_PER_OUTPUT_FLOAT * 15e6 + 4 * 35e6) * 16, 0);
    expect(e.parts.input).toBe(3 * 4 * 224 * 224 * 3 * 16);
    expect(e.bytes).toBe(e.parts.runtime + e.parts.weights + e.parts.activations + e.parts.input);
  });

  it('grows linearly with the batch, and frozen weights cost less than trainable ones', () => {
    const one = estimateTrainMemory({ ...vggLike, batchSize: 1 });
    const two = estimateTrainMemory({ ...vggLike, batchSize: 2 });
    const four = estimateTrainMemory({ ...vggLike, batchSize: 4 });
    expect(four.bytes - two.bytes).toBeCloseTo(2 * (two.bytes - one.bytes), 0);
    const frozen = estimateTrainMemory({ ...vggLike, trainableFloats: 1e6, frozenFloats: 137e6 });
    expect(frozen.parts.weights).toBeLessThan(estimateTrainMemory(vggLike).parts.weights);
  });

  it('names the bad field', () => {
    expect(() => estimateTrainMemory({ ...vggLike, batchSize: 0 })).toThrow(/batchSize must be a positive integer, got 0/);
    expect(() => estimateTrainMemory({ ...vggLike, activationFloatsPerImage: Number.NaN })).toThrow(/activationFloatsPerImage must be a number ≥ 0, got NaN/);
    expect(() => estimateTrainMemory({ ...vggLike, trainableFloats: -1 })).toThrow(/trainableFloats/);
  });
});

describe('trainMemoryInput', () => {
  it('reads the counts off a training graph spec', () => {
    const input = trainMemoryInput({ batchSize: 4, inputShape: [4, 8, 8, 3], activationFloats: 4000, workspaceFloats: 800, frozenFloats: 50, weights: [{ shape: [3, 3, 2, 2] }, { shape: [10] }] }, 1000);
    expect(input).toEqual({ batchSize: 4, activationFloatsPerImage: 1000, workspaceFloatsPerImage: 200, inputFloatsPerImage: 192, trainableFloats: 46, frozenFloats: 50, modelFloats: 1000 });
  });
});

describe('memoryShortfall', () => {
  it('is null when the run fits', () => {
    expect(memoryShortfall('VGG-16', vggLike, 64 * GiB)).toBeNull();
  });

  it('refuses with the numbers and the batch that would fit', () => {
    const need = estimateTrainMemory(vggLike).bytes;
    const msg = memoryShortfall('VGG-16', vggLike, need - 1);
    expect(msg).toMatch(/^training VGG-16 with batches of 16 needs about \d+\.\d GiB \(weights and optimizer \d+\.\d, activations \d+\.\d, runtime 0\.4\), but this machine has \d+\.\d GiB; a batch of 15 would fit$/);
  });

  it('says when even one image does not fit', () => {
    const msg = memoryShortfall('VGG-16', vggLike, 1 * GiB);
    expect(msg).toMatch(/even one image does not fit \(the weights alone need \d+\.\d GiB\)$/);
  });
});
