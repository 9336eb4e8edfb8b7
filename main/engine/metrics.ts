// Validation metrics for a set of predictions: accuracy, loss, confusion matrix, per-class
// precision/recall/F1 and the misclassified images.
import type { ClassMetrics, Misclassified, RunMetrics } from '../api/training';

/** One validation image: its true class and the model's probabilities for it. */
export interface ValPrediction {
  file: string;
  trueIndex: number;
  probabilities: Float32Array | number[];
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function computeMetrics(predictions: readonly ValPrediction[], labels: readonly string[], bestEpoch: number): RunMetrics {
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const misclassified: Misclassified[] = [];
  const right: Misclassified[] = [];
  let loss = 0;
  let correct = 0;
  for (const p of predictions) {
    const predicted = argmax(p.probabilities);
    confusion[p.trueIndex][predicted]++;
    loss += -Math.log(Math.max(p.probabilities[p.trueIndex], 1e-7));
    if (predicted === p.trueIndex) {
      correct++;
      right.push({ file: p.file, trueLabel: labels[p.trueIndex], predictedLabel: labels[predicted], confidence: p.probabilities[predicted] });
    } else
      misclassified.push({
        file: p.file,
        trueLabel: labels[p.trueIndex],
        predictedLabel: labels[predicted],
        confidence: p.probabilities[predicted],
      });
  }
  misclassified.sort((a, b) => b.confidence - a.confidence);
  right.sort((a, b) => a.confidence - b.confidence);
  const perClass: ClassMetrics[] = labels.map((name, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predictedAs ? tp / predictedAs : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
  const n = predictions.length;
  return {
    valAccuracy: n ? correct / n : 0,
    valLoss: n ? loss / n : 0,
    bestEpoch,
    labels: [...labels],
    confusion,
    perClass,
    misclassified,
    correct: right,
  };
}
