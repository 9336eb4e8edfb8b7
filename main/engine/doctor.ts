// What `refit doctor` reports: the backend in use and why, threads, memory, versions.
import os from 'node:os';
import { REFIT_VERSION } from './version';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { initBackend, currentBackend, type BackendReport } from './backend';


export interface DoctorReport {
  refit: string;
  backend: BackendReport;
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
  return {
    refit: REFIT_VERSION,
    backend,
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
