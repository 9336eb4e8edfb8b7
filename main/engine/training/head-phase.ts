// The head phase: features of every (image, augmented view) computed once with the frozen backbone
// (onnxruntime when it can, cached on disk by content), then the head alone trains on them.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { DatasetImage } from '../../api/dataset';
import { HEAD_VIEWS_WITH_AUGMENTATION, phaseLearningRate } from '../../api/train-config';
import { preprocess } from '../../../models/preprocess';
import { augmentBatch } from '../augment';
import { FeatureCache } from '../feature-cache';
import { decodeBatch, prefetchBatches } from '../image-batches';
import type { ValPrediction } from '../metrics';
import { createForwardPass, describeRuntime } from '../onnx-runtime';
import { deriveSeed, seededRandom, shuffle } from '../random';
import { checkCancel, Progress } from './hooks';
import { endEpoch, type PhaseArgs } from './phase';
import { oneHot, trainStep } from './step';

/** Features for every (image, view), from the cache or computed with the frozen backbone. */
async function extractFeatures(
  args: PhaseArgs & { featureKey: string },
  items: { image: DatasetImage; view: number }[],
): Promise<Map<string, Float32Array>> {
  const { config, model, hooks, job } = args;
  const cache = new FeatureCache(path.join(job.projectDir, 'cache'), { backbone: config.backbone, weights: args.featureKey, inputSize: config.inputSize, augmentSeed: config.seed }, model.info.featureDim);
  const key = (image: DatasetImage, view: number) => `${image.hash}:${view}`;
  const features = new Map<string, Float32Array>();
  const missing: { image: DatasetImage; view: number }[] = [];
  for (const item of items) {
    const cached = await cache.get(item.image.hash, item.view);
    if (cached) features.set(key(item.image, item.view), cached);
    else missing.push(item);
  }
  if (missing.length === 0) {
    hooks.emit({ type: 'progress', phase: 'extract', fraction: 1, message: `all ${items.length} features cached` });
    return features;
  }
  const progress = new Progress(hooks, 'extract', missing.length);
  const started = performance.now();
  let done = 0;
  const batchSize = Math.max(1, Math.min(config.batchSize, 16));
  // Forward passes only: through onnxruntime when it is available (several times faster), else TF.js.
  const forward = await createForwardPass(model.backbone, { inputSize: config.inputSize });
  hooks.emit({ type: 'progress', phase: 'extract', fraction: 0, done: 0, total: missing.length, message: `computing ${missing.length} feature vectors in ${describeRuntime(forward)}` });
  try {
    for await (const batch of prefetchBatches(missing, batchSize, (b) => decodeBatch(b, (i) => i.image.file, config.inputSize))) {
      checkCancel(hooks.signal);
      for (const f of batch.failures) hooks.emit({ type: 'problem', file: f.item.image.file, reason: f.error });
      if (batch.pixels) {
        const randoms = batch.items.map((i) => seededRandom(deriveSeed(config.seed, i.image.hash, String(i.view))));
        const x = tf.tidy(() => {
          const augmented = batch.items.some((i) => i.view > 0) ? augmentBatch(batch.pixels!, randoms) : batch.pixels!;
          // View 0 stays the plain image even inside a batch that has augmented views.
          const mask = tf.tensor1d(batch.items.map((i) => (i.view > 0 ? 1 : 0))).reshape([-1, 1, 1, 1]);
          const pixels = augmented === batch.pixels ? augmented : tf.add(tf.mul(augmented, mask), tf.mul(batch.pixels!, tf.sub(1, mask)));
          return preprocess(pixels as tf.Tensor4D, model.info.preprocessing);
        });
        const out = await forward.run(x);
        const values = (await out.data()) as Float32Array;
        tf.dispose([x, out]);
        const dim = model.info.featureDim;
        await Promise.all(
          batch.items.map((item, i) => {
            const f = values.slice(i * dim, (i + 1) * dim) as Float32Array;
            features.set(key(item.image, item.view), f);
            return cache.put(item.image.hash, item.view, f);
          }),
        );
      }
      done += batch.items.length + batch.failures.length;
      const seconds = (performance.now() - started) / 1000;
      progress.report(done, { imagesPerSec: done / seconds, batch: Math.ceil(done / batchSize), batches: Math.ceil(missing.length / batchSize) });
    }
  } finally {
    forward.dispose();
  }
  return features;
}

export async function trainHeadPhase(args: PhaseArgs & { featureKey: string }): Promise<boolean> {
  const { config, model, labels, labelIndex, split, weights, hooks } = args;
  const views = config.augment ? HEAD_VIEWS_WITH_AUGMENTATION : 1;
  const items = [
    ...split.train.flatMap((image) => Array.from({ length: views }, (_, view) => ({ image, view }))),
    ...split.val.map((image) => ({ image, view: 0 })),
  ];
  const features = await extractFeatures(args, items);
  const has = (image: DatasetImage) => features.has(`${image.hash}:0`);
  const train = split.train.filter(has);
  const val = split.val.filter(has);
  if (val.length === 0) throw new Error('no validation image could be decoded');

  const dim = model.info.featureDim;
  const stack = (rows: Float32Array[]) => {
    const buffer = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => buffer.set(r, i * dim));
    return tf.tensor2d(buffer, [rows.length, dim]);
  };
  const valX = stack(val.map((i) => features.get(`${i.hash}:0`)!));
  const learningRate = phaseLearningRate(config, 'train');
  const optimizer = tf.train.adam(learningRate);
  const random = seededRandom(deriveSeed(config.seed, 'head-order'));
  const headWeights = model.head.trainableWeights.map((w) => w.read() as tf.Variable);

  try {
    // The ETA covers the rest of the phase, not just the epoch.
    const progress = new Progress(hooks, 'train', (args.epochs - args.firstEpoch + 1) * train.length);
    for (let epoch = args.firstEpoch; epoch <= args.epochs; epoch++) {
      checkCancel(hooks.signal);
      const started = performance.now();
      const order = shuffle([...train], random);
      const before = (epoch - args.firstEpoch) * train.length;
      let lossSum = 0;
      let correct = 0;
      for (let start = 0; start < order.length; start += config.batchSize) {
        checkCancel(hooks.signal);
        const batch = order.slice(start, start + config.batchSize);
        // One random view of each image per epoch.
        const x = stack(batch.map((i) => features.get(`${i.hash}:${Math.floor(random() * views)}`) ?? features.get(`${i.hash}:0`)!));
        const y = oneHot(batch.map((i) => labelIndex.get(i.className)!), labels.length);
        const { loss, hits } = await trainStep(optimizer, headWeights, (xs) => model.head.apply(xs, { training: true }) as tf.Tensor2D, x, y, weights);
        lossSum += loss * batch.length;
        correct += hits;
        tf.dispose([x, y]);
        const done = Math.min(start + config.batchSize, order.length);
        progress.report(before + done, {
          epoch: args.epochBase + epoch,
          epochs: args.epochBase + args.epochs,
          batch: Math.ceil(done / config.batchSize),
          batches: Math.ceil(order.length / config.batchSize),
          imagesPerSec: done / ((performance.now() - started) / 1000),
          loss: lossSum / done,
          accuracy: correct / done,
          learningRate,
        });
      }
      const probs = model.head.predict(valX) as tf.Tensor2D;
      const p = (await probs.array()) as number[][];
      probs.dispose();
      const predictions: ValPrediction[] = val.map((image, i) => ({ file: image.file, trueIndex: labelIndex.get(image.className)!, probabilities: p[i] }));
      const stop = await endEpoch(args, { phase: 'train', epoch, lossSum, correct, seen: order.length, learningRate, started }, predictions, model.head, 'head-last');
      if (stop) return true;
    }
    return false;
  } finally {
    valX.dispose();
    optimizer.dispose();
  }
}

