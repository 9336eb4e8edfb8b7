// On-disk cache of backbone features, keyed by image content and everything that changes a feature:
// backbone, weights, input size and augmentation view. A second run on the same data skips extraction.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './atomic-fs';

export interface FeatureKey {
  backbone: string;
  /** 'imagenet', or e.g. 'random-seed42' for a seeded random initialisation. */
  weights: string;
  inputSize: number;
  /** Seed of the augmented views (view 0 is the plain image and does not depend on it). */
  augmentSeed: number;
}

export class FeatureCache {
  readonly dir: string;

  constructor(
    root: string,
    private readonly key: FeatureKey,
    private readonly featureDim: number,
  ) {
    this.dir = path.join(root, 'features', `${key.backbone}-${key.weights}-${key.inputSize}`);
  }

  private file(hash: string, view: number): string {
    const name = view === 0 ? `${hash}.f32` : `${hash}-s${this.key.augmentSeed}-v${view}.f32`;
    return path.join(this.dir, hash.slice(0, 2), name);
  }

  async get(hash: string, view: number): Promise<Float32Array | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.file(hash, view));
    } catch {
      return undefined;
    }
    // A wrong-sized entry (e.g. an interrupted write on a filesystem without atomic rename) is a miss.
    if (bytes.byteLength !== this.featureDim * 4) return undefined;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }

  async put(hash: string, view: number, features: Float32Array): Promise<void> {
    if (features.length !== this.featureDim) throw new Error(`feature cache: expected ${this.featureDim} values, got ${features.length}`);
    const file = this.file(hash, view);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, new Uint8Array(features.buffer, features.byteOffset, features.byteLength), { durable: false });
  }
}
