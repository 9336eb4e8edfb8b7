// What a training run on onnxruntime needs in memory, before it starts, so that the launcher can refuse
// a run the machine cannot hold (with numbers) instead of dying mid-epoch. Pure arithmetic on counts
// the training graph reports (TrainGraphSpec.activationFloats / frozenFloats, build.ts) and the weights:
//
//   weights      TF.js model (all weights, 4 B each) + the trainer's copy of the trainable ones, their
//                gradients and Adam's two moments (4 × 4 B) + the frozen ones twice (the graph's bytes
//                and onnxruntime's initializers)
//   activations  the forward values one step keeps for the backward pass, BYTES_PER_OUTPUT_FLOAT per float
//                of the layers' outputs (onnxruntime frees or reuses some: less than 4 B), plus the largest
//                transient of the backward pass (a conv filter gradient's input windows, 4 B per float) —
//                both measured by npm run bench:train-memory
//   input        the batch (NHWC and NCHW copies) and its augmentation
//   runtime      Node, TF.js and onnxruntime themselves
//
// No timing or machine facts here: the caller compares `bytes` with what the machine has (os.totalmem()).

/** Bytes per float. */
const F = 4;
/**
 * Peak resident bytes of a step per float of the layers' outputs: one full-mode step of SE-ResNet-152 at
 * 224², batch 16 (whose filter-gradient windows are small) peaked at 5988–6836 MiB over three runs, up to
 * 3.6 B per float beyond the rest of the estimate (npm run bench:train-memory). With the NCHWc
 * convolutions (graph.ts): VGG-16 5542–5564 MiB measured, 5977 estimated (1.07–1.08×, mostly its first
 * convs' windows); SE-ResNet-152 6713–6932 / 6866 (0.99–1.02×). With a ReLU after the max-pool that
 * alone reads it, peaks rose (VGG-16 5772–5804, SE-ResNet-152 6869–6876, though fewer values are kept:
 * onnxruntime's arena places them differently), so 3.7: estimates 6000 and 7006 (1.03×, 1.02×).
 */
export const BYTES_PER_OUTPUT_FLOAT = 3.7;
/** Node + TF.js + onnxruntime before any model (measured: ~0.35 GiB). */
export const RUNTIME_BYTES = 400 * 2 ** 20;

export interface TrainMemoryInput {
  batchSize: number;
  /** Floats in the layers' outputs for one image (TrainGraphSpec.activationFloats / batch size). */
  activationFloatsPerImage: number;
  /** Floats of the backward pass's largest transient, per image (TrainGraphSpec.workspaceFloats / batch size). */
  workspaceFloatsPerImage: number;
  /** Floats of one input image (H·W·C of what the graph takes). */
  inputFloatsPerImage: number;
  /** Trainable weights (floats). */
  trainableFloats: number;
  /** Frozen weights inside the trained part (baked into the graph). */
  frozenFloats: number;
  /** Every weight of the TF.js model (it stays loaded: checkpoints, validation). */
  modelFloats: number;
}

/**
 * The per-image and weight counts of one backbone's training graph in one mode, at its default input
 * size (memory-table.ts, measured by memory-facts.ts): what a run needs can be told from them and the
 * run's batch and input size without building the model.
 */
export interface TrainMemoryFacts {
  activationFloatsPerImage: number;
  workspaceFloatsPerImage: number;
  inputFloatsPerImage: number;
  trainableFloats: number;
  frozenFloats: number;
}

/** TrainMemoryInput for a run of `batchSize` at `pixelScale` × the default input's pixels (per-image counts scale with them). */
export function runMemoryInput(facts: TrainMemoryFacts, o: { batchSize: number; pixelScale: number; modelFloats: number }): TrainMemoryInput {
  return {
    batchSize: o.batchSize,
    activationFloatsPerImage: facts.activationFloatsPerImage * o.pixelScale,
    workspaceFloatsPerImage: facts.workspaceFloatsPerImage * o.pixelScale,
    inputFloatsPerImage: facts.inputFloatsPerImage * o.pixelScale,
    trainableFloats: facts.trainableFloats,
    frozenFloats: facts.frozenFloats,
    modelFloats: o.modelFloats,
  };
}

export interface TrainMemoryEstimate {
  bytes: number;
  parts: { runtime: number; weights: number; activations: number; input: number };
}

function check(input: TrainMemoryInput): void {
  for (const [key, v] of Object.entries(input)) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`training memory estimate: ${key} must be a number ≥ 0, got ${v}`);
  }
  if (!Number.isInteger(input.batchSize) || input.batchSize < 1) throw new Error(`training memory estimate: batchSize must be a positive integer, got ${input.batchSize}`);
}

/** The peak memory one training process needs for `input`, in bytes, and where it goes. */
export function estimateTrainMemory(input: TrainMemoryInput): TrainMemoryEstimate {
  check(input);
  const weights = F * (input.modelFloats + 4 * input.trainableFloats + 2 * input.frozenFloats);
  const activations = (BYTES_PER_OUTPUT_FLOAT * input.activationFloatsPerImage + F * input.workspaceFloatsPerImage) * input.batchSize;
  const inputBytes = 3 * F * input.inputFloatsPerImage * input.batchSize;
  const parts = { runtime: RUNTIME_BYTES, weights, activations, input: inputBytes };
  return { bytes: parts.runtime + parts.weights + parts.activations + parts.input, parts };
}

/** The counts estimateTrainMemory takes, from a built training graph and the model's parameter count. */
export function trainMemoryInput(
  spec: { batchSize: number; inputShape: number[]; activationFloats: number; workspaceFloats: number; frozenFloats: number; weights: { shape: number[] }[] },
  modelFloats: number,
): TrainMemoryInput {
  const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    batchSize: spec.batchSize,
    activationFloatsPerImage: spec.activationFloats / spec.batchSize,
    workspaceFloatsPerImage: spec.workspaceFloats / spec.batchSize,
    inputFloatsPerImage: numel(spec.inputShape.slice(1)),
    trainableFloats: spec.weights.reduce((sum, w) => sum + numel(w.shape), 0),
    frozenFloats: spec.frozenFloats,
    modelFloats,
  };
}

const gib = (b: number) => (b / 2 ** 30).toFixed(1);

/**
 * Null when `estimate` fits in `availableBytes`, else the reason to refuse, with the numbers (and how
 * much smaller a batch would fit, when one would).
 */
export function memoryShortfall(what: string, input: TrainMemoryInput, availableBytes: number): string | null {
  const e = estimateTrainMemory(input);
  if (e.bytes <= availableBytes) return null;
  const perImage = (e.parts.activations + e.parts.input) / input.batchSize;
  const fixed = e.bytes - perImage * input.batchSize;
  const fits = Math.floor((availableBytes - fixed) / perImage);
  const advice = fits >= 1 ? `; a batch of ${fits} would fit` : `; even one image does not fit (the weights alone need ${gib(fixed)} GiB)`;
  return (
    `training ${what} with batches of ${input.batchSize} needs about ${gib(e.bytes)} GiB ` +
    `(weights and optimizer ${gib(e.parts.weights)}, activations ${gib(e.parts.activations)}, runtime ${gib(e.parts.runtime)}), ` +
    `but this machine has ${gib(availableBytes)} GiB${advice}`
  );
}
