// timm `inception_v4` state_dict names → Refit's layer names, derived from the builder's own tables
// (models/inception-v4.ts FEATURES / MODULES), so the map cannot drift from the network: every
// ConvNormAct is `features.N[.path].conv` (no bias) + `.bn` (BatchNorm2d ε 1e-3), the classifier is
// `last_linear`.
import type * as tf from '@tensorflow/tfjs';
import { FEATURES, MODULES, unitName } from '../inception-v4';
import type { WeightSetEntry } from '../weight-sets';
import type { WeightFile } from './tensors';
import { convertStateDict, type Converted, type LayerRule } from './torchvision';

const BN_EPSILON = 1e-3;

export function timmInceptionV4Rules(): LayerRule[] {
  const rules: LayerRule[] = [];
  const unit = (ours: string, timm: string) => rules.push({ kind: 'conv', ours: `${ours}_conv`, torch: `${timm}.conv` }, { kind: 'bn', ours: `${ours}_bn`, torch: `${timm}.bn`, epsilon: BN_EPSILON });
  for (const f of FEATURES) {
    if (typeof f.body !== 'string') {
      unit(f.name, `features.${f.index}`);
      continue;
    }
    for (const branch of MODULES[f.body]) {
      for (const u of [...branch.units, ...(branch.fork ?? [])]) if (u.op === 'conv') unit(unitName(f.name, u), `features.${f.index}.${u.path}`);
    }
  }
  rules.push({ kind: 'dense', ours: 'head_classifier', torch: 'last_linear' });
  return rules;
}

/** A timm inception_v4 state_dict onto `model` (Inception-v4 + 1000-class `head_classifier`); every tensor used, every shape checked. */
export function convertTimmInceptionV4(file: WeightFile, entry: WeightSetEntry, model: tf.LayersModel): Converted {
  return convertStateDict(file, model, {
    rules: timmInceptionV4Rules(),
    label: `timm inception_v4 (${entry.id})`,
    ignorable: (name) => name.endsWith('.num_batches_tracked'),
  });
}
