// Model checkpoints on disk: plain TF.js layers-model folders, replaced atomically, so a crash
// mid-save leaves the previous checkpoint intact.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tfjsFolderHandler } from '../../models/tfjs-folder';
import { recoverDir, replaceDirAtomic } from './atomic-fs';

export async function saveModelAtomic(model: tf.LayersModel, dir: string): Promise<void> {
  try {
    await replaceDirAtomic(dir, async (tmp) => {
      await model.save(tfjsFolderHandler(tmp));
    });
  } catch (err) {
    throw new Error(`could not write checkpoint ${dir}: ${(err as Error).message}`);
  }
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tfjsFolderHandler(dir));
}

/** True when `dir` holds a checkpoint (after putting back one left aside by a crash mid-replace). */
export async function checkpointExists(dir: string): Promise<boolean> {
  await recoverDir(dir);
  return stat(path.join(dir, 'model.json')).then(
    () => true,
    () => false,
  );
}
