// Importing a weight file into the user cache, and loading a stored set into a new backbone.
import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { replaceDirAtomic } from '../../main/engine/atomic-fs';
import { fsErrorMessage } from '../../main/engine/errors';
import { attachHead, buildHead } from '../heads';
import { getBackboneSpec } from '../catalog';
import type { ArchitectureVariant, WeightSetEntry } from '../weight-sets';
import { readH5 } from './h5';
import { convertKeras } from './keras';
import { readPth } from './pth';
import { readSafetensors } from './safetensors';
import { STORE_FORMAT, readStoredManifest, resolveWeightSet, weightSetDir, type StoredTensor, type StoredWeightsManifest } from './store';
import type { WeightFile } from './tensors';
import { convertTimm } from './timm';
import { convertTorchvision, type Converted } from './torchvision';

export const IMAGENET_CLASSES = 1000;

/** Builds a backbone for a weight set's architecture variant (the registry passes its builders in). */
export type VariantBuilder = (inputSize: number, variant: ArchitectureVariant) => tf.LayersModel;

/** Reads a weight file by its content: a zip (PyTorch), a safetensors header or the HDF5 signature (Keras .h5). */
export async function readWeightFile(file: string): Promise<WeightFile> {
  let head: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      head = Buffer.alloc(9);
      await handle.read(head, 0, 9, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new Error(fsErrorMessage(err, file));
  }
  if (head.readUInt32LE(0) === 0x04034b50 || (head[0] === 0x80 && head[1] <= 5)) return readPth(file);
  // safetensors: a little-endian u64 header length (small, so its high bytes are 0), then the JSON header.
  if (file.toLowerCase().endsWith('.safetensors') || (head[6] === 0 && head[7] === 0 && head[8] === 0x7b)) return readSafetensors(file);
  if (file.toLowerCase().endsWith('.h5') || head.toString('latin1', 1, 4) === 'HDF') return readH5(file);
  throw new Error(`${file}: not a weight file Refit can read (expected a PyTorch .pth zip, a .safetensors file or a Keras .h5 file)`);
}

/** The file's SHA-256 and MD5 (Keras states MD5s), in one read. */
async function digests(file: string): Promise<{ sha256: string; md5: string }> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const handle = await open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream()) {
      sha256.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return { sha256: sha256.digest('hex'), md5: md5.digest('hex') };
}

/** A read weight file on `model` by the publisher's names (each converter checks every tensor and shape). */
function convertFor(file: WeightFile, backbone: string, entry: WeightSetEntry, model: tf.LayersModel): Converted {
  switch (entry.publisher) {
    case 'torchvision':
      return convertTorchvision(file, backbone, model);
    case 'timm':
      return convertTimm(file, backbone, entry, model);
    case 'keras-applications':
      return convertKeras(file, backbone, model);
    default:
      throw new Error(`${backbone}: importing ${entry.publisher} weights is not supported`);
  }
}

export interface ImportResult {
  manifest: StoredWeightsManifest;
  dir: string;
  tensors: number;
}

/**
 * Reads `file`, converts it for `backbone`'s weight set `entry`, checks every tensor and shape, and
 * stores it in the user cache. The file's SHA-256 is compared with the publisher's prefix when the
 * file keeps the publisher's name (a renamed or re-saved file is accepted, with checksumVerified false).
 */
export async function importWeightFile(
  backbone: string,
  entry: WeightSetEntry,
  file: string,
  build: VariantBuilder,
  onProgress: (message: string) => void = () => undefined,
): Promise<ImportResult> {
  if (entry.delivery === 'bundled') throw new Error(`${backbone}: the ${entry.id} weights ship with Refit; nothing to import`);
  const spec = getBackboneSpec(backbone);
  onProgress(`reading ${path.basename(file)}`);
  const info = await stat(file).catch((err) => {
    throw new Error(fsErrorMessage(err, file));
  });
  const [weightFile, { sha256: digest, md5 }] = await Promise.all([readWeightFile(file), digests(file)]);
  let checksumVerified = false;
  if (entry.checksum?.algorithm === 'sha256-prefix' && path.basename(file) === entry.fileName) {
    if (!digest.startsWith(entry.checksum.value)) {
      throw new Error(`${file}: SHA-256 ${digest.slice(0, 16)}… does not start with ${entry.checksum.value}, the prefix ${entry.publisher} publishes in the name ${entry.fileName}: the file is damaged or not the published one`);
    }
    checksumVerified = true;
  }
  if (entry.checksum?.algorithm === 'md5' && path.basename(file) === entry.fileName) {
    if (md5 !== entry.checksum.value) {
      throw new Error(`${file}: MD5 ${md5} is not ${entry.checksum.value}, the hash ${entry.publisher} states for ${entry.fileName}: the file is damaged or not the published one`);
    }
    checksumVerified = true;
  }
  onProgress('converting');
  // Shapes do not depend on the input size; the smallest input keeps the check model cheap.
  const model = attachHead(build(spec.minInputSize, entry.variant), buildHead(spec.featureDim, IMAGENET_CLASSES, { kind: 'linear' }));
  let converted;
  try {
    converted = convertFor(weightFile, backbone, entry, model);
  } finally {
    model.dispose();
  }
  const tensors: StoredTensor[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [layer, weights] of converted.layers) {
    for (const [short, t] of weights) {
      tensors.push({ name: `${layer}/${short}`, shape: t.shape, offset });
      chunks.push(t.data);
      offset += t.data.byteLength;
    }
  }
  const manifest: StoredWeightsManifest = {
    format: STORE_FORMAT,
    version: 1,
    backbone,
    set: entry.id,
    publisher: entry.publisher,
    variant: entry.variant,
    preprocessing: entry.effective,
    licence: entry.licence,
    source: { file: path.resolve(file), format: weightFile.format, bytes: info.size, sha256: digest, checksumVerified },
    imported: new Date().toISOString(),
    skipped: converted.skipped,
    tensors,
  };
  const dir = weightSetDir(backbone, entry.id);
  onProgress(`storing ${tensors.length} tensors`);
  await replaceDirAtomic(dir, async (tmp) => {
    const handle = await open(path.join(tmp, 'weights.bin'), 'w');
    try {
      for (const c of chunks) await handle.write(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    } finally {
      await handle.close();
    }
    // weights.json last: its presence is what makes the set visible (and the whole folder is renamed into place).
    const json = await open(path.join(tmp, 'weights.json'), 'w');
    try {
      await json.write(JSON.stringify(manifest, null, 1));
    } finally {
      await json.close();
    }
  });
  return { manifest, dir, tensors: tensors.length };
}

/** Weight-bearing layers that hold fixed, input-size-dependent maps rather than learnt weights (VGG's adaptive pool). */
const FIXED_LAYER = /_avgpool_[wh]$/;

/**
 * Writes a stored set's tensors into `model`'s variables by name. Every weight-bearing layer of the
 * model (except fixed pooling maps) must receive all its weights with matching shapes.
 */
export async function applyStoredWeights(model: tf.LayersModel, manifest: StoredWeightsManifest, dir: string): Promise<void> {
  const file = path.join(dir, 'weights.bin');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(fsErrorMessage(err, file));
  }
  const byName = new Map(manifest.tensors.map((t) => [t.name, t]));
  const problems: string[] = [];
  const writes: [tf.LayerVariable, StoredTensor][] = [];
  const visit = (layer: tf.layers.Layer): void => {
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(inner)) return inner.forEach(visit);
    if (layer.weights.length === 0 || FIXED_LAYER.test(layer.name)) return;
    for (const v of layer.weights) {
      const t = byName.get(v.originalName);
      if (!t) problems.push(`${v.originalName}: not in the stored set`);
      else if (t.shape.join(',') !== v.shape.join(',')) problems.push(`${v.originalName}: stored [${t.shape}], the model needs [${v.shape}]`);
      else if (t.offset + t.shape.reduce((a, b) => a * b, 1) * 4 > bytes.length) problems.push(`${v.originalName}: beyond the end of ${file} (truncated)`);
      else writes.push([v, t]);
    }
  };
  model.layers.forEach(visit);
  if (problems.length) throw new Error(`${dir}: the stored ${manifest.backbone} ${manifest.set} weights do not fit:\n  ${problems.slice(0, 20).join('\n  ')}`);
  // A private copy keeps every float32 view aligned whatever the Buffer pool's offset.
  const data = bytes.byteOffset % 4 === 0 ? bytes : Buffer.from(bytes);
  for (const [v, t] of writes) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    tf.tidy(() => {
      v.write(tf.tensor(new Float32Array(data.buffer, data.byteOffset + t.offset, n), t.shape));
    });
  }
}

export interface LoadedWeights {
  model: tf.LayersModel;
  entry: WeightSetEntry;
  manifest: StoredWeightsManifest;
}

/**
 * A new network carrying stored weights: the backbone alone, or with `head: true` the backbone +
 * the publisher's 1000-class ImageNet classifier (`head_classifier`, softmax) as one model.
 */
export async function loadStoredWeightSet(
  backbone: string,
  request: string,
  build: VariantBuilder,
  options: { inputSize: number; head?: boolean },
): Promise<LoadedWeights & { backbone: tf.LayersModel }> {
  const entry = resolveWeightSet(backbone, request);
  const manifest = readStoredManifest(backbone, entry.id);
  if (!manifest) throw new Error(`${backbone}: the ${entry.id} weights are not in the weights cache`);
  const net = build(options.inputSize, manifest.variant);
  const spec = getBackboneSpec(backbone);
  const model = options.head ? attachHead(net, buildHead(spec.featureDim, IMAGENET_CLASSES, { kind: 'linear' })) : net;
  try {
    await applyStoredWeights(model, manifest, weightSetDir(backbone, entry.id));
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, backbone: net, entry, manifest };
}
