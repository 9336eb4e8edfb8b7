// The memory table the model cards read (models/onnx-train/memory-table.ts) against real builds: the
// per-image counts of a backbone's training graph, re-measured for one backbone of each family in both
// network modes, must equal the table's; and the card's estimate from the table must match what the
// trainer computes from a built batch-16 graph before it starts (the refusal's numbers).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { estimateMemory } from '../../main/engine/estimates';
import { unfreezeAll } from '../../models/freeze';
import { attachHead, buildHead, disposeAll } from '../../models/heads';
import { buildTrainGraph } from '../../models/onnx-train/build';
import { estimateTrainMemory, trainMemoryInput } from '../../models/onnx-train/memory';
import { FACTS_CLASSES, trainMemoryFacts } from '../../models/onnx-train/memory-facts';
import { TRAIN_MEMORY_FACTS } from '../../models/onnx-train/memory-table';
import { getBackbone, listBackbones } from '../../models/registry';

let previous: string;
beforeAll(async () => {
  previous = tf.getBackend();
  await tf.setBackend('cpu');
});
afterAll(async () => {
  await tf.setBackend(previous);
});

describe('the training-memory table', () => {
  it('has every backbone of the catalogue', () => {
    expect(Object.keys(TRAIN_MEMORY_FACTS).sort()).toEqual(listBackbones().map((b) => b.id).sort());
  });

  for (const backbone of ['resnet18', 'seresnet50', 'xception', 'googlenet', 'vgg16', 'inceptionv4']) {
    it(`${backbone}: the table's counts are what its training graphs hold (fine-tune top and full)`, () => {
      expect(trainMemoryFacts(backbone, 'finetune')).toEqual(TRAIN_MEMORY_FACTS[backbone].finetune);
      expect(trainMemoryFacts(backbone, 'full')).toEqual(TRAIN_MEMORY_FACTS[backbone].full);
    });
  }

  it("a card's estimate (table, batch 16) is the trainer's own from a built batch-16 graph, within the head's size", () => {
    const info = getBackbone('resnet50');
    const classifier = attachHead(info.build({ inputSize: info.inputSize, seed: 1 }), buildHead(info.featureDim, FACTS_CLASSES, { kind: 'linear' }, 1));
    try {
      unfreezeAll(classifier);
      const trainer = estimateTrainMemory(trainMemoryInput(buildTrainGraph(classifier, { batchSize: 16 }), classifier.countParams())).bytes;
      const card = estimateMemory(info)!.full;
      // The card counts the catalogue's 1000-class head among the resident weights (2 M floats more).
      console.log(`ResNet-50 full, batch 16: card ${(card / 2 ** 30).toFixed(2)} GiB, trainer ${(trainer / 2 ** 30).toFixed(2)} GiB`);
      expect(Math.abs(card - trainer) / trainer).toBeLessThan(0.01);
      // Half the input side: the per-image terms a quarter.
      const small = estimateMemory(info, { inputSize: 112 })!.full;
      expect(small).toBeLessThan(card * 0.5);
    } finally {
      disposeAll(classifier);
    }
  });
});
