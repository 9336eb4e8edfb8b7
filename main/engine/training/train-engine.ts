// Which engine trains the network phase (fine-tune top, full network): TF.js with CUDA (node-gpu) when
// present; else onnxruntime (models/onnx-train) whenever onnxruntime-node loads and the training-graph
// builder accepts the model; else TF.js, saying why. REFIT_TRAINER=onnx|tfjs (or the job's `trainer`,
// from `refit train --trainer`) forces one; forcing onnx where it cannot run is an error.
// The head phase always trains in TF.js on cached features.
import type { TrainerReport } from '../../api/backends';

export type TrainEngine = TrainerReport['engine'];
export const TRAINER_REQUESTS = ['onnx', 'tfjs'] as const;
export type TrainerRequest = (typeof TRAINER_REQUESTS)[number];
export const TRAINER_ENV = 'REFIT_TRAINER';

export function parseTrainerRequest(value: string, field: string = TRAINER_ENV): TrainerRequest {
  const v = value.trim().toLowerCase();
  if ((TRAINER_REQUESTS as readonly string[]).includes(v)) return v as TrainerRequest;
  throw new Error(`${field}: unknown trainer "${value}"; expected one of ${TRAINER_REQUESTS.join(', ')}`);
}

/** The forced engine and who forced it: the job's own choice first, then REFIT_TRAINER. */
export function trainerRequest(jobTrainer?: TrainerRequest): { request: TrainerRequest; by: string } | undefined {
  if (jobTrainer) return { request: jobTrainer, by: `--trainer ${jobTrainer}` };
  const env = process.env[TRAINER_ENV];
  if (!env?.trim()) return undefined;
  return { request: parseTrainerRequest(env), by: `${TRAINER_ENV}=${env.trim()}` };
}

type OrtLoad = { ok: true; version?: string | undefined } | { ok: false; reason: string };
let ortLoad: Promise<OrtLoad> | undefined;

/** Whether onnxruntime-node loads in this process (cached). */
export function loadOnnxRuntime(): Promise<OrtLoad> {
  // Imported when needed: the train protocol and the CLI read this module without loading TF.js.
  ortLoad ??= import('../../../models/onnx-train/session').then((m) => m.loadOrt()).then(
    (ort) => (ort.InferenceSession ? { ok: true as const, version: ort.env?.versions?.common } : { ok: false as const, reason: 'onnxruntime-node loaded without InferenceSession' }),
    (err: Error) => ({ ok: false as const, reason: `onnxruntime-node cannot load: ${err.message.split('\n')[0]}` }),
  );
  return ortLoad;
}

/**
 * The engine before any model is seen (for `refit doctor`, the app's badge, and the first step of a
 * run's choice): `candidate` onnxruntime still has to build the model's training graph.
 * Throws when onnx is forced and onnxruntime-node cannot load.
 */
export async function preliminaryTrainer(backendName: string | undefined, jobTrainer?: TrainerRequest): Promise<TrainerReport & { forcedBy?: string; fallback?: true }> {
  const forced = trainerRequest(jobTrainer);
  if (forced?.request === 'tfjs') return { engine: 'tfjs', reason: `requested (${forced.by})`, forcedBy: forced.by };
  if (!forced && backendName === 'node-gpu') return { engine: 'tfjs', reason: 'TF.js with CUDA (node-gpu) is the fastest engine on this machine' };
  const ort = await loadOnnxRuntime();
  if (!ort.ok) {
    if (forced) throw new Error(`${forced.by}: the onnxruntime trainer cannot run: ${ort.reason}`);
    return { engine: 'tfjs', reason: ort.reason, fallback: true };
  }
  return forced
    ? { engine: 'onnxruntime', reason: `requested (${forced.by})`, forcedBy: forced.by }
    : { engine: 'onnxruntime', reason: 'onnxruntime-node loads: the default on CPU (every core, no WebAssembly heap limit)' };
}

/** The network phase's engine on this machine (doctor, the app's badge); a REFIT_TRAINER that cannot be honoured is reported, not thrown. */
export async function trainerReport(backendName: string): Promise<TrainerReport> {
  try {
    const { engine, reason } = await preliminaryTrainer(backendName);
    return { engine, reason };
  } catch (err) {
    return { engine: 'tfjs', reason: `${(err as Error).message}: fine-tune and full runs will fail until this is fixed` };
  }
}
