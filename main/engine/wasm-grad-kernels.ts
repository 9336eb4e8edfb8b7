// Gradient kernels the wasm backend lacks (Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter,
// DepthwiseConv2dNativeBackpropInput), plus a replacement for its Conv2DBackpropInput (a scalar C loop,
// ~10x slower than the forward convolution), for its MaxPoolGrad (it starts each window's running
// maximum at 0, so a window of negative values sends its gradient to the wrong cell) and for its
// AvgPoolGrad (it divides by kh·kw where a 'same' window overhangs the border and the forward pass
// divided by the cells inside), all composed from wasm's forward convolutions so that
// XNNPACK does the heavy lifting; and a BatchMatMul that transposes explicitly instead of using wasm's slow
// transposed matmul. Kernels may call tf ops: the engine does not tape ops run inside a kernel.
import * as tf from '@tensorflow/tfjs';
import { backend_util } from '@tensorflow/tfjs';

type Pair = [number, number];
type Pads4 = [Pair, Pair, Pair, Pair];
type PadAttr = 'valid' | 'same' | number | Pads4;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

const pair = (v: number | number[] | undefined): Pair =>
  v == null ? [1, 1] : typeof v === 'number' ? [v, v] : [v[0], v[1]];

/**
 * Wants `t` (NHWC) to have `top`/`bottom`/`left`/`right` extra rows and columns. Negative amounts are
 * cropped here; the remaining non-negative amounts are returned as an explicit conv padding, so the
 * convolution pads implicitly instead of copying the tensor.
 */
function cropForPadding(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number) {
  const [n, h, w, c] = t.shape;
  const ct = Math.max(0, -top), cb = Math.max(0, -bottom);
  const cl = Math.max(0, -left), cr = Math.max(0, -right);
  const cropped = ct || cb || cl || cr ? tf.slice(t, [0, ct, cl, 0], [n, h - ct - cb, w - cl - cr, c]) : t;
  const pads: Pads4 = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
  return { cropped, pads };
}

/** Inserts s-1 zeros after every row/column: [n, h, w, c] -> [n, h*sh, w*sw, c] (trailing zeros included). */
function zeroInsert(t: tf.Tensor4D, [sh, sw]: Pair): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  const spread = tf.pad(tf.reshape(t, [n, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.reshape(spread, [n, h * sh, w * sw, c]) as tf.Tensor4D;
}

const isNCHW = (dataFormat: unknown) => dataFormat === 'NCHW';
const toNHWC = (t: tf.Tensor4D, dataFormat: unknown) => (isNCHW(dataFormat) ? tf.transpose(t, [0, 2, 3, 1]) : t);

/**
 * dW[a,b,i,o] = Σ_{n,y,x} xpad[n, y·s + a·d, x·s + b·d, i] · dy[n,y,x,o]: a convolution of x (batch and
 * channels swapped, so the batch is the contraction axis) with dy as the filter, stride and dilation swapped.
 */
function conv2dBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: Pair,
  dilations: Pair, pad: PadAttr, dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computeConv2DInfo(x.shape, filterShape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, dilationHeight: dh,
    dilationWidth: dw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w, padInfo } = info;
  // Rows of the padded input the filter gradient reaches: (fh-1)·d + (oh-1)·s + 1.
  const bottom = (fh - 1) * dh + (oh - 1) * sh + 1 - h - padInfo.top;
  const right = (fw - 1) * dw + (ow - 1) * sw + 1 - w - padInfo.left;
  const { cropped, pads } = cropForPadding(x, padInfo.top, bottom, padInfo.left, right);
  const xT = tf.transpose(cropped, [3, 1, 2, 0]); // [inC, H, W, N]
  const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, N, outC]
  const dW = tf.conv2d(xT, dyT, [dh, dw], pads, 'NHWC', [sh, sw]); // [inC, fh, fw, outC]
  return tf.transpose(dW, [1, 2, 0, 3]);
}

/** dx is the correlation of zero-inserted dy with the spatially flipped, in/out-swapped filter. */
function conv2dBackpropInput(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: Pair,
  dilations: Pair, pad: PadAttr, dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computeConv2DInfo(inputShape as [number, number, number, number], filter.shape,
    strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const { inHeight: h, inWidth: w, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw,
    effectiveFilterHeight: efh, effectiveFilterWidth: efw, outHeight: oh, outWidth: ow, padInfo } = info;
  const top = efh - 1 - padInfo.top;
  const left = efw - 1 - padInfo.left;
  const { cropped, pads } = cropForPadding(zeroInsert(dy, [sh, sw]), top, h + efh - 1 - top - oh * sh,
    left, w + efw - 1 - left - ow * sw);
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [fh, fw, outC, inC]
  return tf.conv2d(cropped, flipped, 1, pads, 'NHWC', [dh, dw]);
}

/** Correlating zero-inserted dy with the spatially flipped filter; the sum over the multiplier follows. */
function depthwiseBackpropInput(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[], strides: Pair,
  dilations: Pair, pad: PadAttr, dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computeConv2DInfo(inputShape as [number, number, number, number], filter.shape,
    strides, dilations, pad, dimRoundingMode, true, 'channelsLast');
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, strideHeight: sh, strideWidth: sw,
    dilationHeight: dh, dilationWidth: dw, effectiveFilterHeight: efh, effectiveFilterWidth: efw,
    outHeight: oh, outWidth: ow, padInfo } = info;
  const m = filter.shape[3];
  const spread = zeroInsert(dy, [sh, sw]); // oh·sh rows: (oh-1)·sh + 1 real ones + (sh-1) trailing zeros
  const top = efh - 1 - padInfo.top;
  const left = efw - 1 - padInfo.left;
  const bottom = h + efh - 1 - top - oh * sh;
  const right = w + efw - 1 - left - ow * sw;
  const { cropped, pads } = cropForPadding(spread, top, bottom, left, right);
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [filter.shape[0], filter.shape[1], c * m, 1]);
  const dx = tf.depthwiseConv2d(cropped, flipped as tf.Tensor4D, 1, pads, 'NHWC', [dh, dw]); // [n, h, w, c·m]
  return m === 1 ? dx : tf.sum(tf.reshape(dx, [n, h, w, c, m]), 4);
}

/**
 * dW[a,b,c,m] = Σ_{n,y,x} xpad[n, y·s + a·d, x·s + b·d, c] · dy[n,y,x,c·M+m]: one depthwise convolution
 * with the batch moved into the channels (N·C channels, dy as an N·C×M filter), then a sum over the batch.
 */
function depthwiseBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], strides: Pair,
  dilations: Pair, pad: PadAttr, dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computeConv2DInfo(x.shape, filterShape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, true, 'channelsLast');
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, filterHeight: fh, filterWidth: fw,
    strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, outHeight: oh, outWidth: ow,
    padInfo } = info;
  const m = filterShape[3];
  const bottom = (fh - 1) * dh + (oh - 1) * sh + 1 - h - padInfo.top;
  const right = (fw - 1) * dw + (ow - 1) * sw + 1 - w - padInfo.left;
  const { cropped, pads } = cropForPadding(x, padInfo.top, bottom, padInfo.left, right);
  const [, hc, wc] = cropped.shape;
  const xT = tf.reshape(tf.transpose(cropped, [1, 2, 0, 3]), [1, hc, wc, n * c]);
  const dyT = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * c, m]);
  const dW = tf.depthwiseConv2d(xT as tf.Tensor4D, dyT as tf.Tensor4D, [dh, dw], pads, 'NHWC', [sh, sw]);
  return tf.sum(tf.reshape(dW, [fh, fw, n, c, m]), 2); // dW is [1, fh, fw, n·c·m]
}

type Attrs = Record<string, unknown>;
const num = (a: Attrs, k: string) => a[k] as number | number[] | undefined;

const kernels: Record<string, tf.KernelFunc> = {
  [tf.Conv2DBackpropFilter]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    return tf.tidy(() => conv2dBackpropFilter(toNHWC(inputs.x as tf.Tensor4D, a.dataFormat),
      toNHWC(inputs.dy as tf.Tensor4D, a.dataFormat), a.filterShape as number[], pair(num(a, 'strides')),
      pair(num(a, 'dilations')), a.pad as PadAttr, a.dimRoundingMode as RoundingMode));
  },
  [tf.Conv2DBackpropInput]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    const shape = a.inputShape as number[];
    const nchw = isNCHW(a.dataFormat);
    return tf.tidy(() => {
      const dx = conv2dBackpropInput(toNHWC(inputs.dy as tf.Tensor4D, a.dataFormat), inputs.filter as tf.Tensor4D,
        nchw ? [shape[0], shape[2], shape[3], shape[1]] : shape, pair(num(a, 'strides')),
        pair(num(a, 'dilations')), a.pad as PadAttr, a.dimRoundingMode as RoundingMode);
      return nchw ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
    });
  },
  [tf.DepthwiseConv2dNativeBackpropInput]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    return tf.tidy(() => depthwiseBackpropInput(inputs.dy as tf.Tensor4D, inputs.filter as tf.Tensor4D,
      a.inputShape as number[], pair(num(a, 'strides')), pair(num(a, 'dilations')), a.pad as PadAttr,
      a.dimRoundingMode as RoundingMode));
  },
  [tf.MaxPoolGrad]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    return tf.tidy(() => maxPoolBackprop(inputs.dy as tf.Tensor4D, inputs.input as tf.Tensor4D, inputs.output as tf.Tensor4D,
      pair(num(a, 'filterSize')), pair(num(a, 'strides')), a.pad as PadAttr, a.dimRoundingMode as RoundingMode));
  },
  [tf.AvgPoolGrad]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    return tf.tidy(() => avgPoolBackprop(inputs.dy as tf.Tensor4D, (inputs.input as tf.Tensor4D).shape,
      pair(num(a, 'filterSize')), pair(num(a, 'strides')), a.pad as PadAttr, a.dimRoundingMode as RoundingMode));
  },
  [tf.DepthwiseConv2dNativeBackpropFilter]: ({ inputs, attrs }) => {
    const a = attrs as Attrs;
    return tf.tidy(() => depthwiseBackpropFilter(inputs.x as tf.Tensor4D, inputs.dy as tf.Tensor4D,
      a.filterShape as number[], pair(num(a, 'strides')), pair(num(a, 'dilations')), a.pad as PadAttr,
      a.dimRoundingMode as RoundingMode));
  },
};

/**
 * dx of a max pool: each window's gradient goes to its first maximum in row-major order (TF's rule), one
 * kernel offset at a time: the strided view of the (−∞-padded) input at offset (a, b) is compared with the
 * pooled output, cells already claimed by an earlier offset are left out, and the hits' dy is placed back
 * at rows a + i·s, columns b + j·s.
 */
function maxPoolBackprop(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D, filterSize: Pair, strides: Pair,
  pad: PadAttr, dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computePool2DInfo(x.shape, filterSize, strides, 1, pad as 'same' | 'valid' | number, dimRoundingMode);
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, padInfo } = info;
  const [n, h, w, c] = x.shape;
  // The padded frame the windows cover: (o − 1)·s + f rows/columns from −pad.
  const ph = (oh - 1) * sh + fh;
  const pw = (ow - 1) * sw + fw;
  const bottom = ph - h - padInfo.top;
  const right = pw - w - padInfo.left;
  const grown = tf.pad(x, [[0, 0], [padInfo.top, Math.max(0, bottom)], [padInfo.left, Math.max(0, right)], [0, 0]], -Infinity);
  const frame = tf.slice(grown, [0, 0, 0, 0], [n, ph, pw, c]);
  let claimed = tf.zeros([n, oh, ow, c]);
  let dxFrame = tf.zeros([n, ph, pw, c]) as tf.Tensor4D;
  for (let a = 0; a < fh; a++) {
    for (let b = 0; b < fw; b++) {
      const view = tf.stridedSlice(frame, [0, a, b, 0], [n, a + (oh - 1) * sh + 1, b + (ow - 1) * sw + 1, c], [1, sh, sw, 1]);
      const hit = tf.mul(tf.cast(tf.equal(view, y), 'float32'), tf.sub(1, claimed));
      claimed = tf.add(claimed, hit);
      const spread = zeroInsert(tf.mul(hit, dy) as tf.Tensor4D, [sh, sw]);
      // spread has oh·sh rows from row a; the frame has ph = (oh − 1)·sh + fh.
      const placed = tf.slice(tf.pad(spread, [[0, 0], [a, Math.max(0, ph - a - oh * sh)], [b, Math.max(0, pw - b - ow * sw)], [0, 0]]), [0, 0, 0, 0], [n, ph, pw, c]);
      dxFrame = tf.add(dxFrame, placed);
    }
  }
  // Back from the frame to the input: drop the padding, add zero rows the frame did not reach.
  const inside = tf.slice(dxFrame, [0, padInfo.top, padInfo.left, 0], [n, Math.min(h, ph - padInfo.top), Math.min(w, pw - padInfo.left), c]);
  return tf.pad(inside, [[0, 0], [0, Math.max(0, -bottom)], [0, Math.max(0, -right)], [0, 0]]) as tf.Tensor4D;
}

/** How many of rows/columns i·s − pad … i·s − pad + f − 1 lie inside 0 … size − 1, for each output i. */
function insideCounts(out: number, size: number, f: number, s: number, pad: number): number[] {
  return Array.from({ length: out }, (_, i) => Math.min(size, i * s - pad + f) - Math.max(0, i * s - pad));
}

/**
 * dx of an average pool: the forward pass divides each window's sum by its count of cells inside the
 * input (wasm's, and TF's, 'same' pooling leaves the padding out), so dy is divided by that count and then
 * spread over the window — a transposed depthwise convolution with a filter of ones.
 */
function avgPoolBackprop(dy: tf.Tensor4D, inputShape: number[], filterSize: Pair, strides: Pair, pad: PadAttr,
  dimRoundingMode: RoundingMode): tf.Tensor4D {
  const info = backend_util.computePool2DInfo(inputShape as [number, number, number, number], filterSize, strides, 1,
    pad as 'same' | 'valid' | number, dimRoundingMode);
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow,
    inHeight: h, inWidth: w, inChannels: c, padInfo } = info;
  const rows = insideCounts(oh, h, fh, sh, padInfo.top);
  const cols = insideCounts(ow, w, fw, sw, padInfo.left);
  const counts = tf.tensor4d(rows.flatMap((r) => cols.map((q) => r * q)), [1, oh, ow, 1]);
  const pads: Pads4 = [[0, 0], [padInfo.top, padInfo.bottom], [padInfo.left, padInfo.right], [0, 0]];
  return depthwiseBackpropInput(tf.div(dy, counts), tf.ones([fh, fw, c, 1]), inputShape, strides, [1, 1], pads, undefined);
}

function transposeLast2(t: tf.Tensor): tf.Tensor {
  const perm = [...t.shape.keys()];
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

let stockBatchMatMul: tf.KernelFunc | undefined;

// wasm's matmul with transposeA/transposeB is several times slower than an explicit transpose followed by a
// plain matmul (dense-layer backprop, 64×2048→1000: 219 ms vs 44 ms).
const batchMatMul: tf.KernelFunc = (args) => {
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return stockBatchMatMul!(args);
  const { a, b } = args.inputs as { a: tf.Tensor; b: tf.Tensor };
  return tf.tidy(() => tf.matMul(transposeA ? transposeLast2(a) : a, transposeB ? transposeLast2(b) : b));
};

/** Registers (or replaces) the wasm kernels above; safe to call more than once. */
export function registerWasmGradKernels(): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing?.kernelFunc === kernelFunc) continue;
    if (existing) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
  const stock = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (stock && stock.kernelFunc !== batchMatMul) {
    stockBatchMatMul = stock.kernelFunc;
    tf.unregisterKernel(tf.BatchMatMul, 'wasm');
    // Keep the stock setup: it binds the wasm function that stockBatchMatMul calls.
    tf.registerKernel({ ...stock, kernelFunc: batchMatMul });
  }
}
