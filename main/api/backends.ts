/** The compute backends Refit knows, fastest first. Shared by the engine, the CLI and the UI. */
export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
