// Keras Applications layer names → Refit's, and the conversion of a read Keras .h5 (models/weights/h5.ts)
// onto our layers. Keras Xception (keras/src/applications/xception.py) names its layers block1_conv1,
// block1_conv1_bn, block2_sepconv1, …, block14_sepconv2_bn, predictions — except the four 1×1
// shortcut convs and their batch norms, which it leaves unnamed (conv2d, batch_normalization, …; the
// numbering depends on the Keras session that saved the file). Keras itself loads its .h5 by layer
// order, so the unnamed layers are matched in file order, convs and batch norms separately. Keras
// tensors are already in TF.js layouts (HWIO kernels, depthwise [h, w, in, 1], Dense [in, out]); only
// the batch-norm epsilon is folded when ours differs.
import type * as tf from '@tensorflow/tfjs';
import { batchNormWeights, vector, type OurTensor } from './layout';
import type { RawTensor, WeightFile } from './tensors';
import type { Converted } from './torchvision';

/** Keras' BatchNormalization default epsilon, which Xception keeps. */
const KERAS_BN_EPSILON = 1e-3;

/** Names Keras gives unnamed Conv2D / BatchNormalization layers: Keras 1 `convolution2d_1`, Keras 2 `conv2d_1`, Keras 3 `conv2d`; group 1 marks a batch norm. */
const AUTO_NAME = /^(?:conv2d|convolution2d|(batch_?normalization))(?:_\d+)?$/;

/** Our layer ← a named Keras layer, or the n-th unnamed conv / batch norm in file order. */
type KerasRule = { ours: string; keras: string } | { ours: string; unnamed: 'conv' | 'bn'; index: number };

/** Keras Xception block numbers: 2–4 entry, 5–12 middle, 13–14 exit (models/xception.ts keeps them in our names). */
export function kerasXceptionRules(): KerasRule[] {
  const rules: KerasRule[] = [];
  const named = (ours: string, keras: string) => rules.push({ ours, keras }, { ours: `${ours}_bn`, keras: `${keras}_bn` });
  for (const k of [1, 2]) named(`entry_block1_conv${k}`, `block1_conv${k}`);
  let shortcut = 0;
  const stage = (block: number) => (block <= 4 ? 'entry' : block <= 12 ? 'middle' : 'exit');
  for (let block = 2; block <= 14; block++) {
    const sepconvs = block >= 5 && block <= 12 ? 3 : 2;
    for (let k = 1; k <= sepconvs; k++) named(`${stage(block)}_block${block}_sepconv${k}`, `block${block}_sepconv${k}`);
    if (block <= 4 || block === 13) {
      rules.push({ ours: `${stage(block)}_block${block}_shortcut`, unnamed: 'conv', index: shortcut }, { ours: `${stage(block)}_block${block}_shortcut_bn`, unnamed: 'bn', index: shortcut });
      shortcut++;
    }
  }
  rules.push({ ours: 'head_classifier', keras: 'predictions' });
  return rules;
}

export function kerasRules(backbone: string): KerasRule[] {
  if (backbone === 'xception') return kerasXceptionRules();
  throw new Error(`Keras Applications weights are not mapped for ${backbone}`);
}

const fmt = (shape: readonly (number | null)[]) => `[${shape.join(',')}]`;

/**
 * Converts a Keras .h5 for `backbone` onto `model` (backbone + 1000-class head `head_classifier`),
 * checking every tensor's presence, use and shape. Throws one error listing every missing, unused or
 * misfitting tensor by name.
 */
export function convertKeras(file: WeightFile, backbone: string, model: tf.LayersModel): Converted {
  const rules = kerasRules(backbone);
  const ourLayers = new Map<string, tf.layers.Layer>();
  const visit = (layer: tf.layers.Layer): void => {
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(inner)) inner.forEach(visit);
    else ourLayers.set(layer.name, layer);
  };
  model.layers.forEach(visit);

  // The file's layers in order, and its unnamed ones (not a layer any rule names) by kind.
  const fileLayers = new Map<string, Map<string, RawTensor>>();
  for (const [name, t] of file.tensors) {
    const slash = name.lastIndexOf('/');
    const layer = name.slice(0, slash);
    if (!fileLayers.has(layer)) fileLayers.set(layer, new Map());
    fileLayers.get(layer)!.set(name.slice(slash + 1), t);
  }
  const unnamed = { conv: [] as string[], bn: [] as string[] };
  for (const layer of fileLayers.keys()) {
    const auto = AUTO_NAME.exec(layer);
    if (auto) unnamed[auto[1] ? 'bn' : 'conv'].push(layer);
  }

  const used = new Set<string>();
  const missing: string[] = [];
  const misfits: string[] = [];
  const layers = new Map<string, Map<string, OurTensor>>();
  for (const rule of rules) {
    const layer = ourLayers.get(rule.ours);
    if (!layer) throw new Error(`internal: ${model.name} has no layer ${rule.ours}`);
    const source = 'keras' in rule ? rule.keras : unnamed[rule.unnamed][rule.index];
    const what = 'keras' in rule ? rule.keras : `the ${ordinal(rule.index + 1)} unnamed ${rule.unnamed === 'conv' ? 'Conv2D' : 'BatchNormalization'} layer`;
    const out = new Map<string, OurTensor>();
    const bnShorts = ['gamma', 'beta', 'moving_mean', 'moving_variance'];
    const isBn = layer.getClassName() === 'BatchNormalization';
    const take = (short: string): RawTensor | undefined => {
      const t = source === undefined ? undefined : file.tensors.get(`${source}/${short}`);
      if (!t) missing.push(source !== undefined ? `${source}/${short}` : `${'unnamed' in rule && rule.unnamed === 'bn' ? 'batch_normalization' : 'conv2d'}…/${short} (${what})`);
      else used.add(`${source}/${short}`);
      return t;
    };
    if (isBn) {
      const [weight, bias, mean, variance] = bnShorts.map(take);
      if (weight && bias && mean && variance) {
        const ourEpsilon = layer.getConfig().epsilon as number;
        for (const [k, v] of Object.entries(batchNormWeights({ weight, bias, mean, variance }, { sourceEpsilon: KERAS_BN_EPSILON, ourEpsilon }))) out.set(k, v);
      }
    } else {
      for (const variable of layer.weights) {
        const short = variable.originalName.slice(variable.originalName.lastIndexOf('/') + 1);
        const t = take(short);
        if (t) out.set(short, vector(t));
      }
    }
    for (const variable of layer.weights) {
      const short = variable.originalName.slice(variable.originalName.lastIndexOf('/') + 1);
      const t = out.get(short);
      if (t && !sameShape(t.shape, variable.shape)) {
        misfits.push(`${source}/${short} ${fmt(t.shape)} does not fit ${rule.ours}/${short}: Refit needs ${fmt(variable.shape)}`);
        out.delete(short);
      }
    }
    layers.set(rule.ours, out);
  }
  const unused = [...file.tensors.keys()].filter((n) => !used.has(n));
  if (missing.length || unused.length || misfits.length) {
    const list = (title: string, items: string[]) => (items.length ? `\n${title} (${items.length}):\n  ${items.slice(0, 40).join('\n  ')}${items.length > 40 ? `\n  … and ${items.length - 40} more` : ''}` : '');
    throw new Error(
      `${file.origin} does not hold Keras Applications ${backbone} weights (with its 1000-class 'predictions' layer):` +
        list('shape mismatches', misfits) +
        list(`tensors ${backbone} needs that the file lacks`, missing) +
        list('tensors in the file that Refit would not use', unused.map((n) => `${n} ${fmt(file.tensors.get(n)!.shape)}`)),
    );
  }
  return { layers, skipped: [] };
}

function sameShape(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const ordinal = (n: number) => `${n}${n === 1 ? 'st' : n === 2 ? 'nd' : n === 3 ? 'rd' : 'th'}`;
