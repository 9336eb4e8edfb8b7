// ResNet-18…152 through the ONNX training graph against TF.js on real photos (onnx-train-backbones.ts):
// every depth's fine-tune top, and ResNet-18's full step (BN in training mode, running statistics).
// Deeper full steps are not compared: ResNet-50's with 2 photos at 64² moved TF.js' own gradients by up
// to 19% when the input moved by rounding-sized noise (BN over 8 values in stage4): no float32
// comparison holds 1e-4 there.
import { describe, it } from 'vitest';
import { checkBackbone } from './onnx-train-backbones';

describe('ONNX training graph, ResNets on real photos', () => {
  it('resnet18: fine-tune top and full training (linear head)', () => checkBackbone('resnet18', { full: { n: 2, size: 64 }, head: { kind: 'linear' } }), 180_000);
  it('resnet34: fine-tune top', () => checkBackbone('resnet34', {}), 180_000);
  it('resnet50: fine-tune top', () => checkBackbone('resnet50', {}), 180_000);
  it('resnet101: fine-tune top', () => checkBackbone('resnet101', {}), 180_000);
  it('resnet152: fine-tune top', () => checkBackbone('resnet152', {}), 240_000);
});
