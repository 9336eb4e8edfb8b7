// Keras `.h5` weight files (HDF5, read with jsfive — pure JS, nothing to bundle but JS) in the layout
// Keras Applications publishes and `save_weights_to_hdf5_group` writes: a root attribute `layer_names`
// (or the same under the group `model_weights` in a whole-model file), and per layer a group whose
// attribute `weight_names` lists its datasets in order (`block1_conv1/kernel:0` in Keras 2 files,
// `block1_conv1/kernel` in Keras 3). Tensors are named `<layer>/<weight>` (`block1_conv1/kernel`), in
// the file's layer order, in Keras' own layouts (HWIO kernels, Dense [in, out]).
/// <reference path="./jsfive.d.ts" />
import { readFile } from 'node:fs/promises';
import * as hdf5 from 'jsfive';
import { fsErrorMessage } from '../../main/engine/errors';
import { numel, type RawTensor, type WeightFile } from './tensors';

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]); // \x89HDF\r\n\x1a\n
const DTYPES: Record<string, string> = { '<f4': 'float32', '<f8': 'float64', '<f2': 'float16' };

export async function readH5(file: string): Promise<WeightFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(fsErrorMessage(err, file));
  }
  return parseKerasH5(bytes, file);
}

/** The file length the HDF5 superblock records (its end-of-file address), or undefined for an unknown version. */
function recordedLength(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[8];
  // Superblock v0/v1: 8-byte addresses (h5py's default), end-of-file address at 40 (v0) / 44 (v1); v2/v3 at 28.
  const at = version === 0 ? 40 : version === 1 ? 44 : version === 2 || version === 3 ? 28 : undefined;
  if (at === undefined || bytes.byteLength < at + 8) return undefined;
  if ((version <= 1 && bytes[13] !== 8) || (version >= 2 && bytes[9] !== 8)) return undefined;
  return Number(view.getBigUint64(at, true));
}

/** A string attribute element. Keras 2 (and h5py for numpy byte arrays) stores fixed-length strings, padded with NULs. */
const text = (v: unknown): string => (typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v)).replace(/[\0 ]+$/, '');

/** A string-list attribute; Keras splits long ones into `name0`, `name1`, … (save_attributes_to_hdf5_group). */
function stringList(attrs: Record<string, unknown>, name: string): string[] | undefined {
  const one = attrs[name];
  if (one !== undefined) return Array.from(one as ArrayLike<unknown>, text);
  if (attrs[`${name}0`] === undefined) return undefined;
  const all: string[] = [];
  for (let i = 0; attrs[`${name}${i}`] !== undefined; i++) all.push(...Array.from(attrs[`${name}${i}`] as ArrayLike<unknown>, text));
  return all;
}

export function parseKerasH5(bytes: Buffer, origin: string): WeightFile {
  if (bytes.byteLength < 8 || !bytes.subarray(0, 8).equals(SIGNATURE)) throw new Error(`${origin}: not an HDF5 file (it does not start with the HDF5 signature)`);
  const length = recordedLength(bytes);
  if (length !== undefined && bytes.byteLength < length) {
    throw new Error(`${origin}: truncated HDF5 file: its superblock records ${length} bytes, the file has ${bytes.byteLength}`);
  }
  const bad = (why: string) => new Error(`${origin}: not a Keras weights file: ${why}`);
  const tensors = new Map<string, RawTensor>();
  try {
    const f = new hdf5.File(new Uint8Array(bytes).buffer, origin);
    const root = stringList(f.attrs, 'layer_names') ? f : f.keys.includes('model_weights') ? (f.get('model_weights') as hdf5.Group) : undefined;
    const layers = root && stringList(root.attrs, 'layer_names');
    if (!root || !layers) throw bad(`no layer_names attribute at its root or in model_weights (groups: ${f.keys.slice(0, 8).join(', ')})`);
    for (const layer of layers) {
      const group = root.get(layer);
      if (!(group instanceof hdf5.Group)) throw bad(`layer_names lists ${layer}, but the file has no group of that name`);
      for (const weight of stringList(group.attrs, 'weight_names') ?? []) {
        const data = group.get(weight);
        if (!(data instanceof hdf5.Dataset)) throw bad(`${layer} lists the weight ${weight}, but it has no such dataset`);
        const dtype = typeof data.dtype === 'string' ? DTYPES[data.dtype] : undefined;
        if (!dtype) throw new Error(`${origin}: ${layer}/${weight} has dtype ${JSON.stringify(data.dtype)}; Refit reads float32, float64 and float16 weights`);
        const shape = [...data.shape];
        const values = Float32Array.from(data.value);
        if (values.length !== numel(shape)) throw bad(`${layer}/${weight} holds ${values.length} values for its shape [${shape.join(',')}]`);
        // `block1_conv1/kernel:0` → `block1_conv1/kernel`: the layer's name and the weight's own name.
        const short = weight.slice(weight.lastIndexOf('/') + 1).replace(/:\d+$/, '');
        tensors.set(`${layer}/${short}`, { shape, data: values, dtype });
      }
    }
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(origin)) throw err;
    // jsfive throws strings and plain errors on damaged structure.
    throw new Error(`${origin}: damaged HDF5 file (${err instanceof Error ? err.message : String(err)})`);
  }
  if (tensors.size === 0) throw bad('it holds no weights');
  return { origin, format: 'h5', tensors };
}
