// Preprocessing on plain arrays (no TF.js): RGB bytes in [0, 255] → what a backbone was trained on,
// written straight into a batch buffer. The same arithmetic as models/preprocess.ts in float32 (each
// step rounded to float32 as TF.js does), so both paths give identical inputs.
import type { Preprocessing } from '../../models/types';

const f = Math.fround;

/** Writes one image (`rgb`: size×size×3 bytes, RGB, channels last) preprocessed into `out` at `offset` (NHWC). */
export function preprocessInto(out: Float32Array, offset: number, rgb: Uint8Array, p: Preprocessing): void {
  const n = rgb.length;
  if (offset + n > out.length) throw new Error(`preprocessInto: ${n} values do not fit at ${offset} of ${out.length}`);
  switch (p.mode) {
    case 'caffe': {
      // RGB → BGR, minus the BGR mean.
      const [m0, m1, m2] = p.mean.map(f);
      for (let i = 0; i < n; i += 3) {
        out[offset + i] = rgb[i + 2] - m0;
        out[offset + i + 1] = rgb[i + 1] - m1;
        out[offset + i + 2] = rgb[i] - m2;
      }
      return;
    }
    case 'torch': {
      const mean = p.mean.map(f);
      const std = p.std.map(f);
      for (let i = 0; i < n; i++) out[offset + i] = f(f(f(rgb[i] / 255) - mean[i % 3]) / std[i % 3]);
      return;
    }
    case 'tf':
      for (let i = 0; i < n; i++) out[offset + i] = f(f(rgb[i] / 127.5) - 1);
      return;
    default:
      throw new Error(`preprocess: unknown mode "${(p as { mode: string }).mode}"`);
  }
}
