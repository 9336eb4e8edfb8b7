// Grad-CAM ("where the model looks") in the contract: one image's map as the engine sends it, and how
// it lands on the image as the user sees it. Plain TS (no engine, no zod): the renderer draws with it.

/** Where the image lies inside the square the network saw, as fractions of the square's side. */
export interface ContentBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One image's Grad-CAM map for one class (or `error`, naming the file, and nothing else). */
export interface GradCamRow {
  file: string;
  error?: string;
  /** The class the map explains (the predicted one unless another was asked for). */
  target?: string;
  /** What the model predicts for the image, and how sure it is. */
  predicted?: { label: string; probability: number };
  /**
   * height × width values in [0, 1], row-major: the last convolutional stage's grid (7×7 for
   * ResNet at 224 px). All zero when nothing in the image speaks for the class.
   */
  map?: number[];
  height?: number;
  width?: number;
  /** Refit pads each image to a square (never crops): the part of the map's square the image covers. */
  content?: ContentBox;
}

/**
 * The map bilinearly upsampled onto an image shown `outWidth` × `outHeight` (row-major values in
 * [0, 1]). Each map cell is centred on its share of the network's square (half-pixel centres, edges
 * clamped), and the image's pixels are placed in that square by `content`.
 */
export function heatOnImage(
  map: ArrayLike<number>,
  mapWidth: number,
  mapHeight: number,
  content: ContentBox,
  outWidth: number,
  outHeight: number,
): Float32Array {
  if (map.length !== mapWidth * mapHeight) throw new Error(`heatOnImage: ${map.length} values for a ${mapWidth}×${mapHeight} map`);
  const out = new Float32Array(outWidth * outHeight);
  const along = (outSide: number, offset: number, extent: number, mapSide: number) =>
    Array.from({ length: outSide }, (_, i) => {
      const m = Math.min(Math.max((offset + ((i + 0.5) / outSide) * extent) * mapSide - 0.5, 0), mapSide - 1);
      const lo = Math.floor(m);
      return { lo, hi: Math.min(lo + 1, mapSide - 1), t: m - lo };
    });
  const xs = along(outWidth, content.x, content.width, mapWidth);
  const ys = along(outHeight, content.y, content.height, mapHeight);
  for (let y = 0; y < outHeight; y++) {
    const { lo: y0, hi: y1, t: ty } = ys[y];
    for (let x = 0; x < outWidth; x++) {
      const { lo: x0, hi: x1, t: tx } = xs[x];
      const top = map[y0 * mapWidth + x0] * (1 - tx) + map[y0 * mapWidth + x1] * tx;
      const bottom = map[y1 * mapWidth + x0] * (1 - tx) + map[y1 * mapWidth + x1] * tx;
      out[y * outWidth + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}
