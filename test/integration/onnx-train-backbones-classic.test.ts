// Xception, GoogLeNet and VGG-16 through the ONNX training graph against TF.js on real photos
// (onnx-train-backbones.ts): the fine-tune top of each. Their full steps are not compared here: with
// BN in training mode on a few small images (or, for VGG-16 without BN, through 13 random convs) TF.js'
// own gradients moved by 2e-3 (Xception), 7e-2 (GoogLeNet at 128², 4 photos) and 100% (VGG-16's first
// convs) when the input moved by rounding-sized noise, so no float32 comparison can hold 1e-4 there.
import { describe, it } from 'vitest';
import { checkBackbone } from './onnx-train-backbones';

describe('ONNX training graph, Xception, GoogLeNet, VGG-16 on real photos', () => {
  it('xception (separable convs, max-pools over BN outputs): fine-tune top', () => checkBackbone('xception', {}), 180_000);
  it('googlenet (concatenated branches, ceil-mode pools): fine-tune top', () => checkBackbone('googlenet', { head: { kind: 'linear' } }), 180_000);
  it('vgg16 (adaptive pool as Permute + fixed Dense maps, fc6/fc7 with dropout): fine-tune top', () => checkBackbone('vgg16', {}), 240_000);
});
