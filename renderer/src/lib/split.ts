// How a run split each class: images it trained on and images it held back to check the model
// (validation). The run records the held-back count per class (its per-class metrics' support) and
// the totals; the per-class training count is the project's count minus the held-back one, which is
// only true while the project still has exactly the run's images — otherwise there is no per-class
// answer (null) rather than a wrong one.
import type { DatasetView, RunRecord } from '../types';

export interface ClassSplit {
  train: number;
  val: number;
}

export function splitByClass(record: RunRecord, dataset: DatasetView | null): Map<string, ClassSplit> | null {
  const perClass = record.metrics?.perClass;
  if (!perClass || !dataset) return null;
  const counts = new Map(dataset.classes.map((c) => [c.name, c.images]));
  const split = new Map<string, ClassSplit>();
  let train = 0;
  for (const c of perClass) {
    const total = counts.get(c.name);
    if (total === undefined || total < c.support) return null;
    split.set(c.name, { train: total - c.support, val: c.support });
    train += total - c.support;
  }
  const val = perClass.reduce((sum, c) => sum + c.support, 0);
  return train === record.trainImages && val === record.valImages ? split : null;
}
