// The one place where a publisher's tensor layouts become Refit's (TF.js, channels-last):
// convolution kernels OIHW → HWIO, depthwise kernels, Linear → Dense, and batch-norm statistics with
// the conv-bias and epsilon folds. Pure functions on row-major Float32Arrays.
import { numel, type RawTensor } from './tensors';

/** A tensor in Refit's layout, ready for a TF.js variable. */
export interface OurTensor {
  shape: number[];
  data: Float32Array;
}

/** Moves axes: out[...] = in[perm applied], i.e. out shape = perm.map(p => shape[p]). */
export function transpose(t: OurTensor | RawTensor, perm: readonly number[]): OurTensor {
  const shape = perm.map((p) => t.shape[p]);
  const n = numel(t.shape);
  const rank = t.shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= t.shape[i];
  }
  const stepOf = perm.map((p) => inStrides[p]);
  const out = new Float32Array(n);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let k = 0; k < n; k++) {
    out[k] = t.data[src];
    for (let d = rank - 1; d >= 0; d--) {
      src += stepOf[d];
      if (++index[d] < shape[d]) break;
      src -= stepOf[d] * shape[d];
      index[d] = 0;
    }
  }
  return { shape, data: out };
}

/** torch Conv2d weight [out, in, kh, kw] → TF.js Conv2D kernel [kh, kw, in, out]. */
export function convKernel(w: RawTensor): OurTensor {
  if (w.shape.length !== 4) throw new Error(`a conv kernel needs 4 dimensions, got [${w.shape.join(',')}]`);
  return transpose(w, [2, 3, 1, 0]);
}

/** torch depthwise Conv2d weight [in·m, 1, kh, kw] (groups = in) → TF.js depthwise kernel [kh, kw, in, m]. */
export function depthwiseKernel(w: RawTensor, inChannels: number): OurTensor {
  const [outChannels, one, kh, kw] = w.shape;
  if (w.shape.length !== 4 || one !== 1 || outChannels % inChannels !== 0) throw new Error(`not a depthwise kernel for ${inChannels} channels: [${w.shape.join(',')}]`);
  const m = outChannels / inChannels;
  // [in·m, 1, kh, kw] = [in, m, kh, kw] in memory (output channel c·m + j) → [kh, kw, in, m].
  return transpose({ shape: [inChannels, m, kh, kw], data: w.data }, [2, 3, 0, 1]);
}

/** torch Linear weight [out, in] → TF.js Dense kernel [in, out]. */
export function denseKernel(w: RawTensor): OurTensor {
  if (w.shape.length !== 2) throw new Error(`a linear weight needs 2 dimensions, got [${w.shape.join(',')}]`);
  return transpose(w, [1, 0]);
}

/** torch 1×1 Conv2d weight [out, in, 1, 1] used on a pooled vector (SE's fc1/fc2) → TF.js Dense kernel [in, out]. */
export function pointwiseDenseKernel(w: RawTensor): OurTensor {
  if (w.shape.length !== 4 || w.shape[2] !== 1 || w.shape[3] !== 1) throw new Error(`a 1×1 conv weight needs shape [out, in, 1, 1], got [${w.shape.join(',')}]`);
  return transpose({ shape: [w.shape[0], w.shape[1]], data: w.data }, [1, 0]);
}

export const vector = (t: RawTensor): OurTensor => ({ shape: [...t.shape], data: t.data });

/**
 * Batch-norm statistics for our BatchNormalization (gamma, beta, moving_mean, moving_variance):
 * BN(conv(x) + b) with mean μ, variance σ², epsilon ε_src equals BN(conv(x)) with mean μ − b and
 * variance σ² + ε_src − ε_ours at epsilon ε_ours, since BN computes (y − μ)/√(σ² + ε)·γ + β.
 */
export function batchNormWeights(
  bn: { weight: RawTensor; bias: RawTensor; mean: RawTensor; variance: RawTensor },
  o: { sourceEpsilon: number; ourEpsilon: number; convBias?: RawTensor },
): { gamma: OurTensor; beta: OurTensor; moving_mean: OurTensor; moving_variance: OurTensor } {
  const mean = Float32Array.from(bn.mean.data);
  if (o.convBias) for (let i = 0; i < mean.length; i++) mean[i] -= o.convBias.data[i];
  const variance = Float32Array.from(bn.variance.data);
  const shift = o.sourceEpsilon - o.ourEpsilon;
  if (shift !== 0) for (let i = 0; i < variance.length; i++) variance[i] += shift;
  return {
    gamma: vector(bn.weight),
    beta: vector(bn.bias),
    moving_mean: { shape: [...bn.mean.shape], data: mean },
    moving_variance: { shape: [...bn.variance.shape], data: variance },
  };
}
