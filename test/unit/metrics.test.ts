// Validation metrics: the confusion matrix, and the images behind every cell (diagonal ones too).
import { describe, expect, it } from 'vitest';
import { computeMetrics } from '../../main/engine/metrics';

describe('computeMetrics', () => {
  it('lists the misclassified images (surest first) and the correct ones (least sure first)', () => {
    const m = computeMetrics(
      [
        { file: 'a1', trueIndex: 0, probabilities: [0.9, 0.1] },
        { file: 'a2', trueIndex: 0, probabilities: [0.6, 0.4] },
        { file: 'a3', trueIndex: 0, probabilities: [0.3, 0.7] },
        { file: 'b1', trueIndex: 1, probabilities: [0.2, 0.8] },
        { file: 'b2', trueIndex: 1, probabilities: [0.55, 0.45] },
      ],
      ['cat', 'dog'],
      3,
    );
    expect(m.confusion).toEqual([
      [2, 1],
      [1, 1],
    ]);
    expect(m.misclassified.map((x) => [x.file, x.predictedLabel])).toEqual([
      ['a3', 'dog'],
      ['b2', 'cat'],
    ]);
    expect(m.correct!.map((x) => [x.file, x.trueLabel, x.predictedLabel, x.confidence])).toEqual([
      ['a2', 'cat', 'cat', 0.6],
      ['b1', 'dog', 'dog', 0.8],
      ['a1', 'cat', 'cat', 0.9],
    ]);
    // Every cell's count is the number of images it can show.
    for (const [t, label] of ['cat', 'dog'].entries()) {
      expect(m.correct!.filter((x) => x.trueLabel === label)).toHaveLength(m.confusion[t][t]);
    }
    expect(m.valAccuracy).toBeCloseTo(3 / 5);
  });
});
