// `.safetensors`: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets: [begin, end]}, __metadata__?}, then the raw little-endian data. F32, F16, BF16 (and F64)
// are read; offsets are checked to lie inside the file, to match the shape and not to overlap.
import { readFile } from 'node:fs/promises';
import { fsErrorMessage } from '../../main/engine/errors';
import { DTYPE_BYTES, decodeElements, numel, type RawTensor, type WeightFile } from './tensors';

const DTYPES: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64' };

export async function readSafetensors(file: string): Promise<WeightFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new Error(fsErrorMessage(err, file));
  }
  return parseSafetensors(bytes, file);
}

export function parseSafetensors(bytes: Uint8Array, origin: string): WeightFile {
  const bad = (why: string) => new Error(`${origin}: not a valid safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw bad(`only ${bytes.byteLength} bytes`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > 100_000_000 || 8 + headerLength > bytes.byteLength) throw bad(`its header claims ${headerLength} bytes but the file has ${bytes.byteLength} (truncated?)`);
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (err) {
    throw bad(`the header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('the header is not a JSON object');
  const data = bytes.subarray(8 + headerLength);
  const tensors = new Map<string, RawTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = typeof info?.dtype === 'string' ? DTYPES[info.dtype] : undefined;
    if (!dtype) throw new Error(`${origin}: tensor ${name} has dtype ${JSON.stringify(info?.dtype)}; Refit reads F32, F16, BF16, F64 and I64`);
    const shape = info.shape;
    const offsets = info.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor ${name} has no valid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor ${name} has no valid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) throw bad(`tensor ${name} ${JSON.stringify(shape)} ${info.dtype} needs ${expected} bytes, its offsets give ${end - begin}`);
    if (end > data.byteLength) throw bad(`tensor ${name} ends at byte ${end} of a ${data.byteLength}-byte data section (truncated?)`);
    ranges.push([begin, end, name]);
    tensors.set(name, { shape: shape as number[], data: decodeElements(data, begin, numel(shape), dtype), dtype });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw bad(`tensors ${ranges[i - 1][2]} and ${ranges[i][2]} overlap`);
  }
  return { origin, format: 'safetensors', tensors };
}
