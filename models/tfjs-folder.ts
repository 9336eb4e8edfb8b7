// Reads and writes TF.js layers-model folders (model.json + binary weight shards) on disk.
// TF.js without tfjs-node has no file:// handler, so this is our own.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

export interface TfjsFolder {
  /** Absolute path of model.json. */
  modelJsonPath: string;
  modelJson: tf.io.ModelJSON;
  modelTopology: {};
  weightSpecs: tf.io.WeightsManifestEntry[];
  /** All shards concatenated in manifest order. */
  weightData: ArrayBuffer;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Accepts a folder holding model.json, or the path of a .json file itself. */
export function modelJsonPathOf(location: string): string {
  const resolved = path.resolve(location);
  return resolved.toLowerCase().endsWith('.json') ? resolved : path.join(resolved, 'model.json');
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function readModelJson(jsonPath: string): Promise<tf.io.ModelJSON> {
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      throw new Error(`Not a TF.js model folder: ${jsonPath} does not exist`);
    }
    throw new Error(`Cannot read ${jsonPath}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${jsonPath} is not valid JSON: ${(err as Error).message}`);
  }
  const model = json as Partial<tf.io.ModelJSON> & { format?: string };
  if (model === null || typeof model !== 'object' || !model.modelTopology || !Array.isArray(model.weightsManifest)) {
    throw new Error(`${jsonPath} is not a TF.js model.json (it needs "modelTopology" and "weightsManifest")`);
  }
  // Graph models (format "graph-model", or a topology with a "node" list) are not layers models.
  const topology = model.modelTopology as Record<string, unknown>;
  if ((model.format !== undefined && model.format !== 'layers-model') || Array.isArray(topology.node)) {
    throw new Error(`${jsonPath} is not a TF.js layers model (format: ${model.format ?? 'graph'})`);
  }
  return model as tf.io.ModelJSON;
}

function bytesOf(spec: tf.io.WeightsManifestEntry): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const perElement = BYTES_PER_ELEMENT[dtype];
  if (perElement === undefined) throw new Error(`weight ${spec.name} has unsupported dtype ${dtype}`);
  return tf.util.sizeFromShape(spec.shape) * perElement;
}

async function readShards(jsonPath: string, manifest: tf.io.WeightsManifestConfig): Promise<ArrayBuffer> {
  const dir = path.dirname(jsonPath);
  const buffers: Uint8Array[] = [];
  for (const group of manifest) {
    const expected = group.weights.reduce((sum, spec) => sum + bytesOf(spec), 0);
    const shards: { file: string; bytes: Uint8Array }[] = [];
    for (const shard of group.paths) {
      const file = path.join(dir, shard);
      try {
        shards.push({ file, bytes: await readFile(file) });
      } catch (err) {
        if (errorCode(err) === 'ENOENT') {
          throw new Error(`Weight shard ${file} is missing (listed in ${jsonPath})`);
        }
        throw new Error(`Cannot read weight shard ${file}: ${(err as Error).message}`);
      }
    }
    const actual = shards.reduce((sum, s) => sum + s.bytes.byteLength, 0);
    if (actual !== expected) {
      // Converters write equal-sized shards except the last, so an odd-sized earlier shard is the culprit.
      const full = Math.max(0, ...shards.slice(0, -1).map((s) => s.bytes.byteLength));
      const odd = shards.slice(0, -1).find((s) => s.bytes.byteLength !== full) ?? shards[shards.length - 1];
      const detail = shards.map((s) => `${path.basename(s.file)} ${s.bytes.byteLength} B`).join(', ');
      throw new Error(
        `Weight shard ${odd?.file ?? dir} looks ${actual < expected ? 'truncated' : 'too long'}: ` +
          `the weights listed in ${jsonPath} need ${expected} bytes but the shards hold ${actual} (${detail})`,
      );
    }
    buffers.push(...shards.map((s) => s.bytes));
  }
  const total = buffers.reduce((sum, b) => sum + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    out.set(b, offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

/** Reads model.json and every shard; checks that the shards hold exactly the bytes the manifest lists. */
export async function readTfjsFolder(location: string): Promise<TfjsFolder> {
  const modelJsonPath = modelJsonPathOf(location);
  const modelJson = await readModelJson(modelJsonPath);
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const weightData = await readShards(modelJsonPath, modelJson.weightsManifest);
  return { modelJsonPath, modelJson, modelTopology: modelJson.modelTopology, weightSpecs, weightData };
}

/** Decodes every weight of the folder into a tensor, keyed by its saved name (e.g. `conv1/kernel`). The caller disposes them. */
export async function readTfjsWeights(location: string): Promise<Map<string, tf.Tensor>> {
  const folder = await readTfjsFolder(location);
  return new Map(Object.entries(tf.io.decodeWeights(folder.weightData, folder.weightSpecs)));
}

async function loadArtifacts(location: string): Promise<tf.io.ModelArtifacts> {
  const folder = await readTfjsFolder(location);
  const { modelJson } = folder;
  return {
    modelTopology: folder.modelTopology,
    weightSpecs: folder.weightSpecs,
    weightData: folder.weightData,
    ...(modelJson.trainingConfig ? { trainingConfig: modelJson.trainingConfig } : {}),
    ...(modelJson.format ? { format: modelJson.format } : {}),
    ...(modelJson.generatedBy ? { generatedBy: modelJson.generatedBy } : {}),
    ...(modelJson.convertedBy !== undefined ? { convertedBy: modelJson.convertedBy } : {}),
    ...(modelJson.userDefinedMetadata ? { userDefinedMetadata: modelJson.userDefinedMetadata } : {}),
  };
}

export interface SaveOptions {
  /** Largest shard in bytes; TF.js's own default is 4 MiB. */
  shardBytes?: number;
}

async function saveArtifacts(location: string, artifacts: tf.io.ModelArtifacts, options: SaveOptions): Promise<tf.io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new Error('Saving graph models (binary topology) to a folder is not supported');
  }
  const jsonPath = modelJsonPathOf(location);
  const dir = path.dirname(jsonPath);
  await mkdir(dir, { recursive: true });
  const data = new Uint8Array(tf.io.concatenateArrayBuffers(artifacts.weightData ?? new ArrayBuffer(0)));
  const shardBytes = options.shardBytes ?? 4 * 1024 * 1024;
  const count = Math.max(1, Math.ceil(data.byteLength / shardBytes));
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `group1-shard${i + 1}of${count}.bin`;
    await writeFile(path.join(dir, name), data.subarray(i * shardBytes, (i + 1) * shardBytes));
    paths.push(name);
  }
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
  await writeFile(jsonPath, JSON.stringify(modelJson));
  return {
    modelArtifactsInfo: {
      dateSaved: new Date(),
      modelTopologyType: 'JSON',
      modelTopologyBytes: JSON.stringify(modelJson.modelTopology).length,
      weightSpecsBytes: JSON.stringify(modelJson.weightsManifest).length,
      weightDataBytes: data.byteLength,
    },
  };
}

/**
 * An IOHandler for a model folder on disk: `tf.loadLayersModel(tfjsFolderHandler(dir))` and
 * `model.save(tfjsFolderHandler(dir))`. `location` is the folder or its model.json.
 */
export function tfjsFolderHandler(location: string, options: SaveOptions = {}): tf.io.IOHandler {
  return {
    load: () => loadArtifacts(location),
    save: (artifacts) => saveArtifacts(location, artifacts, options),
  };
}
