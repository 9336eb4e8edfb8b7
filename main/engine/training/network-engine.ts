// The two ways a network-phase batch trains: TF.js (tf.train.adam + trainStep, sliced to the wasm heap)
// or onnxruntime (OnnxTrainer: the training graph and the same Adam; weights live in onnxruntime
// between steps and are written back into the TF.js model by sync()). Both take the same input tensor,
// labels and class weights; the network phase does the rest (data order, augmentation, validation,
// checkpoints) identically for either.
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { memoryShortfall, trainMemoryInput } from '../../../models/onnx-train/memory';
import { OnnxTrainer, onnxTrainStep } from '../../../models/onnx-train/session';
import { seededRandom } from '../random';
import { currentBackend } from '../backend';
import type { TrainHooks } from './hooks';
import { microBatchSize, oneHot, trainStep } from './step';
import { preliminaryTrainer, type TrainEngine, type TrainerRequest } from './train-engine';

export interface NetworkEngine {
  readonly engine: TrainEngine;
  readonly reason: string;
  /** One optimizer step on a batch (x is the trainable part's input); the batch's mean loss and correct predictions. */
  step(x: tf.Tensor, labelIndices: number[]): Promise<{ loss: number; hits: number }>;
  /** Makes the TF.js model hold the trained weights (before validation, checkpoints, and at the end). */
  sync(): void;
  dispose(): Promise<void>;
}

export interface NetworkEngineOptions {
  /** The part that trains with gradients (the fine-tune top, or the whole classifier). */
  trainable: tf.LayersModel;
  /** Every weight resident in TF.js (the wasm heap budget counts the frozen trunk too). */
  residentParams: number;
  modelName: string;
  batchSize: number;
  /** Images in the phase's training set (the largest batch the graph needs). */
  trainImages: number;
  numClasses: number;
  classWeights: tf.Tensor1D;
  learningRate: number;
  /** Seeds the dropout masks of the onnxruntime engine. */
  dropoutSeed: number;
  trainer?: TrainerRequest;
  hooks: TrainHooks;
}

/** The engine the network phase trains with, chosen as train-engine.ts says (forcing onnx where it cannot run throws). */
export async function openNetworkEngine(options: NetworkEngineOptions): Promise<NetworkEngine> {
  const choice = await preliminaryTrainer(currentBackend()?.name, options.trainer);
  if (choice.engine === 'onnxruntime') {
    try {
      return await OnnxNetworkEngine.open(options, choice.reason);
    } catch (err) {
      if (err instanceof NotEnoughMemory) throw err;
      const why = `the onnxruntime trainer cannot train ${options.modelName}: ${(err as Error).message.split('\n')[0]}`;
      if (choice.forcedBy) throw new Error(`${choice.forcedBy}: ${why}`);
      options.hooks.emit({ type: 'warning', message: `${why}; training in TF.js instead` });
      return TfjsNetworkEngine.open(options, why);
    }
  }
  if (choice.fallback) options.hooks.emit({ type: 'warning', message: `the network trains in TF.js, not onnxruntime: ${choice.reason}` });
  return TfjsNetworkEngine.open(options, choice.reason);
}

/** A run the machine cannot hold: refused before training, not retried on TF.js (whose heap is smaller). */
export class NotEnoughMemory extends Error {}

class TfjsNetworkEngine implements NetworkEngine {
  readonly engine = 'tfjs' as const;
  private readonly variables: tf.Variable[];

  private constructor(
    readonly reason: string,
    private readonly options: NetworkEngineOptions,
    private readonly optimizer: tf.Optimizer,
    private readonly microBatch: number,
  ) {
    this.variables = options.trainable.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  static open(options: NetworkEngineOptions, reason: string): NetworkEngine {
    const microBatch = microBatchSize(options.trainable, options.batchSize, tf.getBackend(), options.residentParams, options.modelName);
    if (microBatch < options.batchSize) {
      options.hooks.emit({
        type: 'warning',
        message: `batches of ${options.batchSize} go through in slices of ${microBatch} images to fit the WebAssembly backend's memory (same result, slower)`,
      });
    }
    return new TfjsNetworkEngine(reason, options, tf.train.adam(options.learningRate), microBatch);
  }

  async step(x: tf.Tensor, labelIndices: number[]): Promise<{ loss: number; hits: number }> {
    const { trainable, numClasses, classWeights } = this.options;
    const y = oneHot(labelIndices, numClasses);
    try {
      return await trainStep(this.optimizer, this.variables, (xs) => trainable.apply(xs, { training: true }) as tf.Tensor2D, x, y, classWeights, this.microBatch);
    } finally {
      y.dispose();
    }
  }

  sync(): void {}

  async dispose(): Promise<void> {
    this.optimizer.dispose();
  }
}

class OnnxNetworkEngine implements NetworkEngine {
  readonly engine = 'onnxruntime' as const;
  private readonly dropoutRandom: () => number;

  private constructor(
    readonly reason: string,
    private readonly options: NetworkEngineOptions,
    private readonly trainer: OnnxTrainer,
    private readonly classWeights: Float32Array,
  ) {
    this.dropoutRandom = seededRandom(options.dropoutSeed);
  }

  static async open(options: NetworkEngineOptions, reason: string): Promise<NetworkEngine> {
    // Adam as tf.train.adam(learningRate): β1 0.9, β2 0.999, ε 1e-7 (adam.ts' defaults).
    const trainer = await OnnxTrainer.create(options.trainable, {
      batchSize: Math.max(1, Math.min(options.batchSize, options.trainImages)),
      adam: { learningRate: options.learningRate },
      beforeLoad: (spec) => {
        const shortfall = memoryShortfall(options.modelName, trainMemoryInput(spec, options.residentParams), os.totalmem());
        if (shortfall) throw new NotEnoughMemory(`${shortfall} (lower the batch size or the input size)`);
      },
    });
    return new OnnxNetworkEngine(reason, options, trainer, Float32Array.from(options.classWeights.dataSync()));
  }

  async step(x: tf.Tensor, labelIndices: number[]): Promise<{ loss: number; hits: number }> {
    const n = labelIndices.length;
    const k = this.options.numClasses;
    const labels = new Float32Array(n * k);
    labelIndices.forEach((c, i) => (labels[i * k + c] = 1));
    const masks = new Map<string, Float32Array>();
    for (const d of this.trainer.spec.dropouts) {
      const size = n * d.tfShape.slice(1).reduce((a, b) => a * b, 1);
      const keep = 1 / (1 - d.rate);
      masks.set(d.layer, Float32Array.from({ length: size }, () => (this.dropoutRandom() >= d.rate ? keep : 0)));
    }
    const { loss, hits } = await onnxTrainStep(this.trainer, { x: (await x.data()) as Float32Array, labels, classWeights: this.classWeights, masks });
    return { loss, hits };
  }

  sync(): void {
    this.trainer.writeBack();
  }

  async dispose(): Promise<void> {
    await this.trainer.dispose();
  }
}
