// Loads weights saved by another TF.js layers model into one of ours, layer by layer:
// by our layer names, else through an explicit name map, else by the order of weight-bearing layers.
import * as tf from '@tensorflow/tfjs';
import { readTfjsFolder, type TfjsFolder } from './tfjs-folder';

/** One weight-bearing layer of a source model: its weights by short name (`kernel`, `gamma`, …) in saved order. */
export interface SourceLayer {
  name: string;
  weights: Map<string, tf.Tensor>;
}

export interface WeightSource {
  /** Where the weights came from, for messages. */
  origin: string;
  /** Weight-bearing layers in the source model's layer order. */
  layers: SourceLayer[];
}

export type NameMap = Record<string, string> | ((ourLayer: string) => string | undefined);

export interface ImportOptions {
  /** Our layer name → source layer name, for layers whose names differ. */
  nameMap?: NameMap;
}

export interface ImportReport {
  origin: string;
  /** Our layers that received weights. */
  matched: number;
  byName: number;
  byMap: number;
  byOrder: number;
  tensors: number;
  /** Source layers nobody took (e.g. a classifier when importing into a backbone). */
  skipped: { name: string; shapes: number[][] }[];
}

interface OurLayer {
  name: string;
  weights: tf.LayerVariable[];
}

/** Splits `block/conv/kernel` into layer `block/conv` and weight `kernel`. */
function splitWeightName(name: string): [string, string] {
  const cut = name.lastIndexOf('/');
  return cut < 0 ? ['', name] : [name.slice(0, cut), name.slice(cut + 1)];
}

/** Layer names of a (possibly nested) Keras/TF.js topology, in order. */
function topologyLayerNames(topology: unknown): string[] {
  type LayerJson = { config?: { name?: unknown; layers?: unknown } };
  const names: string[] = [];
  const visit = (layers: unknown): void => {
    if (!Array.isArray(layers)) return;
    for (const layer of layers as LayerJson[]) {
      if (typeof layer?.config?.name === 'string') names.push(layer.config.name);
      visit(layer?.config?.layers);
    }
  };
  // Keras writes {model_config: {config: {layers}}}, tfjs {config: {layers}}; old Sequentials {config: [layers]}.
  const t = topology as { model_config?: { config?: { layers?: unknown } }; config?: { layers?: unknown } | unknown[] } | undefined;
  const config = t?.model_config?.config ?? t?.config;
  visit(Array.isArray(config) ? config : config?.layers);
  return names;
}

/** Groups named tensors into layers, ordered as in the topology when one is given, else as given. */
export function weightSourceFromTensors(origin: string, tensors: Map<string, tf.Tensor>, topology?: unknown): WeightSource {
  const byLayer = new Map<string, SourceLayer>();
  for (const [fullName, tensor] of tensors) {
    const [layerName, weightName] = splitWeightName(fullName);
    let layer = byLayer.get(layerName);
    if (!layer) byLayer.set(layerName, (layer = { name: layerName, weights: new Map() }));
    layer.weights.set(weightName, tensor);
  }
  const order = new Map(topologyLayerNames(topology).map((name, i) => [name, i]));
  const rank = (name: string) => order.get(name) ?? order.get(name.split('/').pop()!) ?? Number.MAX_SAFE_INTEGER;
  const layers = [...byLayer.values()];
  const position = new Map(layers.map((l, i) => [l, i]));
  layers.sort((a, b) => rank(a.name) - rank(b.name) || position.get(a)! - position.get(b)!);
  return { origin, layers };
}

/** Reads a TF.js layers-model folder as a weight source. Dispose it with `disposeWeightSource`. */
export async function readWeightSource(folder: string): Promise<WeightSource> {
  return weightSourceFromFolder(await readTfjsFolder(folder));
}

/** Decodes an already-read folder into a weight source. */
export function weightSourceFromFolder(data: TfjsFolder): WeightSource {
  const tensors = new Map(Object.entries(tf.io.decodeWeights(data.weightData, data.weightSpecs)));
  return weightSourceFromTensors(data.modelJsonPath, tensors, data.modelTopology);
}

export function disposeWeightSource(source: WeightSource): void {
  for (const layer of source.layers) for (const t of layer.weights.values()) t.dispose();
}

/** Weight-bearing leaf layers of a model, nested models flattened, in layer order. */
function ourLayers(model: tf.LayersModel): OurLayer[] {
  const out: OurLayer[] = [];
  const visit = (layer: tf.layers.Layer): void => {
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(inner)) inner.forEach(visit);
    else if (layer.weights.length > 0) out.push({ name: layer.name, weights: layer.weights });
  };
  model.layers.forEach(visit);
  return out;
}

const shortName = (v: tf.LayerVariable) => splitWeightName(v.originalName)[1];
const fmt = (shape: readonly (number | null)[]) => `[${shape.join(',')}]`;
const ourShapes = (l: OurLayer) => l.weights.map((w) => fmt(w.shape)).join(' ');
const theirShapes = (l: SourceLayer) => [...l.weights].map(([n, t]) => `${n}${fmt(t.shape)}`).join(' ');

/** Pairs our variables with source tensors: by weight name when all names are present, else by position; undefined if shapes differ. */
function fit(ours: OurLayer, theirs: SourceLayer): [tf.LayerVariable, tf.Tensor][] | undefined {
  if (ours.weights.length !== theirs.weights.size) return undefined;
  const byName = ours.weights.every((w) => theirs.weights.has(shortName(w)));
  const tensors = [...theirs.weights.values()];
  const pairs = ours.weights.map((w, i): [tf.LayerVariable, tf.Tensor] => [w, byName ? theirs.weights.get(shortName(w))! : tensors[i]]);
  const ok = pairs.every(([w, t]) => tf.util.arraysEqual(w.shape as number[], t.shape) && w.dtype === t.dtype);
  return ok ? pairs : undefined;
}

function lookup(map: NameMap | undefined, name: string): string | undefined {
  if (!map) return undefined;
  return typeof map === 'function' ? map(name) : map[name];
}

/**
 * Copies weights from `source` (a TF.js layers-model folder or an already-read WeightSource) into
 * `model`. Nothing is written unless every weight-bearing layer of ours finds a fitting source layer;
 * otherwise one Error lists what did not fit. Source layers left over are reported as skipped.
 */
export async function importWeights(model: tf.LayersModel, source: string | WeightSource, options: ImportOptions = {}): Promise<ImportReport> {
  const src = typeof source === 'string' ? await readWeightSource(source) : source;
  try {
    return importFrom(model, src, options);
  } finally {
    if (typeof source === 'string') disposeWeightSource(src);
  }
}

function importFrom(model: tf.LayersModel, src: WeightSource, options: ImportOptions): ImportReport {
  const ours = ourLayers(model);
  const theirs = new Map(src.layers.map((l) => [l.name, l]));
  const used = new Set<SourceLayer>();
  const assignments: [tf.LayerVariable, tf.Tensor][] = [];
  const problems: string[] = [];
  const counts = { byName: 0, byMap: 0, byOrder: 0 };
  const leftovers: OurLayer[] = [];

  for (const layer of ours) {
    const mapped = lookup(options.nameMap, layer.name);
    const [candidate, how] = theirs.has(layer.name)
      ? [theirs.get(layer.name)!, 'byName' as const]
      : mapped !== undefined
        ? [theirs.get(mapped), 'byMap' as const]
        : [undefined, undefined];
    if (!how) {
      leftovers.push(layer);
      continue;
    }
    if (!candidate) {
      problems.push(`ours ${layer.name} ${ourShapes(layer)} → theirs ${mapped}: no such layer in the source`);
      continue;
    }
    const pairs = used.has(candidate) ? undefined : fit(layer, candidate);
    if (!pairs) {
      const why = used.has(candidate) ? ' (already taken)' : '';
      problems.push(`ours ${layer.name} ${ourShapes(layer)} ≠ theirs ${candidate.name} ${theirShapes(candidate)}${why}`);
      continue;
    }
    used.add(candidate);
    assignments.push(...pairs);
    counts[how]++;
  }

  // Whatever names did not settle is matched by order: the n-th leftover of ours takes the n-th unused source layer.
  const spare = src.layers.filter((l) => !used.has(l));
  leftovers.forEach((layer, i) => {
    const candidate = spare[i];
    const pairs = candidate && fit(layer, candidate);
    if (!pairs) {
      problems.push(
        candidate
          ? `ours ${layer.name} ${ourShapes(layer)} ≠ theirs ${candidate.name} ${theirShapes(candidate)} (matched by order)`
          : `ours ${layer.name} ${ourShapes(layer)}: the source has no layer left to match by order`,
      );
      return;
    }
    used.add(candidate);
    assignments.push(...pairs);
    counts.byOrder++;
  });

  if (problems.length > 0) {
    const unused = src.layers.filter((l) => !used.has(l)).map((l) => `  theirs ${l.name} ${theirShapes(l)}`);
    throw new Error(
      `Cannot import weights from ${src.origin} into ${model.name}: ${problems.length} of our ${ours.length} ` +
        `weight-bearing layers do not fit:\n  ${problems.join('\n  ')}` +
        (unused.length ? `\nUnused source layers:\n${unused.join('\n')}` : ''),
    );
  }
  for (const [variable, tensor] of assignments) variable.write(tensor);
  return {
    origin: src.origin,
    matched: counts.byName + counts.byMap + counts.byOrder,
    ...counts,
    tensors: assignments.length,
    skipped: src.layers.filter((l) => !used.has(l)).map((l) => ({ name: l.name, shapes: [...l.weights.values()].map((t) => t.shape) })),
  };
}
