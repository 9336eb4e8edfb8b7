// Xception, GoogLeNet and VGG-16 through the ONNX training graph against TF.js on real photos
// (onnx-train-backbones.ts): the fine-tune top of each, and Xception's full step. As built, Xception's
// full step disagreed by up to 0.2 (128², 4 photos) although TF.js' own gradients moved only ~2e-3 under
// rounding-sized noise: the disagreement sat wholly in channels with a pre-ReLU value within ~2e-5 of 0
// (forward values of two float32 implementations 36 BN layers deep differ by about that, and the two
// take different sides of the kink); its blocks alone agree within 5e-6 (onnx-train-ops). So the full
// step is compared with every ReLU input moved 1e-3 from 0 (clearOfReluKinks), at 71² with 2 photos
// (at 128² with 4 photos the entry flow's max-pools over 4·31²·128 windows still meet near-ties).
// GoogLeNet's and VGG-16's full steps are not compared: TF.js' own gradients moved by 7e-2 (GoogLeNet at
// 128², 4 photos) and 100% (VGG-16's first convs) when the input moved by rounding-sized noise.
import { describe, it } from 'vitest';
import { checkBackbone } from './onnx-train-backbones';

describe('ONNX training graph, Xception, GoogLeNet, VGG-16 on real photos', () => {
  it('xception (separable convs, max-pools over BN outputs): fine-tune top and full training', () =>
    checkBackbone('xception', { full: { n: 2, size: 71, reluClearance: 1e-3 } }), 240_000);
  it('googlenet (concatenated branches, ceil-mode pools): fine-tune top', () => checkBackbone('googlenet', { head: { kind: 'linear' } }), 180_000);
  it('vgg16 (adaptive pool as Permute + fixed Dense maps, fc6/fc7 with dropout): fine-tune top', () => checkBackbone('vgg16', {}), 240_000);
});
