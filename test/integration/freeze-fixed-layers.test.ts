import { describe, it, expect } from 'vitest';
import { getBackbone } from '../../models/registry';
import { freezeBackbone, unfreezeAll } from '../../models/freeze';
import { disposeAll } from '../../models/heads';

describe('fixed layers', () => {
  it("VGG's adaptive-pool maps never become trainable, whatever is unfrozen", () => {
    const info = getBackbone('vgg16');
    const model = info.build({ inputSize: 32 }); // 1×1 map → the fixed 7×7 pooling maps exist
    const fixed = model.layers.filter((l) => /_avgpool_[wh]$/.test(l.name));
    expect(fixed.map((l) => l.name).sort()).toEqual(['fc_avgpool_h', 'fc_avgpool_w']);
    const fixedWeights = new Set(fixed.flatMap((l) => l.weights.map((w) => w.name)));

    freezeBackbone(model, info, { trainableStages: ['fc'] });
    const trainable = model.trainableWeights.map((w) => w.name);
    expect(trainable.length).toBe(4); // fc6 and fc7 kernels and biases
    expect(trainable.filter((n) => fixedWeights.has(n))).toEqual([]);

    unfreezeAll(model);
    expect(model.trainableWeights.filter((w) => fixedWeights.has(w.name))).toEqual([]);
    expect(model.trainableWeights.length).toBe(26 + 4);
    disposeAll(model);
  });
});
