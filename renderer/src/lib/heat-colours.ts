// The heat map's colours: 0 → transparent blue, 1 → red, through cyan, green and yellow (a "jet"
// ramp), more opaque as it gets hotter so that cold parts of the image stay visible.

const STOPS: readonly (readonly [number, number, number])[] = [
  [0, 0, 255],
  [0, 200, 255],
  [40, 220, 60],
  [255, 230, 0],
  [255, 40, 0],
];

/** RGBA bytes for a heat value in [0, 1] (clamped). */
export function heatColour(value: number): [number, number, number, number] {
  const v = Math.min(Math.max(Number.isFinite(value) ? value : 0, 0), 1);
  const at = v * (STOPS.length - 1);
  const i = Math.min(Math.floor(at), STOPS.length - 2);
  const t = at - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  return [Math.round(a[0] + (b[0] - a[0]) * t), Math.round(a[1] + (b[1] - a[1]) * t), Math.round(a[2] + (b[2] - a[2]) * t), Math.round(255 * (0.12 + 0.5 * v))];
}
