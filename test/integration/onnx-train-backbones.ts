// Shared by the onnx-train-backbones-*.test.ts files: one training step of a whole backbone + head on real
// photos through the ONNX training graph against TF.js autodiff (wasm here), as the network phase sets
// it up — the fine-tune top (last stage + head, BN frozen) and, where listed, full training (BN in training
// mode, with running statistics) — loss, every trainable weight's gradient and every running statistic.
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { disposeAll, type HeadConfig } from '../../models/heads';
import { getBackbone } from '../../models/registry';
import { backboneCase, clearOfReluKinks, compareStep, modeStep, PHOTO_CLASSES } from './onnx-train-check';

export const TOL = 1e-4;
const BATCH = 2;
const SEED = 31;

/** The smallest side the tests use: 64², or the backbone's minimum when larger. */
export const testSize = (backbone: string) => Math.max(64, getBackbone(backbone).minInputSize);

/**
 * The loss, every gradient and every running statistic within 1e-4 relative; fine-tune top with 2 photos
 * at the smallest size, full training as `full` says. Batch norm in training mode over a batch of 2 at
 * 64² normalises the last stage over 8 values (Inception-v4 at 75²: over 2, its last map is 1×1): there
 * the step is ill-conditioned — TF.js' own gradients move by up to 19% (ResNet-50) when the input moves
 * by rounding-sized noise, and no two float32 implementations agree; full checks are made only where
 * the step is well-conditioned (ResNet-18, SE-ResNet-18). The noise sensitivity is printed beside each
 * full comparison.
 */
export async function checkBackbone(backbone: string, o: { full?: { n: number; size: number; reluClearance?: number }; head?: HeadConfig }): Promise<void> {
  const head = o.head ?? { kind: 'mlp', hidden: 16, dropout: 0.3 };
  await checkMode(backbone, 'finetune', head, BATCH, testSize(backbone));
  if (o.full) await checkMode(backbone, 'full', head, o.full.n, o.full.size, o.full.reluClearance);
}

/** `reluClearance`: first move every ReLU's input at least this far from 0 (clearOfReluKinks). */
async function checkMode(backbone: string, mode: 'finetune' | 'full', head: HeadConfig, n: number, size: number, reluClearance?: number): Promise<void> {
  const c = await backboneCase(backbone, { head, size, n, seed: SEED });
  try {
    {
      const step = modeStep(backbone, c, mode, SEED);
      if (reluClearance !== undefined) {
        const x = tf.tensor4d(step.x, [n, size, size, 3]);
        const shifted = clearOfReluKinks(step.model, x, reluClearance);
        x.dispose();
        console.log(`${backbone} ${mode}: ${shifted} channels' BN beta shifted to keep every ReLU input ${reluClearance} from 0`);
      }
      const r = await compareStep(step.model, { batch: n, classes: PHOTO_CLASSES.length, x: step.x, labels: c.labels, masks: step.masks, sensitivity: mode === 'full' ? 'noise' : false });
      const strict = r.grads.filter((g) => g.rel < TOL).length;
      const worst = r.grads.reduce((a, g) => (g.rel > a.rel ? g : a));
      console.log(
        `${backbone} ${mode}, ${n} photos at ${size}²: loss ${r.loss[0].toFixed(6)} (onnxruntime) vs ${r.loss[1].toFixed(6)} (TF.js); ` +
          `${strict} of ${r.grads.length} gradients within 1e-4, worst ${worst.name} ${worst.rel.toExponential(2)}` +
          (worst.sensitivity !== undefined ? ` (TF.js' own change ${worst.sensitivity.toExponential(2)})` : '') +
          (r.stats.length ? `; ${r.stats.length} running statistics, worst ${Math.max(...r.stats.map((s) => s.rel)).toExponential(2)}` : ''),
      );
      expect(r.grads.length).toBe(step.model.trainableWeights.length);
      for (const g of r.grads) {
        expect(g.scale, `${mode}: TF.js gradient of ${g.name} is zero`).toBeGreaterThan(0);
        expect(g.rel, `${mode}: gradient of ${g.name}${g.sensitivity !== undefined ? ` (TF.js' own change ${g.sensitivity.toExponential(2)})` : ''}`).toBeLessThan(TOL);
      }
      if (mode === 'full') expect(r.stats.length).toBe(2 * step.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').length);
      for (const s of r.stats) expect(s.rel, `running statistic ${s.name}`).toBeLessThan(TOL);
      expect(Math.abs(r.loss[0] - r.loss[1]) / r.loss[1]).toBeLessThan(TOL);
    }
  } finally {
    disposeAll(c.classifier);
  }
}
