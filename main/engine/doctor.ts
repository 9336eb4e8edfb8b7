// What `refit doctor` reports: the backend in use and why, threads, memory, versions.
import os from 'node:os';
import { REFIT_VERSION } from './version';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { initBackend, currentBackend, type BackendReport } from './backend';
import { onnxRuntimeStatus } from './onnx-runtime';
import type { TrainerReport } from '../api/backends';
import { trainerReport } from './training/train-engine';


export interface DoctorReport {
  refit: string;
  backend: BackendReport;
  /** What serves forward passes (prediction, classify-imagenet, feature extraction, frozen stages): onnxruntime when it loads, else TF.js. */
  forward: { runtime: 'onnxruntime' | 'tfjs'; threads: number; reason?: string; version?: string };
  /** What trains fine-tune and full modes (the head phase always trains in TF.js). */
  trainer: TrainerReport;
  machine: {
    platform: string;
    arch: string;
    cpu: string;
    cores: number;
    totalMemoryBytes: number;
    freeMemoryBytes: number;
  };
  process: { rssBytes: number; heapUsedBytes: number };
  versions: Record<string, string>;
}

export { REFIT_VERSION };

export async function doctor(): Promise<DoctorReport> {
  const backend = currentBackend() ?? (await initBackend());
  const memory = process.memoryUsage();
  const ort = await onnxRuntimeStatus();
  const forward: DoctorReport['forward'] = ort.available
    ? { runtime: 'onnxruntime', threads: ort.threads, ...(ort.version ? { version: ort.version } : {}) }
    : { runtime: 'tfjs', threads: backend.threads, ...(ort.reason ? { reason: ort.reason } : {}), ...(ort.version ? { version: ort.version } : {}) };
  return {
    refit: REFIT_VERSION,
    backend,
    forward,
    trainer: await trainerReport(backend.name),
    machine: {
      platform: process.platform,
      arch: process.arch,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      cores: os.availableParallelism(),
      totalMemoryBytes: os.totalmem(),
      freeMemoryBytes: os.freemem(),
    },
    process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    versions: {
      node: process.versions.node,
      v8: process.versions.v8,
      tfjs: tf.version.tfjs,
      sharp: sharp.versions.sharp ?? 'unknown',
      libvips: sharp.versions.vips,
      ...(process.versions.electron ? { electron: process.versions.electron } : {}),
    },
  };
}

