// The tensors a weight file holds, before conversion: name → shape + float32 values (whatever the
// file stored: float32, float16, bfloat16, float64, or integers such as BN's num_batches_tracked).

export interface RawTensor {
  shape: number[];
  /** Values in row-major (C) order. */
  data: Float32Array;
  /** The dtype the file stored. */
  dtype: string;
}

/** A weight file read into memory: its tensors by name, in file order. */
export interface WeightFile {
  /** The file's path, for messages. */
  origin: string;
  format: 'pth' | 'safetensors' | 'tfjs-folder' | 'h5';
  tensors: Map<string, RawTensor>;
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = halfToFloat(i);
  return t;
})();

/** Bytes per element of each stored dtype. */
export const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/**
 * `count` little-endian elements of `dtype` starting at byte `offset` of `bytes`, as float32.
 * float32 data aligned to 4 bytes is returned as a view (no copy).
 */
export function decodeElements(bytes: Uint8Array, offset: number, count: number, dtype: string): Float32Array {
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw new Error(`unsupported dtype ${dtype}`);
  if (offset < 0 || offset + count * size > bytes.byteLength) throw new RangeError(`needs bytes ${offset}..${offset + count * size} of ${bytes.byteLength}`);
  const start = bytes.byteOffset + offset;
  if (dtype === 'float32' && start % 4 === 0) return new Float32Array(bytes.buffer, start, count);
  const view = new DataView(bytes.buffer, start, count * size);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'float16':
      for (let i = 0; i < count; i++) out[i] = HALF_TABLE[view.getUint16(i * 2, true)];
      break;
    case 'bfloat16': {
      const f = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        f.setUint32(0, view.getUint16(i * 2, true) << 16);
        out[i] = f.getFloat32(0);
      }
      break;
    }
    case 'int64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      break;
    case 'int32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'int8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    default: // uint8, bool
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
  }
  return out;
}
