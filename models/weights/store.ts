// The user's weights cache: converted weight sets, one folder per backbone × set, under
// $XDG_CACHE_HOME/refit/weights (or ~/.cache/refit/weights; REFIT_WEIGHTS_DIR overrides it):
//   <root>/<backbone>/<set>/weights.json   what it is: set, variant, preprocessing, source file and its SHA-256, tensor table
//   <root>/<backbone>/<set>/weights.bin    float32 tensors in Refit's layout, by our layer/weight names
// Each folder is written complete and renamed into place (a half-written set never becomes visible).
// No TF.js here: the CLI, config checks and the run launcher ask what is present without loading it.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Preprocessing } from '../../main/api/models';
import { weightSetsOf, type ArchitectureVariant, type WeightSetEntry, type WeightSetId } from '../weight-sets';

export const STORE_FORMAT = 'refit-weights';

export interface StoredTensor {
  /** Our layer name + '/' + weight name, e.g. `stage1_block1_conv1/kernel`. */
  name: string;
  shape: number[];
  /** Byte offset in weights.bin (float32 little-endian). */
  offset: number;
}

export interface StoredWeightsManifest {
  format: typeof STORE_FORMAT;
  version: 1;
  backbone: string;
  set: WeightSetId;
  publisher: string;
  variant: ArchitectureVariant;
  preprocessing: Preprocessing;
  licence: string;
  source: { file: string; format: string; bytes: number; sha256: string; checksumVerified: boolean };
  imported: string;
  /** Source tensors left out by design (BN counters, auxiliary heads). */
  skipped: string[];
  tensors: StoredTensor[];
}

/** The root of the weights cache. */
export function weightsRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REFIT_WEIGHTS_DIR) return path.resolve(env.REFIT_WEIGHTS_DIR);
  const base = env.XDG_CACHE_HOME
    ? env.XDG_CACHE_HOME
    : process.platform === 'win32'
      ? (env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'))
      : process.platform === 'darwin'
        ? path.join(os.homedir(), 'Library', 'Caches')
        : path.join(os.homedir(), '.cache');
  return path.join(base, 'refit', 'weights');
}

export function weightSetDir(backbone: string, set: WeightSetId, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(backbone) || !/^[a-z0-9][a-z0-9.-]*$/.test(set)) throw new Error(`invalid weight set name ${backbone}/${set}`);
  return path.join(weightsRoot(env), backbone, set);
}

/** The stored manifest of a set, or undefined when it is not in the cache (or unreadable). */
export function readStoredManifest(backbone: string, set: WeightSetId, env: NodeJS.ProcessEnv = process.env): StoredWeightsManifest | undefined {
  const file = path.join(weightSetDir(backbone, set, env), 'weights.json');
  if (!existsSync(file)) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as StoredWeightsManifest;
    return m.format === STORE_FORMAT && m.version === 1 && m.backbone === backbone && m.set === set ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a catalogued set can be loaded now: bundled with Refit, or imported into the cache. */
export function weightSetPresent(backbone: string, entry: WeightSetEntry, env: NodeJS.ProcessEnv = process.env): boolean {
  return entry.delivery === 'bundled' || readStoredManifest(backbone, entry.id, env) !== undefined;
}

/**
 * The weights a backbone can start from now: 'imagenet' when any set is present (bundled or imported),
 * followed by the ids of the imported sets (which can also be named explicitly).
 */
export function availableWeights(backbone: string, env: NodeJS.ProcessEnv = process.env): WeightSetId[] {
  const present = weightSetsOf(backbone).filter((s) => weightSetPresent(backbone, s, env));
  return present.length ? ['imagenet', ...present.filter((s) => s.delivery === 'file').map((s) => s.id)] : [];
}

/**
 * The catalogue entry a request names: a set id, or 'imagenet' = the default set when present, else
 * the first present set. Throws a message that says how to get the weights when none is present.
 */
export function resolveWeightSet(backbone: string, request: WeightSetId, env: NodeJS.ProcessEnv = process.env): WeightSetEntry {
  const sets = weightSetsOf(backbone);
  if (sets.length === 0) throw new Error(`${backbone} has no ImageNet weights in Refit's catalogue yet`);
  if (request !== 'imagenet') {
    const entry = sets.find((s) => s.id === request);
    if (!entry) throw new Error(`${backbone} has no weight set "${request}" (known: ${sets.map((s) => s.id).join(', ')})`);
    if (!weightSetPresent(backbone, entry, env)) throw new Error(notPresentMessage(backbone, entry, env));
    return entry;
  }
  const present = sets.filter((s) => weightSetPresent(backbone, s, env));
  const chosen = present.find((s) => s.default) ?? present[0];
  if (!chosen) throw new Error(notPresentMessage(backbone, sets.find((s) => s.default) ?? sets[0], env));
  return chosen;
}

function notPresentMessage(backbone: string, entry: WeightSetEntry, env: NodeJS.ProcessEnv): string {
  return (
    `${backbone}: the ${entry.publisher} ImageNet weights (${entry.id}) are not on this machine. ` +
    (entry.url ? `Run: refit weights get ${backbone} --source ${entry.id}  (downloads ${entry.url}), or download ${entry.fileName} elsewhere and run: ` : `Download ${entry.fileName}, then run: `) +
    `refit weights import ${backbone} ${entry.fileName} --source ${entry.id}  (stored under ${weightsRoot(env)})`
  );
}
