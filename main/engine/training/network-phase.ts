// The network phase: fine-tune mode trains the last stage and the head (the frozen stages run forward
// only, in onnxruntime when it can), full mode trains the whole classifier; the trainable part trains in
// onnxruntime or TF.js (network-engine.ts, chosen as train-engine.ts says) with the same data order,
// augmentation, class weights and learning rate.
import * as tf from '@tensorflow/tfjs';
import type { DatasetImage } from '../../api/dataset';
import { phaseLearningRate } from '../../api/train-config';
import { freezeForFineTune, unfreezeAll } from '../../../models/freeze';
import { preprocess } from '../../../models/preprocess';
import { splitAtStages } from '../../../models/trunk';
import type { BackboneInfo } from '../../../models/types';
import { augmentBatch } from '../augment';
import { decodeBatch, prefetchBatches } from '../image-batches';
import type { ValPrediction } from '../metrics';
import { createForwardPass, describeRuntime, type ForwardPass } from '../onnx-runtime';
import { deriveSeed, seededRandom, shuffle } from '../random';
import type { TrainerReport } from '../../api/backends';
import { checkCancel, Progress } from './hooks';
import { openNetworkEngine, type NetworkEngine } from './network-engine';
import { endEpoch, type PhaseArgs } from './phase';
import type { TrainerRequest } from './train-engine';

/**
 * What the network phase runs: in fine-tune mode the frozen stages are a fixed function of the image,
 * run forward only (through onnxruntime when it can) and the trainable rest trains with gradients;
 * in full mode the whole classifier trains.
 */
async function networkParts(args: PhaseArgs & { info: BackboneInfo }): Promise<{ trunk: ForwardPass | null; trainable: tf.LayersModel }> {
  const { config, model, hooks, info } = args;
  if (config.mode !== 'finetune') {
    unfreezeAll(model.classifier);
    return { trunk: null, trainable: model.classifier };
  }
  // The last stage trains at a lower rate (phaseLearningRate), BN statistics stay frozen.
  const stages = freezeForFineTune(model.classifier, info);
  let split;
  try {
    split = splitAtStages(model.classifier, info, stages);
  } catch (err) {
    hooks.emit({ type: 'warning', message: `the frozen stages run through TF.js with the rest of the network: ${(err as Error).message}` });
    return { trunk: null, trainable: model.classifier };
  }
  const trunk = await createForwardPass(split.trunk, { inputSize: config.inputSize });
  const frozen = info.stages.slice(0, info.stages.indexOf(stages[0]));
  hooks.emit({
    type: 'progress',
    phase: 'load',
    fraction: 1,
    message: `frozen stages (${frozen.join(', ')}) run forward in ${describeRuntime(trunk)}; ${stages.join(', ')} and the head train with gradients`,
  });
  return { trunk, trainable: split.top };
}

export interface NetworkPhaseArgs extends PhaseArgs {
  info: BackboneInfo;
  /** Forces the engine (`refit train --trainer`); else REFIT_TRAINER or the default choice. */
  trainer?: TrainerRequest;
  /** Told which engine trains, before the first step (the run record keeps it). */
  onTrainer?: (report: TrainerReport) => void;
}

export async function trainNetworkPhase(args: NetworkPhaseArgs): Promise<boolean> {
  const { config, model, labels, labelIndex, split, weights, hooks, info } = args;
  // One rate for the whole phase (phaseLearningRate has no per-epoch schedule).
  const learningRate = phaseLearningRate(config, 'finetune');
  const { trunk, trainable } = await networkParts(args);
  /** The trainable part's input for a batch of preprocessed images (a new tensor). */
  const inputOf = async (x: tf.Tensor4D): Promise<tf.Tensor> => (trunk ? trunk.run(x) : x.clone());
  let engine: NetworkEngine;
  try {
    engine = await openNetworkEngine({
      trainable,
      residentParams: model.classifier.countParams(),
      modelName: model.classifier.name,
      batchSize: config.batchSize,
      trainImages: split.train.length,
      numClasses: labels.length,
      classWeights: weights,
      learningRate,
      dropoutSeed: deriveSeed(config.seed, 'network-dropout', String(args.firstEpoch)),
      ...(args.trainer ? { trainer: args.trainer } : {}),
      hooks,
    });
  } catch (err) {
    trunk?.dispose();
    throw err;
  }
  const report: TrainerReport = { engine: engine.engine, reason: engine.reason };
  args.onTrainer?.(report);
  const validateInOnnx = !trunk && engine.engine === 'onnxruntime';
  hooks.emit({
    type: 'progress',
    phase: 'load',
    fraction: 1,
    message: `${config.mode === 'full' ? 'the network trains' : 'the trainable stages and the head train'} in ${describeTrainer(report)}${validateInOnnx ? '; validation runs in onnxruntime too' : ''}`,
  });
  const random = seededRandom(deriveSeed(config.seed, 'network-order', String(args.firstEpoch)));
  const decode = (b: DatasetImage[]) => decodeBatch(b, (i) => i.file, config.inputSize);
  try {
    const progress = new Progress(hooks, 'finetune', (args.epochs - args.firstEpoch + 1) * split.train.length);
    for (let epoch = args.firstEpoch; epoch <= args.epochs; epoch++) {
      checkCancel(hooks.signal);
      const started = performance.now();
      const order = shuffle([...split.train], random);
      const before = (epoch - args.firstEpoch) * split.train.length;
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batchNo = 0;
      for await (const batch of prefetchBatches(order, config.batchSize, decode)) {
        checkCancel(hooks.signal);
        for (const f of batch.failures) hooks.emit({ type: 'problem', file: f.item.file, reason: f.error });
        batchNo++;
        if (!batch.pixels) continue;
        const randoms = batch.items.map(() => seededRandom(Math.floor(random() * 4294967296)));
        const pixels = tf.tidy(() => preprocess(config.augment ? augmentBatch(batch.pixels!, randoms) : batch.pixels!, info.preprocessing));
        const x = await inputOf(pixels).finally(() => pixels.dispose());
        const { loss, hits } = await engine.step(x, batch.items.map((i) => labelIndex.get(i.className)!)).finally(() => x.dispose());
        const n = batch.items.length;
        lossSum += loss * n;
        correct += hits;
        seen += n;
        progress.report(before + seen, {
          epoch: args.epochBase + epoch,
          epochs: args.epochBase + args.epochs,
          batch: batchNo,
          batches: Math.ceil(order.length / config.batchSize),
          imagesPerSec: seen / ((performance.now() - started) / 1000),
          loss: lossSum / seen,
          accuracy: correct / seen,
          learningRate,
        });
      }
      // Validation on plain images, in inference mode, with the trained weights: the TF.js model holds
      // them after sync(); a whole classifier trained in onnxruntime is validated by an onnxruntime
      // forward pass of it (on the wasm backend TF.js would take longer than the epoch's training).
      engine.sync();
      const predictions: ValPrediction[] = [];
      const pass = validateInOnnx && split.val.length ? await createForwardPass(trainable, { inputSize: config.inputSize }) : null;
      try {
        for await (const batch of prefetchBatches(split.val, config.batchSize, decode)) {
          checkCancel(hooks.signal);
          if (!batch.pixels) continue;
          const pixels = tf.tidy(() => preprocess(batch.pixels!, info.preprocessing));
          const x = await inputOf(pixels).finally(() => pixels.dispose());
          const probs = await Promise.resolve(pass ? pass.run(x as tf.Tensor4D) : tf.tidy(() => trainable.predict(x) as tf.Tensor)).finally(() => x.dispose());
          const p = (await probs.array()) as number[][];
          probs.dispose();
          batch.items.forEach((image, i) => predictions.push({ file: image.file, trueIndex: labelIndex.get(image.className)!, probabilities: p[i] }));
        }
      } finally {
        pass?.dispose();
      }
      const stop = await endEpoch(args, { phase: 'finetune', epoch, lossSum, correct, seen, learningRate, started }, predictions, model.classifier, 'last');
      if (stop) return true;
    }
    return false;
  } finally {
    // The TF.js model holds the trained weights whatever ends the phase (a cancel within a batch too).
    engine.sync();
    await engine.dispose();
    trunk?.dispose();
  }
}

/** "onnxruntime (why)" / "TF.js (why)". */
export function describeTrainer(report: TrainerReport): string {
  return `${report.engine === 'onnxruntime' ? 'onnxruntime' : 'TF.js'} (${report.reason})`;
}
