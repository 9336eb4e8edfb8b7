// Small seeded randomness, so that splits and augmentations repeat exactly for a seed.
import { createHash } from 'node:crypto';

/** mulberry32: a fast 32-bit PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform number in [0, 1) determined by the seed and the strings alone. */
export function hashUniform(seed: number, ...parts: string[]): number {
  const digest = createHash('sha256').update(`${seed}\0${parts.join('\0')}`).digest();
  return digest.readUInt32BE(0) / 4294967296;
}

/** A 32-bit seed derived from a seed and strings. */
export function deriveSeed(seed: number, ...parts: string[]): number {
  return Math.floor(hashUniform(seed, ...parts) * 4294967296);
}

/** Fisher–Yates shuffle in place with the given random source. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
