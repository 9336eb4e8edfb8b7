// What a backbone's training graph holds per image, at its default input size, in each network mode:
// the counts models/onnx-train/memory.ts turns into bytes. Measured here on a real build (the model and
// its training graph); memory-table.ts keeps them for every backbone, so that the model cards can
// say what a run needs without building anything (`npm run bench:train-memory -- --facts` prints the
// table; test/integration/train-memory-facts.test.ts re-measures some). The trained part's input is an
// image, or in fine-tune mode the frozen trunk's output; its frozen weights are baked into the graph.
import { freezeForFineTune, unfreezeAll } from '../freeze';
import { attachHead, buildHead, disposeAll } from '../heads';
import { getBackbone } from '../registry';
import { splitAtStages } from '../trunk';
import { buildTrainGraph } from './build';
import { trainMemoryInput, type TrainMemoryFacts } from './memory';

/** The classes the table assumes (a linear head's weights are a rounding error next to a backbone's). */
export const FACTS_CLASSES = 5;

export function trainMemoryFacts(backbone: string, mode: 'finetune' | 'full'): TrainMemoryFacts {
  const info = getBackbone(backbone);
  const classifier = attachHead(info.build({ inputSize: info.inputSize, seed: 1 }), buildHead(info.featureDim, FACTS_CLASSES, { kind: 'linear' }, 1));
  try {
    let trainable = classifier;
    if (mode === 'full') unfreezeAll(classifier);
    else {
      const stages = freezeForFineTune(classifier, info);
      try {
        trainable = splitAtStages(classifier, info, stages).top;
      } catch {
        // As the network phase: a model that cannot be split trains whole, its frozen stages included.
      }
    }
    const { activationFloatsPerImage, workspaceFloatsPerImage, inputFloatsPerImage, trainableFloats, frozenFloats } = trainMemoryInput(buildTrainGraph(trainable, { batchSize: 1 }), 0);
    return { activationFloatsPerImage, workspaceFloatsPerImage, inputFloatsPerImage, trainableFloats, frozenFloats };
  } finally {
    disposeAll(classifier);
  }
}
