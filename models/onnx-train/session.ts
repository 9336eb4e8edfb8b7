// Training a TF.js model's trainable part in onnxruntime-node: the training graph (build.ts) in an
// InferenceSession per batch size (the graph's batch is fixed: a last, smaller batch gets its own
// session, built when first needed), Adam in WebAssembly (adam.ts). The weights live in Adam's memory
// between steps, wrapped by onnxruntime tensors (each a Float32Array view, updated in place, shared by
// every session); writeBack() copies them, and the BN running statistics, into the TF.js model for
// checkpoints and export.
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { Adam, type AdamOptions } from './adam';
import {
  buildTrainGraph,
  gradName,
  newStatName,
  toGraphLayout,
  toTfLayout,
  TRAIN_CLASS_WEIGHTS,
  TRAIN_INPUT,
  TRAIN_LABELS,
  TRAIN_LOSS,
  TRAIN_PROBS,
  type TrainGraphSpec,
} from './build';
import { TrainGraph, type TrainGraphOptions } from './graph';

type OrtModule = typeof Ort;

export interface OnnxTrainerOptions {
  batchSize: number;
  adam: AdamOptions;
  /** Intra-op threads; default onnxruntime's own (all cores). */
  threads?: number;
  /** Writes an onnxruntime profile (JSON) with this file prefix. */
  profilePrefix?: string;
  /** The onnxruntime-node module (default: imported). */
  ort?: OrtModule;
  /** Called with the built graph before onnxruntime loads it (a throw stops there: e.g. a memory check). */
  beforeLoad?: (spec: TrainGraphSpec) => void;
  /** How the graph writes operators; default: NCHWc convolutions where this CPU's onnxruntime has them. */
  graph?: TrainGraphOptions;
}

export interface StepBatch {
  /** NHWC (the TF.js model's input layout), batchSize images. */
  x: Float32Array;
  /** One-hot labels [batchSize, classes]. */
  labels: Float32Array;
  /** [classes]. */
  classWeights: Float32Array;
  /** Dropout masks by layer name, already scaled by 1/(1 − rate), in TF.js (channels-last) order. */
  masks?: Map<string, Float32Array>;
}

export interface StepResult {
  loss: number;
  /** [batchSize, classes] softmax output. */
  probs: Float32Array;
  /** Correct top-1 predictions. */
  hits: number;
}

/** onnxruntime-node, whichever way the bundler wraps it (rejects when it cannot load). */
export async function loadOrt(): Promise<OrtModule> {
  const m = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
  return m.default?.InferenceSession ? m.default : m;
}

export class OnnxTrainer {
  readonly spec: TrainGraphSpec;
  readonly adam: Adam;
  /** Trainable weights in graph layout, in spec.weights order (updated in place). */
  readonly weights: Float32Array[];
  readonly runningStats: Float32Array[];
  private readonly feeds: Record<string, Ort.Tensor> = {};
  /** A graph and its session per batch size; the first is `spec`'s. */
  private readonly sessions = new Map<number, Promise<{ spec: TrainGraphSpec; session: Ort.InferenceSession }>>();
  private disposed = false;
  private readonly graphOptions: TrainGraphOptions;

  private constructor(
    private readonly ort: OrtModule,
    session: Ort.InferenceSession,
    private readonly model: tf.LayersModel,
    spec: TrainGraphSpec,
    adam: AdamOptions,
    private readonly sessionOptions: Ort.InferenceSession.SessionOptions,
    graphOptions: TrainGraphOptions,
  ) {
    this.graphOptions = graphOptions;
    this.spec = spec;
    this.sessions.set(spec.batchSize, Promise.resolve({ spec, session }));
    const vars = variablesByName(model);
    this.adam = new Adam(spec.weights.map((w) => w.shape.reduce((a, b) => a * b, 1)), adam);
    this.weights = spec.weights.map((w, i) => toGraphLayout(w, vars.get(w.name)!.read().dataSync() as Float32Array, this.adam.weights[i]));
    this.runningStats = spec.runningStats.map((s) => Float32Array.from(vars.get(s.name)!.read().dataSync() as Float32Array));
    spec.weights.forEach((w, i) => (this.feeds[w.name] = new ort.Tensor('float32', this.weights[i], w.shape)));
    spec.runningStats.forEach((s, i) => (this.feeds[s.name] = new ort.Tensor('float32', this.runningStats[i], s.shape)));
  }

  static async create(model: tf.LayersModel, options: OnnxTrainerOptions): Promise<OnnxTrainer> {
    const ort = options.ort ?? (await loadOrt());
    const graph: TrainGraphOptions = { nchwcBlock: await nchwcBlockSize(ort), ...options.graph };
    const spec = buildTrainGraph(model, { batchSize: options.batchSize, graph });
    options.beforeLoad?.(spec);
    const sessionOptions: Ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
      ...(options.profilePrefix ? { enableProfiling: true, profileFilePrefix: options.profilePrefix } : {}),
    };
    const session = await ort.InferenceSession.create(spec.bytes, sessionOptions);
    return new OnnxTrainer(ort, session, model, spec, options.adam, sessionOptions, graph);
  }

  /** Images in a batch of `x.length` values (an error unless it is a whole number of images). */
  imagesIn(values: number): number {
    const perImage = this.spec.inputShape.slice(1).reduce((a, b) => a * b, 1);
    const n = values / perImage;
    if (!Number.isInteger(n) || n < 1) throw new Error(`onnx trainer: batch has ${values} values, not a whole number of [${this.spec.inputShape.slice(1)}] inputs`);
    return n;
  }

  /** The graph (and session) for batches of `n`, built on first use; frozen weights are baked in, trainable ones fed. */
  private sized(n: number): Promise<{ spec: TrainGraphSpec; session: Ort.InferenceSession }> {
    let entry = this.sessions.get(n);
    if (!entry) {
      entry = (async () => {
        const spec = buildTrainGraph(this.model, { batchSize: n, graph: this.graphOptions });
        return { spec, session: await this.ort.InferenceSession.create(spec.bytes, this.sessionOptions) };
      })();
      this.sessions.set(n, entry);
    }
    return entry;
  }

  /** Runs the graph on a batch (any size): loss, probabilities, gradients (graph layout) and new running statistics. */
  async run(batch: StepBatch): Promise<{ loss: number; probs: Float32Array; grads: Float32Array[]; stats: Float32Array[] }> {
    if (this.disposed) throw new Error('onnx trainer: disposed');
    const { ort } = this;
    const n = this.imagesIn(batch.x.length);
    const { spec, session } = await this.sized(n);
    if (batch.labels.length !== n * spec.numClasses) throw new Error(`onnx trainer: ${batch.labels.length} label values for ${n} images of ${spec.numClasses} classes`);
    const feeds: Record<string, Ort.Tensor> = { ...this.feeds };
    feeds[TRAIN_INPUT] = new ort.Tensor('float32', batch.x, spec.inputShape);
    feeds[TRAIN_LABELS] = new ort.Tensor('float32', batch.labels, [n, spec.numClasses]);
    feeds[TRAIN_CLASS_WEIGHTS] = new ort.Tensor('float32', batch.classWeights, [spec.numClasses]);
    for (const d of spec.dropouts) {
      const mask = batch.masks?.get(d.layer);
      if (!mask) throw new Error(`onnx trainer: no dropout mask for layer ${d.layer}`);
      feeds[d.name] = new ort.Tensor('float32', d.shape.length === 4 ? nhwcToNchw(mask, d.tfShape) : mask, d.shape);
    }
    const out = await session.run(feeds);
    const data = (name: string) => out[name].data as Float32Array;
    return {
      loss: data(TRAIN_LOSS)[0],
      probs: data(TRAIN_PROBS),
      // By name in the first graph's order (the order of this.weights and Adam's state).
      grads: this.spec.weights.map((w) => data(gradName(w.name))),
      stats: this.spec.runningStats.map((s) => data(newStatName(s.name))),
    };
  }

  /** Gradients in TF.js layout, by variable name (for checks against TF.js autodiff). */
  async gradients(batch: StepBatch): Promise<{ loss: number; probs: Float32Array; grads: Map<string, Float32Array>; stats: Map<string, Float32Array> }> {
    const r = await this.run(batch);
    return {
      loss: r.loss,
      probs: r.probs,
      grads: new Map(this.spec.weights.map((w, i) => [w.name, toTfLayout(w, r.grads[i])])),
      stats: new Map(this.spec.runningStats.map((s, i) => [s.name, r.stats[i]])),
    };
  }

  /** Copies the trained weights and running statistics into the TF.js model's variables. */
  writeBack(): void {
    const vars = variablesByName(this.model);
    this.spec.weights.forEach((w, i) => {
      const v = vars.get(w.name)!;
      const t = tfTensor(v, toTfLayout(w, Float32Array.from(this.weights[i])));
      v.write(t);
      t.dispose();
    });
    this.spec.runningStats.forEach((s, i) => {
      const v = vars.get(s.name)!;
      const t = tfTensor(v, Float32Array.from(this.runningStats[i]));
      v.write(t);
      t.dispose();
    });
  }

  /** Ends profiling (onnxruntime writes `<profilePrefix>_<date>.json`). */
  async endProfiling(): Promise<void> {
    await (await this.sized(this.spec.batchSize)).session.endProfiling();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const sessions = await Promise.allSettled(this.sessions.values());
    for (const s of sessions) if (s.status === 'fulfilled') await s.value.session.release();
  }

  /** Internal for onnxTrainStep. */
  setStats(stats: Float32Array[]): void {
    stats.forEach((s, i) => this.runningStats[i].set(s));
  }
}

/**
 * One optimizer step in onnxruntime: forward, loss, gradients, then Adam on the weights in place and
 * the BN running statistics taken over. Returns the batch's loss and correct predictions.
 */
export async function onnxTrainStep(trainer: OnnxTrainer, batch: StepBatch): Promise<StepResult> {
  const { loss, probs, grads, stats } = await trainer.run(batch);
  trainer.adam.apply(grads);
  trainer.setStats(stats);
  const k = trainer.spec.numClasses;
  const n = probs.length / k;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    let label = 0;
    for (let j = 1; j < k; j++) {
      if (probs[i * k + j] > probs[i * k + best]) best = j;
      if (batch.labels[i * k + j] > batch.labels[i * k + label]) label = j;
    }
    if (best === label) hits++;
  }
  return { loss, probs, hits };
}

const blockSizes = new WeakMap<OrtModule, Promise<number>>();

/**
 * onnxruntime's NCHWc channel block on this CPU (16 with AVX-512, 8 with AVX2), read from what its
 * ReorderInput makes of 4 channels (padded up to one block); 0 where the build has no NCHWc kernels.
 */
export function nchwcBlockSize(ort: OrtModule): Promise<number> {
  let known = blockSizes.get(ort);
  if (!known) {
    known = (async () => {
      const g = new TrainGraph();
      const x = g.input('x', [1, 4, 1, 1]);
      g.node('ReorderInput', [x.name], 'y', {}, 'com.microsoft.nchwc');
      g.outputs.push({ name: 'y', type: { tensorType: { elemType: 1 } } }); // shape left open: it is the answer
      try {
        const session = await ort.InferenceSession.create(g.encode('nchwc_block'));
        try {
          const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
          const block = Number(out.y.dims[1]);
          return Number.isInteger(block) && block > 4 && block % 4 === 0 ? block : 0;
        } finally {
          await session.release();
        }
      } catch {
        return 0;
      }
    })();
    blockSizes.set(ort, known);
  }
  return known;
}

function variablesByName(model: tf.LayersModel): Map<string, tf.LayerVariable> {
  return new Map(model.weights.map((w) => [w.name, w]));
}

function tfTensor(v: tf.LayerVariable, values: Float32Array): tf.Tensor {
  return tf.tensor(values, v.shape as number[], 'float32');
}

/** [N, H, W, C] → [N, C, H, W]. */
function nhwcToNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let z = 0; z < w; z++) for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + z] = x[((b * h + y) * w + z) * c + ch];
  return out;
}
