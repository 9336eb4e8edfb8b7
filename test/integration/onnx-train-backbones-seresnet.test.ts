// SE-ResNet-18…152 through the ONNX training graph against TF.js on real photos (onnx-train-backbones.ts):
// every depth's fine-tune top; full training for SE-ResNet-18 (the SE block trained with BN in training
// mode). The deeper ones' full steps are ill-conditioned at test sizes (see the ResNet file).
import { describe, it } from 'vitest';
import { checkBackbone } from './onnx-train-backbones';

describe('ONNX training graph, SE-ResNets on real photos', () => {
  it('seresnet18: fine-tune top and full training', () => checkBackbone('seresnet18', { full: { n: 2, size: 64 } }), 180_000);
  it('seresnet34: fine-tune top', () => checkBackbone('seresnet34', { head: { kind: 'linear' } }), 180_000);
  it('seresnet50: fine-tune top', () => checkBackbone('seresnet50', {}), 180_000);
  it('seresnet101: fine-tune top', () => checkBackbone('seresnet101', {}), 180_000);
  it('seresnet152: fine-tune top', () => checkBackbone('seresnet152', {}), 240_000);
});
