// The filter-gradient formulations of the ONNX training graph (models/onnx-train/graph.ts: runs of a flat
// padded input at stride 1, strided windows cut by unit kernels with one Gemm or one Gemm per kernel offset
// for large inputs, the roles-swapped convolution for strided
// few-channel stems, the grouped one for depthwise) against a direct sum over batch, output pixels and
// kernel offsets, run in onnxruntime-node. The per-network tests against TF.js only ever reach the
// formulations their small shapes select; this one forces each.
import { describe, it, expect } from 'vitest';
import * as ort from 'onnxruntime-node';
import { TrainGraph, type TrainGraphOptions } from '../../models/onnx-train/graph';
import { seeded } from './onnx-train-check';

interface Case {
  label: string;
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  depthwise?: boolean;
  options?: TrainGraphOptions;
}

/** dL/dW[o][ci][u][v] = Σ_{b,y,x} gy[b][o][y][x] · x[b][ci or o][y·s − pt + u][x·s − pl + v]. */
function reference(cs: Case, x: Float32Array, gy: Float32Array, oh: number, ow: number): Float64Array {
  const { n, c, h, w, o, k, strides, pads, depthwise } = cs;
  const cg = depthwise ? 1 : c;
  const out = new Float64Array(o * cg * k[0] * k[1]);
  for (let f = 0; f < o; f++)
    for (let ci = 0; ci < cg; ci++)
      for (let u = 0; u < k[0]; u++)
        for (let v = 0; v < k[1]; v++) {
          const xc = depthwise ? f : ci;
          let s = 0;
          for (let b = 0; b < n; b++)
            for (let y = 0; y < oh; y++)
              for (let z = 0; z < ow; z++) {
                const iy = y * strides[0] - pads[0] + u;
                const iz = z * strides[1] - pads[1] + v;
                if (iy < 0 || iy >= h || iz < 0 || iz >= w) continue;
                s += gy[((b * o + f) * oh + y) * ow + z] * x[((b * c + xc) * h + iy) * w + iz];
              }
          out[((f * cg + ci) * k[0] + u) * k[1] + v] = s;
        }
  return out;
}

async function filterGrad(cs: Case): Promise<{ got: Float32Array; want: Float64Array; ops: string[] }> {
  const { n, c, h, w, o, k, strides, pads, depthwise } = cs;
  const oh = Math.floor((h + pads[0] + pads[2] - k[0]) / strides[0]) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - k[1]) / strides[1]) + 1;
  const g = new TrainGraph(cs.options);
  const xv = g.input('x', [n, c, h, w]);
  const wv = g.input('w', [o, depthwise ? 1 : c, k[0], k[1]], true);
  const y = g.conv(xv, wv, null, strides, pads, depthwise ? c : 1, 'y');
  g.input('gy', y.shape);
  const grads = g.backward(new Map([[y.name, 'gy']]), [wv]);
  g.output({ name: grads.get('w')!, shape: wv.shape }, 'gw');
  const r = seeded(11);
  const x = Float32Array.from({ length: n * c * h * w }, () => r() - 0.5);
  const gy = Float32Array.from({ length: n * o * oh * ow }, () => r() - 0.5);
  const wts = Float32Array.from({ length: o * (depthwise ? 1 : c) * k[0] * k[1] }, () => r() - 0.5);
  const session = await ort.InferenceSession.create(g.encode('filter_grad'));
  try {
    const out = await session.run({
      x: new ort.Tensor('float32', x, [n, c, h, w]),
      w: new ort.Tensor('float32', wts, wv.shape),
      gy: new ort.Tensor('float32', gy, [n, o, oh, ow]),
    });
    return { got: out.gw.data as Float32Array, want: reference(cs, x, gy, oh, ow), ops: g.nodes.map((nd) => nd.opType!) };
  } finally {
    await session.release();
  }
}

/** Node counts (Gemm, Concat, Slice, Conv) each formulation builds; Conv counts the forward one too. */
const FORMULATIONS = {
  /** Stride 1: one Slice (a contiguous run of the flat input) and one Gemm per kernel offset. */
  flat: [-1, 1, -1, 1],
  'per-offset': [9, 1, -1, 1],
  input: [1, 0, 0, 1],
  window: [1, 0, 1, 1],
  swapped: [0, -1, -1, 2],
  /** Strided: windows cut by a convolution with unit kernels. */
  cut: [1, 0, 0, 2],
} as const;

const cases: (Case & { uses: keyof typeof FORMULATIONS })[] = [
  { label: '3×3 stride 1 same: flat runs', n: 2, c: 8, h: 7, w: 6, o: 5, k: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], uses: 'flat' },
  { label: '3×3 stride 1 same, above the unfolding limit: still flat runs (nothing unfolded)', n: 2, c: 8, h: 7, w: 6, o: 5, k: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], options: { maxUnfolded: 0 }, uses: 'flat' },
  { label: '3×3 stride 1 valid: flat runs with no padding', n: 3, c: 8, h: 6, w: 7, o: 4, k: [3, 3], strides: [1, 1], pads: [0, 0, 0, 0], uses: 'flat' },
  { label: '5×5 stride 1 pad 2 (GoogLeNet): flat runs', n: 2, c: 8, h: 6, w: 5, o: 3, k: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], uses: 'flat' },
  { label: '2×2 stride 1 TF same (pads 0,0,1,1): flat runs', n: 2, c: 8, h: 5, w: 4, o: 3, k: [2, 2], strides: [1, 1], pads: [0, 0, 1, 1], uses: 'flat' },
  { label: '3×3 stride 1 pad (2,0,1,2), more padding than overhang: flat runs', n: 2, c: 8, h: 5, w: 6, o: 3, k: [3, 3], strides: [1, 1], pads: [2, 0, 1, 2], uses: 'flat' },
  { label: '1×7 stride 1 pad (0,3) and 7×1 pad (3,0) (Inception): flat runs', n: 2, c: 8, h: 9, w: 9, o: 3, k: [1, 7], strides: [1, 1], pads: [0, 3, 0, 3], uses: 'flat' },
  { label: '7×1 stride 1 pad (3,0): flat runs', n: 2, c: 8, h: 9, w: 8, o: 3, k: [7, 1], strides: [1, 1], pads: [3, 0, 3, 0], uses: 'flat' },
  { label: '3×3 stride 2 pad 1 (odd input): windows cut by unit kernels', n: 2, c: 8, h: 9, w: 9, o: 4, k: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], uses: 'cut' },
  { label: '3×3 stride 2 valid, window short of the last row: cut by unit kernels', n: 2, c: 8, h: 8, w: 8, o: 4, k: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], uses: 'cut' },
  { label: '3×3 stride 2 pad (0,0,1,1) above the unfolding limit: one Gemm per strided window', n: 2, c: 8, h: 8, w: 8, o: 4, k: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1], options: { maxUnfolded: 0 }, uses: 'per-offset' },
  { label: '3×3 stride 1 same on 1×1 and 2×1 maps (the last stage of a 32² input): flat runs reach past one zero image', n: 5, c: 8, h: 1, w: 1, o: 3, k: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], uses: 'flat' },
  { label: '3×3 stride 1 same on 2×1 maps', n: 3, c: 8, h: 2, w: 1, o: 3, k: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], uses: 'flat' },
  { label: '1×3 stride 1 pad (0,1)', n: 2, c: 8, h: 5, w: 6, o: 3, k: [1, 3], strides: [1, 1], pads: [0, 1, 0, 1], uses: 'flat' },
  { label: '1×1 stride 1: the input itself, one Gemm', n: 3, c: 16, h: 4, w: 4, o: 6, k: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], uses: 'input' },
  { label: '1×1 stride 2 (shortcut): subsampled by a unit kernel', n: 3, c: 16, h: 5, w: 5, o: 6, k: [1, 1], strides: [2, 2], pads: [0, 0, 0, 0], uses: 'cut' },
  { label: '1×1 stride 2 above the unfolding limit: one strided window', n: 3, c: 16, h: 5, w: 5, o: 6, k: [1, 1], strides: [2, 2], pads: [0, 0, 0, 0], options: { maxUnfolded: 0 }, uses: 'window' },
  { label: '7×7 stride 2 pad 3, 3 channels (stem): roles-swapped conv', n: 2, c: 3, h: 16, w: 16, o: 4, k: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3], uses: 'swapped' },
  { label: '3×3 stride 2 valid, 3 channels (Xception stem): roles-swapped conv', n: 2, c: 3, h: 11, w: 11, o: 4, k: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], uses: 'swapped' },
  { label: 'depthwise 3×3 stride 1 same', n: 2, c: 6, h: 7, w: 7, o: 6, k: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], depthwise: true, uses: 'swapped' },
  { label: 'depthwise 3×3 stride 2 pad (0,0,1,1)', n: 2, c: 6, h: 8, w: 8, o: 6, k: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1], depthwise: true, uses: 'swapped' },
];

describe('ONNX training graph: filter gradient formulations against a direct sum', () => {
  for (const cs of cases) {
    it(cs.label, async () => {
      const { got, want, ops } = await filterGrad(cs);
      expect(got.length).toBe(want.length);
      let worst = 0;
      let scale = 0;
      want.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(got[i] - v));
        scale = Math.max(scale, Math.abs(v));
      });
      expect(scale).toBeGreaterThan(0);
      expect(worst / scale, `${cs.label}: max |Δ| ${worst} of ${scale}`).toBeLessThan(1e-5);
      // The formulation the case is meant to reach (−1: any count).
      const count = (op: string) => ops.filter((x) => x === op).length;
      const seen = ['Gemm', 'Concat', 'Slice', 'Conv'].map(count);
      FORMULATIONS[cs.uses].forEach((want, i) => {
        if (want >= 0) expect(seen[i], `${cs.label}: expected the ${cs.uses} formulation, got ${ops.join(' ')}`).toBe(want);
      });
    });
  }
});
