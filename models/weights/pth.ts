// PyTorch `.pth` files as torch.save writes them since 1.6: a zip holding `<name>/data.pkl` (the
// pickled state_dict, read with the restricted unpickler in ./pickle.ts) and one `<name>/data/<key>`
// entry per storage. The older non-zip format (a bare pickle stream) is refused with a clear message.
import { readFile } from 'node:fs/promises';
import { fsErrorMessage } from '../../main/engine/errors';
import { PyDict, storageRef, unpickle, type StorageRef, type TensorRef } from './pickle';
import { DTYPE_BYTES, decodeElements, numel, type RawTensor, type WeightFile } from './tensors';
import { ZipArchive } from './zip';

/** Reads a state_dict saved with torch.save into float32 tensors. */
export async function readPth(file: string): Promise<WeightFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(fsErrorMessage(err, file));
  }
  return parsePth(bytes, file);
}

export function parsePth(bytes: Buffer, origin: string): WeightFile {
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    throw new Error(`${origin}: a PyTorch file in the legacy (pre-1.6, non-zip) format; re-save it with torch.save in a current PyTorch`);
  }
  const zip = ZipArchive.open(bytes, origin);
  const pkl = [...zip.entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new Error(`${origin}: a zip without <name>/data.pkl, so not a file written by torch.save`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const storages = new Map<string, { ref: StorageRef; data: Float32Array }>();
  const load = (pid: unknown) => {
    const ref = storageRef(pid, origin);
    const entry = `${prefix}data/${ref.key}`;
    let cached = storages.get(ref.key);
    if (!cached) {
      if (!zip.has(entry)) throw new Error(`${origin}: storage ${ref.key} is missing from the archive (${entry})`);
      const raw = zip.read(entry);
      const need = ref.numel * DTYPE_BYTES[ref.dtype];
      if (raw.length < need) throw new Error(`${origin}: storage ${entry} holds ${raw.length} bytes, ${ref.numel} ${ref.dtype} values need ${need}`);
      cached = { ref, data: decodeElements(raw, 0, ref.numel, ref.dtype) };
      storages.set(ref.key, cached);
    }
    return ref;
  };
  const state = unpickle(zip.read(pkl), origin, load);
  if (!(state instanceof PyDict)) throw new Error(`${origin}: the pickle holds no state_dict (expected an OrderedDict of tensors); save model.state_dict(), not the model`);
  const tensors = new Map<string, RawTensor>();
  for (const [name, value] of state) {
    const t = value as TensorRef;
    if (typeof name !== 'string' || t?.kind !== 'tensor') throw new Error(`${origin}: state_dict entry ${String(name)} is not a tensor`);
    const storage = storages.get(t.storage.key)!;
    tensors.set(name, { shape: t.shape, data: gather(storage.data, t, `${origin}: ${name}`), dtype: t.storage.dtype });
  }
  return { origin, format: 'pth', tensors };
}

/** The tensor's elements in row-major order (a view when it is contiguous). */
function gather(storage: Float32Array, t: TensorRef, where: string): Float32Array {
  const n = numel(t.shape);
  if (n === 0) return new Float32Array(0);
  // The largest index the view touches must lie inside the storage.
  const last = t.offset + t.shape.reduce((s, d, i) => s + (d - 1) * t.stride[i], 0);
  if (last >= storage.length) throw new Error(`${where}: the tensor reaches element ${last} of a storage of ${storage.length}`);
  let contiguous = true;
  for (let i = t.shape.length - 1, expected = 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected) contiguous = false;
    expected *= t.shape[i];
  }
  if (contiguous) return storage.subarray(t.offset, t.offset + n);
  const out = new Float32Array(n);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let src = t.offset;
    for (let d = 0; d < index.length; d++) src += index[d] * t.stride[d];
    out[k] = storage[src];
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}
