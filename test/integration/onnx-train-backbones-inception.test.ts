// Inception-v4 and SE-Inception-v4 through the ONNX training graph against TF.js on real photos
// (onnx-train-backbones.ts): the fine-tune top of each (average pools, 1×7/7×1 and 1×3/3×1 convs, SE).
// Full steps are not compared: at 75² the last map is 1×1 and BN normalises 2 values; even at 139² with
// 4 photos TF.js' own gradients moved by 15% when the input moved by rounding-sized noise.
import { describe, it } from 'vitest';
import { checkBackbone } from './onnx-train-backbones';

describe('ONNX training graph, Inception-v4 on real photos', () => {
  it('inceptionv4: fine-tune top', () => checkBackbone('inceptionv4', {}), 180_000);
  it('seinceptionv4: fine-tune top', () => checkBackbone('seinceptionv4', { head: { kind: 'linear' } }), 180_000);
});
