// timm SE-ResNet state_dict names → Refit's layer names, from the builder's own stage table
// (models/resnet.ts RESNET_SPECS). Two naming schemes (timm 0.9 / main, timm/models/):
//   senet.py  legacy_seresnet*   layer0.conv1/bn1, layerN.M.convK/bnK, .downsample.0/.1,
//                                .se_module.fc1/fc2 (1×1 convs with bias), last_linear
//   resnet.py seresnet50 (ra2)   conv1/bn1, layerN.M.convK/bnK, .downsample.0/.1, .se.fc1/fc2, fc
// BatchNorm2d ε 1e-5 in both.
import { RESNET_SPECS } from '../resnet';
import type { ResNetDepth } from '../catalog';
import type * as tf from '@tensorflow/tfjs';
import type { WeightSetEntry } from '../weight-sets';
import type { WeightFile } from './tensors';
import { convertStateDict, type Converted, type LayerRule } from './torchvision';
import { convertTimmInceptionV4 } from './timm-inception';

const BN_EPSILON = 1e-5;

export type TimmSeResNetNaming = 'senet' | 'resnet';

export function timmSeResNetRules(depth: ResNetDepth, naming: TimmSeResNetNaming): LayerRule[] {
  const spec = RESNET_SPECS[depth];
  const convs = spec.unit === 'basic' ? 2 : 3;
  const legacy = naming === 'senet';
  const conv = (ours: string, torch: string): LayerRule => ({ kind: 'conv', ours, torch });
  const bn = (ours: string, torch: string): LayerRule => ({ kind: 'bn', ours, torch, epsilon: BN_EPSILON });
  const rules: LayerRule[] = legacy ? [conv('stem_conv', 'layer0.conv1'), bn('stem_bn', 'layer0.bn1')] : [conv('stem_conv', 'conv1'), bn('stem_bn', 'bn1')];
  spec.blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++) {
      const ours = `stage${s + 1}_block${b + 1}`;
      const torch = `layer${s + 1}.${b}`;
      for (let k = 1; k <= convs; k++) rules.push(conv(`${ours}_conv${k}`, `${torch}.conv${k}`), bn(`${ours}_bn${k}`, `${torch}.bn${k}`));
      const se = legacy ? `${torch}.se_module` : `${torch}.se`;
      rules.push({ kind: 'pointwise-dense', ours: `${ours}_se_reduce`, torch: `${se}.fc1` }, { kind: 'pointwise-dense', ours: `${ours}_se_expand`, torch: `${se}.fc2` });
      // A projection shortcut where the shape changes (SENet's _make_layer: stride ≠ 1 or inplanes ≠ planes × expansion).
      if (b === 0 && (s > 0 || spec.unit === 'bottleneck')) rules.push(conv(`${ours}_shortcut_conv`, `${torch}.downsample.0`), bn(`${ours}_shortcut_bn`, `${torch}.downsample.1`));
    }
  });
  rules.push({ kind: 'dense', ours: 'head_classifier', torch: legacy ? 'last_linear' : 'fc' });
  return rules;
}

/** Converts a timm state_dict for `backbone`'s set `entry` onto `model` (see convertStateDict). */
export function convertTimm(file: WeightFile, backbone: string, entry: WeightSetEntry, model: tf.LayersModel): Converted {
  if (backbone === 'inceptionv4') return convertTimmInceptionV4(file, entry, model);
  const se = /^seresnet(18|34|50|101|152)$/.exec(backbone);
  if (!se) throw new Error(`timm weights are not mapped for ${backbone}`);
  // The legacy SENet sets need the 'senet' variant; timm's resnet.py sets are v1.5.
  const naming: TimmSeResNetNaming = entry.variant === 'senet' ? 'senet' : 'resnet';
  return convertStateDict(file, model, {
    backbone,
    rules: timmSeResNetRules(Number(se[1]) as ResNetDepth, naming),
    label: `timm ${naming === 'senet' ? 'legacy_' : ''}${backbone} (${entry.id})`,
    ignorable: (name) => name.endsWith('.num_batches_tracked'),
  });
}
