// Train/validation split. An image's side is decided by its content hash and the seed alone, so the
// split repeats for a seed and stays stable when images are added: adding an image never moves
// another image to the other side, except to keep at least one validation image per class.
import type { DatasetImage } from '../api/dataset';
import { hashUniform } from './random';

export interface Split {
  train: DatasetImage[];
  val: DatasetImage[];
}

export function splitDataset(images: readonly DatasetImage[], valFraction: number, seed: number): Split {
  if (!(valFraction > 0 && valFraction < 1)) throw new Error(`validation split must be between 0 and 1 (exclusive), got ${valFraction}`);
  const byClass = new Map<string, { image: DatasetImage; u: number }[]>();
  for (const image of images) {
    const list = byClass.get(image.className) ?? [];
    list.push({ image, u: hashUniform(seed, image.hash) });
    byClass.set(image.className, list);
  }
  const train: DatasetImage[] = [];
  const val: DatasetImage[] = [];
  for (const list of byClass.values()) {
    list.sort((a, b) => a.u - b.u);
    let nVal = list.filter((e) => e.u < valFraction).length;
    // Every class with two or more images is validated on at least one and trains on at least one.
    if (list.length >= 2) nVal = Math.min(Math.max(nVal, 1), list.length - 1);
    else nVal = 0;
    list.forEach((e, i) => (i < nVal ? val : train).push(e.image));
  }
  return { train, val };
}
