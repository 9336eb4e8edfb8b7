// torchvision state_dict names → Refit's layer names, for ResNet-18…152, VGG-16 and GoogLeNet, and the
// conversion of a read weight file into our layers' weights. Every tensor of the file must be used
// (only BN's `num_batches_tracked` counters and GoogLeNet's auxiliary classifiers, which Refit does not
// build, are skipped by name), and every shape must fit our model; otherwise one error lists each
// problem by name.
import type * as tf from '@tensorflow/tfjs';
import { RESNET_SPECS } from '../resnet';
import type { ResNetDepth } from '../catalog';
import { batchNormWeights, convKernel, denseKernel, pointwiseDenseKernel, vector, type OurTensor } from './layout';
import type { RawTensor, WeightFile } from './tensors';

/** One of our weight-bearing layers and where its weights come from in a torchvision state_dict. */
export type LayerRule =
  | { kind: 'conv'; ours: string; torch: string; bias?: boolean }
  | { kind: 'bn'; ours: string; torch: string; epsilon: number }
  | { kind: 'dense'; ours: string; torch: string }
  /** A 1×1 conv with bias acting on a pooled vector (SE's fc1/fc2) → a Dense layer. */
  | { kind: 'pointwise-dense'; ours: string; torch: string };

const conv = (ours: string, torch: string, bias = false): LayerRule => ({ kind: 'conv', ours, torch, ...(bias ? { bias } : {}) });
const bn = (ours: string, torch: string, epsilon: number): LayerRule => ({ kind: 'bn', ours, torch, epsilon });

/** torchvision ResNet (BatchNorm2d eps 1e-5): conv1/bn1, layerN.B.convK/bnK, downsample.0/.1, fc. */
function resnetRules(depth: ResNetDepth): LayerRule[] {
  const eps = 1e-5;
  const spec = RESNET_SPECS[depth];
  const convs = spec.unit === 'basic' ? 2 : 3;
  const rules: LayerRule[] = [conv('stem_conv', 'conv1'), bn('stem_bn', 'bn1', eps)];
  spec.blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++) {
      const ours = `stage${s + 1}_block${b + 1}`;
      const torch = `layer${s + 1}.${b}`;
      for (let k = 1; k <= convs; k++) rules.push(conv(`${ours}_conv${k}`, `${torch}.conv${k}`), bn(`${ours}_bn${k}`, `${torch}.bn${k}`, eps));
      // A projection shortcut where the shape changes: every stage's first unit except stage1 of basic ResNets.
      if (b === 0 && (s > 0 || spec.unit === 'bottleneck')) {
        rules.push(conv(`${ours}_shortcut_conv`, `${torch}.downsample.0`), bn(`${ours}_shortcut_bn`, `${torch}.downsample.1`, eps));
      }
    }
  });
  rules.push({ kind: 'dense', ours: 'head_classifier', torch: 'fc' });
  return rules;
}

/** torchvision vgg16 (cfg "D"): features.N convs with bias, classifier.0/.3 (fc6/fc7), classifier.6 (fc). */
function vgg16Rules(): LayerRule[] {
  const blocks = [2, 2, 3, 3, 3];
  const rules: LayerRule[] = [];
  let index = 0;
  blocks.forEach((convs, b) => {
    for (let c = 0; c < convs; c++) {
      rules.push(conv(`block${b + 1}_conv${c + 1}`, `features.${index}`, true));
      index += 2; // conv, ReLU
    }
    index += 1; // max-pool
  });
  rules.push({ kind: 'dense', ours: 'fc_fc6', torch: 'classifier.0' }, { kind: 'dense', ours: 'fc_fc7', torch: 'classifier.3' }, { kind: 'dense', ours: 'head_classifier', torch: 'classifier.6' });
  return rules;
}

/** torchvision GoogLeNet: BasicConv2d = conv (no bias) + bn (eps 1e-3); inception branches; fc. */
function googlenetRules(): LayerRule[] {
  const eps = 1e-3;
  const basic = (ours: string, torch: string) => [conv(ours, `${torch}.conv`), bn(`${ours}_bn`, `${torch}.bn`, eps)];
  const rules: LayerRule[] = [...basic('stem_conv1', 'conv1'), ...basic('stem_conv2', 'conv2'), ...basic('stem_conv3', 'conv3')];
  const stages: [string, string[]][] = [
    ['stage3', ['3a', '3b']],
    ['stage4', ['4a', '4b', '4c', '4d', '4e']],
    ['stage5', ['5a', '5b']],
  ];
  for (const [stage, modules] of stages) {
    for (const m of modules) {
      const ours = `${stage}_inception${m}`;
      const torch = `inception${m}`;
      rules.push(
        ...basic(`${ours}_branch1_conv`, `${torch}.branch1`),
        ...basic(`${ours}_branch2_conv1`, `${torch}.branch2.0`),
        ...basic(`${ours}_branch2_conv2`, `${torch}.branch2.1`),
        ...basic(`${ours}_branch3_conv1`, `${torch}.branch3.0`),
        ...basic(`${ours}_branch3_conv2`, `${torch}.branch3.1`),
        ...basic(`${ours}_branch4_conv`, `${torch}.branch4.1`),
      );
    }
  }
  rules.push({ kind: 'dense', ours: 'head_classifier', torch: 'fc' });
  return rules;
}

export function torchvisionRules(backbone: string): LayerRule[] {
  const m = /^resnet(18|34|50|101|152)$/.exec(backbone);
  if (m) return resnetRules(Number(m[1]) as ResNetDepth);
  if (backbone === 'vgg16') return vgg16Rules();
  if (backbone === 'googlenet') return googlenetRules();
  throw new Error(`torchvision weights are not mapped for ${backbone}`);
}

/** Source tensors a conversion may leave unused, by design. */
function ignorable(backbone: string, name: string): boolean {
  if (name.endsWith('.num_batches_tracked')) return true; // BN's training-step counter
  return backbone === 'googlenet' && /^aux[12]\./.test(name); // auxiliary classifiers, not built (as torchvision without aux_logits)
}

export interface Converted {
  /** our layer name → weight short name (kernel, bias, gamma, …) → tensor in our layout. */
  layers: Map<string, Map<string, OurTensor>>;
  /** Source tensors skipped by design (counters, auxiliary heads). */
  skipped: string[];
}

const fmt = (shape: readonly (number | null)[]) => `[${shape.join(',')}]`;

/**
 * Converts a torchvision state_dict for `backbone` onto `model` (backbone + 1000-class head named
 * `head_classifier`), checking every tensor's presence, use and shape. Throws one error listing every
 * missing, unused or misfitting tensor by name.
 */
export function convertTorchvision(file: WeightFile, backbone: string, model: tf.LayersModel): Converted {
  return convertStateDict(file, model, { backbone, rules: torchvisionRules(backbone), label: `torchvision ${backbone}`, ignorable: (name) => ignorable(backbone, name) });
}

/**
 * Converts a PyTorch state_dict by `rules` onto `model` (backbone + `head_classifier`), checking every
 * tensor's presence, use and shape; `label` names the expected weights in the error ("timm seresnet50").
 */
export function convertStateDict(
  file: WeightFile,
  model: tf.LayersModel,
  { backbone, rules, label, ignorable }: { backbone?: string; rules: LayerRule[]; label: string; ignorable: (name: string) => boolean },
): Converted {
  const ourLayers = new Map<string, tf.layers.Layer>();
  const visit = (layer: tf.layers.Layer): void => {
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(inner)) inner.forEach(visit);
    else ourLayers.set(layer.name, layer);
  };
  model.layers.forEach(visit);

  const used = new Set<string>();
  const missing: string[] = [];
  const misfits: string[] = [];
  const take = (name: string): RawTensor | undefined => {
    const t = file.tensors.get(name);
    if (!t) missing.push(name);
    else used.add(name);
    return t;
  };
  const layers = new Map<string, Map<string, OurTensor>>();
  for (const rule of rules) {
    const layer = ourLayers.get(rule.ours);
    if (!layer) throw new Error(`internal: ${model.name} has no layer ${rule.ours} for ${label} ${rule.torch}`);
    const out = new Map<string, OurTensor>();
    if (rule.kind === 'conv') {
      const w = take(`${rule.torch}.weight`);
      const b = rule.bias ? take(`${rule.torch}.bias`) : undefined;
      const kernel = w && guard(() => convKernel(w), `${rule.torch}.weight`, w, misfits);
      if (kernel) out.set('kernel', kernel);
      if (b) out.set('bias', vector(b));
    } else if (rule.kind === 'dense' || rule.kind === 'pointwise-dense') {
      const w = take(`${rule.torch}.weight`);
      const b = take(`${rule.torch}.bias`);
      const toDense = rule.kind === 'dense' ? denseKernel : pointwiseDenseKernel;
      const kernel = w && guard(() => toDense(w), `${rule.torch}.weight`, w, misfits);
      if (kernel) out.set('kernel', kernel);
      if (b) out.set('bias', vector(b));
    } else {
      const [weight, bias, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => take(`${rule.torch}.${k}`));
      if (weight && bias && mean && variance) {
        const ourEpsilon = layer.getConfig().epsilon as number;
        for (const [k, v] of Object.entries(batchNormWeights({ weight, bias, mean, variance }, { sourceEpsilon: rule.epsilon, ourEpsilon }))) out.set(k, v);
      }
    }
    // Every variable of our layer must receive a tensor of its exact shape.
    for (const variable of layer.weights) {
      const short = variable.originalName.slice(variable.originalName.lastIndexOf('/') + 1);
      const t = out.get(short);
      const torchName = rule.kind === 'bn' ? `${rule.torch}.${{ gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' }[short] ?? short}` : `${rule.torch}.${short === 'kernel' ? 'weight' : short}`;
      if (t && !sameShape(t.shape, variable.shape)) {
        misfits.push(`${torchName} ${fmt(file.tensors.get(torchName)?.shape ?? t.shape)} does not fit ${rule.ours}/${short}: Refit needs ${fmt(variable.shape)}${rule.kind !== 'bn' ? ' (after transposing to channels-last)' : ''}, the file gives ${fmt(t.shape)}`);
        out.delete(short);
      }
    }
    layers.set(rule.ours, out);
  }
  const unused = [...file.tensors.keys()].filter((n) => !used.has(n) && !ignorable(n));
  const skipped = [...file.tensors.keys()].filter((n) => !used.has(n) && ignorable(n));
  if (missing.length || unused.length || misfits.length) {
    const list = (title: string, items: string[]) => (items.length ? `\n${title} (${items.length}):\n  ${items.slice(0, 40).join('\n  ')}${items.length > 40 ? `\n  … and ${items.length - 40} more` : ''}` : '');
    throw new Error(
      `${file.origin} does not hold ${label} weights:` +
        list('shape mismatches', misfits) +
        list(`tensors ${backbone ?? label} needs that the file lacks`, missing) +
        list('tensors in the file that Refit would not use', unused.map((n) => `${n} ${fmt(file.tensors.get(n)!.shape)}`)),
    );
  }
  return { layers, skipped };
}

function sameShape(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function guard(convert: () => OurTensor, name: string, t: RawTensor, misfits: string[]): OurTensor | undefined {
  try {
    return convert();
  } catch (err) {
    misfits.push(`${name} ${fmt(t.shape)}: ${(err as Error).message}`);
    return undefined;
  }
}
