/** The compute backends Refit knows, fastest first. Shared by the engine, the CLI and the UI. */
export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  /** Why this backend was not used (absent for the chosen one). */
  reason?: string;
}

/** Which compute backend the engine uses, and why not the faster ones. */
export interface BackendReport {
  name: BackendName;
  /** The TF.js backend id (tensorflow, wasm, cpu). */
  tfBackend: string;
  accelerator: 'gpu' | 'cpu';
  threads: number;
  attempts: BackendAttempt[];
  requested?: BackendName;
  /** The network phase's engine (absent where not determined, e.g. an older engine). */
  trainer?: TrainerReport;
}

/** Which engine trains the network phase (fine-tune and full modes) and why; the head phase always trains in TF.js. */
export interface TrainerReport {
  engine: 'onnxruntime' | 'tfjs';
  reason: string;
}
