// The network a run trains: built from the registry (random or pretrained weights), grown from a
// parent run's best checkpoint (continue), or reloaded from the run's own checkpoints (resume).
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { RunRecord } from '../../api/training';
import { attachHead, buildHead, disposeAll, growHead, splitClassifier } from '../../../models/heads';
import { getBackbone } from '../../../models/registry';
import type { BackboneInfo } from '../../../models/types';
import { checkpointExists, loadModel } from '../checkpoint';
import { readRun, runDir } from '../project';
import type { TrainJob } from '../train-protocol';

export interface Model {
  info: BackboneInfo;
  backbone: tf.LayersModel;
  head: tf.LayersModel;
  classifier: tf.LayersModel;
}

export async function buildModel(job: TrainJob, config: RunRecord['config'], labels: string[], parent: RunRecord | undefined): Promise<Model> {
  const info = getBackbone(config.backbone);
  const dir = runDir(job.projectDir, job.runId);
  if (job.resume && (await checkpointExists(path.join(dir, 'last')))) {
    const classifier = await loadModel(path.join(dir, 'last'));
    const { backbone, head } = splitClassifier(classifier);
    // While only the head trains, last/ holds the starting network and head-last/ the head's progress.
    const headOnly = !(await readRun(job.projectDir, job.runId)).history.some((h) => h.phase === 'finetune');
    if (headOnly && (await checkpointExists(path.join(dir, 'head-last')))) {
      const saved = await loadModel(path.join(dir, 'head-last'));
      head.setWeights(saved.getWeights());
      disposeAll(saved);
    }
    return { info, backbone, head, classifier };
  }
  let backbone: tf.LayersModel;
  let head: tf.LayersModel;
  if (parent) {
    const loaded = await loadModel(path.join(runDir(job.projectDir, parent.id), 'best'));
    const split = splitClassifier(loaded);
    backbone = split.backbone;
    head = growHead(split.head, parent.labels, labels, config.head, config.seed);
  } else {
    if (config.weights === 'imagenet') {
      backbone = await info.loadWeights('imagenet', { inputSize: config.inputSize });
    } else {
      backbone = info.build({ inputSize: config.inputSize, seed: config.seed });
    }
    head = buildHead(info.featureDim, labels.length, config.head, config.seed);
  }
  return { info, backbone, head, classifier: attachHead(backbone, head) };
}

/**
 * Names the weights a run's backbone starts from, for the feature cache: runs starting from unchanged
 * ImageNet weights share features; a random start or a fine-tuned parent gets features of its own.
 */
export function startFeatureKey(runId: string, config: RunRecord['config'], parent: RunRecord | undefined): string {
  if (parent) return parent.config.mode === 'head' ? parent.featureKey : `run-${parent.id}`;
  return config.weights === 'imagenet' ? 'imagenet' : `run-${runId}`;
}

