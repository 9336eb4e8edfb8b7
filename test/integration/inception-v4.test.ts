// Inception-v4 and SE-Inception-v4 structure: the paper's module sequence and feature-map sizes, the
// average pool that (like torch's count_include_pad=False) leaves the padding out, SE exactly on the
// Inception-A/B/C outputs, and a timm weight map that covers every weighted layer once.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInceptionV4 } from '../../models/inception-v4';
import { squeezeExcitation } from '../../models/layers';
import { buildHead } from '../../models/heads';
import { countParams } from '../../models/flops';
import { getBackbone } from '../../models/registry';
import { timmInceptionV4Rules } from '../../models/weights/timm-inception';

const MIN = getBackbone('inceptionv4').minInputSize;

/** Built once at the smallest size (building ~500 layers takes seconds). */
let small: tf.LayersModel;
beforeAll(() => {
  small = buildInceptionV4({ inputSize: MIN });
});
afterAll(() => small.dispose());

describe('Inception-v4 structure', () => {
  it("has the paper's modules in order, with timm's feature-map sizes at 299²", () => {
    const model = buildInceptionV4({ inputSize: 299 });
    try {
      const modules = model.layers.filter((l) => /^[a-z0-9]+_[a-z0-9]+_concat$/.test(l.name)).map((l) => l.name.replace(/_concat$/, ''));
      expect(modules).toEqual([
        'stem_mixed3a', 'stem_mixed4a', 'stem_mixed5a',
        'stage1_a1', 'stage1_a2', 'stage1_a3', 'stage1_a4',
        'stage2_reduction', 'stage2_b1', 'stage2_b2', 'stage2_b3', 'stage2_b4', 'stage2_b5', 'stage2_b6', 'stage2_b7',
        'stage3_reduction', 'stage3_c1', 'stage3_c2', 'stage3_c3',
      ]);
      // timm feature_info: 64 ch at /2 (147²), 160 at /4 (73²), 384 at /8 (35²), 1024 at /16 (17²), 1536 at /32 (8²).
      const shape = (name: string) => model.getLayer(name).outputShape.slice(1);
      expect(shape('stem_conv3_relu')).toEqual([147, 147, 64]);
      expect(shape('stem_mixed3a_concat')).toEqual([73, 73, 160]);
      expect(shape('stage1_a4_concat')).toEqual([35, 35, 384]);
      expect(shape('stage2_b7_concat')).toEqual([17, 17, 1024]);
      expect(shape('stage3_c3_concat')).toEqual([8, 8, 1536]);
      const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
      expect(convs).toHaveLength(149);
      expect(convs.every((l) => (l.getConfig() as { useBias: boolean }).useBias === false)).toBe(true);
      const bns = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
      expect(new Set(bns.map((l) => (l.getConfig() as { epsilon: number }).epsilon))).toEqual(new Set([1e-3]));
    } finally {
      model.dispose();
    }
  });

  it("average-pools over the image's cells only, as torch's AvgPool2d(count_include_pad=False)", () => {
    const pool = small.getLayer('stage1_a1_branch3_avgpool');
    const [h, w, c] = pool.outputShape.slice(1) as number[];
    {
      // A constant map stays constant at every border cell; counting the padding would give 4/9 at the corners.
      const out = tf.tidy(() => (pool.apply(tf.fill([1, h, w, c], 2)) as tf.Tensor).dataSync());
      expect(Math.min(...out)).toBeCloseTo(2, 6);
      expect(Math.max(...out)).toBeCloseTo(2, 6);
      // A ramp: the corner averages its 2×2 neighbourhood.
      const corner = tf.tidy(() => {
        const ramp = tf.tile(tf.range(0, w, 1, 'float32').reshape([1, 1, w, 1]), [1, h, 1, c]);
        return (pool.apply(ramp) as tf.Tensor).slice([0, 0, 0, 0], [1, 1, 1, 1]).dataSync()[0];
      });
      expect(corner).toBeCloseTo(0.5, 6);
    }
  });

  it('maps every weighted layer from exactly one timm tensor group, with nothing left over', () => {
    const head = buildHead(1536, 1000, { kind: 'linear' });
    try {
      const rules = timmInceptionV4Rules();
      const ours = rules.map((r) => r.ours);
      expect(new Set(ours).size).toBe(ours.length);
      const torch = rules.map((r) => r.torch);
      expect(new Set(torch).size).toBe(torch.length);
      const weighted: string[] = [];
      const visit = (l: tf.layers.Layer): void => {
        const inner = (l as unknown as { layers?: tf.layers.Layer[] }).layers;
        if (Array.isArray(inner)) inner.forEach(visit);
        else if (l.weights.length > 0) weighted.push(l.name);
      };
      [...small.layers, ...head.layers].forEach(visit);
      expect([...ours].sort()).toEqual(weighted.sort());
      // Spot checks against timm's module paths.
      expect(rules).toContainEqual({ kind: 'conv', ours: 'stem_conv1_conv', torch: 'features.0.conv' });
      expect(rules).toContainEqual({ kind: 'bn', ours: 'stem_mixed4a_branch1_3_bn', torch: 'features.4.branch1.3.bn', epsilon: 1e-3 });
      expect(rules).toContainEqual({ kind: 'conv', ours: 'stage2_reduction_branch1_2_conv', torch: 'features.10.branch1.2.conv' });
      expect(rules).toContainEqual({ kind: 'conv', ours: 'stage3_c3_branch2_3b_conv', torch: 'features.21.branch2_3b.conv' });
      expect(rules.at(-1)).toEqual({ kind: 'dense', ours: 'head_classifier', torch: 'last_linear' });
    } finally {
      head.dispose();
    }
  });
});

describe('SE-Inception-v4', () => {
  it('adds squeeze-and-excitation (reduction 16) on each Inception-A/B/C output and nowhere else', () => {
    const plain = small;
    const se = getBackbone('seinceptionv4').build({ inputSize: MIN });
    try {
      const scales = se.layers.filter((l) => l.name.endsWith('_se_scale'));
      expect(scales.map((l) => l.name.replace(/_se_scale$/, ''))).toEqual([
        ...[1, 2, 3, 4].map((i) => `stage1_a${i}`),
        ...[1, 2, 3, 4, 5, 6, 7].map((i) => `stage2_b${i}`),
        ...[1, 2, 3].map((i) => `stage3_c${i}`),
      ]);
      // Each SE unit is dense C→C/16 and C/16→C, with biases, on the module's concatenated output.
      const seParams = (c: number) => c * (c / 16) + c / 16 + (c / 16) * c + c;
      expect(countParams(se) - countParams(plain)).toBe(4 * seParams(384) + 7 * seParams(1024) + 3 * seParams(1536));
      expect(se.getLayer('stage2_b3_se_scale').inboundNodes[0].inboundLayers.map((l) => l.name)).toContain('stage2_b3_concat');
      // The next module reads the rescaled map.
      expect(se.getLayer('stage2_b4_branch0_conv').inboundNodes[0].inboundLayers[0].name).toBe('stage2_b3_se_scale');
      expect(getBackbone('seinceptionv4').weightSets).toEqual([]);
      expect(getBackbone('seinceptionv4').description).toMatch(/starts from random weights/);
    } finally {
      se.dispose();
    }
  });
});
