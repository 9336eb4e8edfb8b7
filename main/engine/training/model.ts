// The network a run trains: built from the registry (random or pretrained weights), grown from a
// parent run's best checkpoint (continue), or reloaded from the run's own checkpoints (resume).
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { RunRecord } from '../../api/training';
import type { Preprocessing } from '../../api/models';
import { attachHead, buildHead, disposeAll, growHead, splitClassifier } from '../../../models/heads';
import { getBackbone } from '../../../models/registry';
import { readStoredManifest } from '../../../models/weights/store';
import type { BackboneInfo } from '../../../models/types';
import { checkpointExists, loadModel } from '../checkpoint';
import { readRun, runDir } from '../project';
import type { TrainJob } from '../train-protocol';

export interface Model {
  /** The backbone's registry entry, its `preprocessing` that of the weights the run started from. */
  info: BackboneInfo;
  backbone: tf.LayersModel;
  head: tf.LayersModel;
  classifier: tf.LayersModel;
}

/**
 * The preprocessing a run's images get: that of the weights it starts from (a weight set carries its
 * publisher's, e.g. torch mean/std for torchvision weights on ResNet-50), a parent run's, or the
 * backbone's own for random weights.
 */
export function startPreprocessing(config: RunRecord['config'], parent: RunRecord | undefined): Preprocessing {
  if (parent) return parent.preprocessing;
  const info = getBackbone(config.backbone);
  return config.weights === 'imagenet' ? info.weightSet(config.weightSet ?? 'imagenet').effective : info.preprocessing;
}

/** The registry entry with the preprocessing of the run's weights (what the phases preprocess with). */
function withPreprocessing(info: BackboneInfo, preprocessing: Preprocessing): BackboneInfo {
  return Object.freeze({ ...info, preprocessing });
}

export async function buildModel(job: TrainJob, config: RunRecord['config'], labels: string[], parent: RunRecord | undefined): Promise<Model> {
  const dir = runDir(job.projectDir, job.runId);
  if (job.resume && (await checkpointExists(path.join(dir, 'last')))) {
    const info = withPreprocessing(getBackbone(config.backbone), (await readRun(job.projectDir, job.runId)).preprocessing);
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
  const info = withPreprocessing(getBackbone(config.backbone), startPreprocessing(config, parent));
  let backbone: tf.LayersModel;
  let head: tf.LayersModel;
  if (parent) {
    const loaded = await loadModel(path.join(runDir(job.projectDir, parent.id), 'best'));
    const split = splitClassifier(loaded);
    backbone = split.backbone;
    head = growHead(split.head, parent.labels, labels, config.head, config.seed);
  } else {
    if (config.weights === 'imagenet') {
      backbone = await info.loadWeights(config.weightSet ?? 'imagenet', { inputSize: config.inputSize });
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
  return config.weights === 'imagenet' ? weightsFeatureKey(config.backbone, config.weightSet ?? 'imagenet') : `run-${runId}`;
}

/**
 * The feature-cache name of a weight set: 'imagenet' for a bundled set (as before sets existed), else
 * the set id and the first 12 hex digits of the imported file's SHA-256 (re-importing another file
 * under the same set gets new features).
 */
export function weightsFeatureKey(backbone: string, set: string): string {
  const entry = getBackbone(backbone).weightSet(set);
  if (entry.delivery === 'bundled') return 'imagenet';
  const stored = readStoredManifest(backbone, entry.id);
  return `${entry.id}-${stored?.source.sha256.slice(0, 12) ?? 'unknown'}`;
}

