// Thumbnails are made a bounded number at a time, holding a bounded number of source bytes: a burst of
// thumbnail requests for huge files waits its turn instead of reading them all into memory at once.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { THUMBNAIL_LIMITS, thumbnailDataUrl, thumbnailLoad } from '../../main/engine/thumbnails';

let tmp: string;
let big: string;
const small: string[] = [];
const DEFAULTS = { ...THUMBNAIL_LIMITS };

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-thumb-limits-'));
  // ≈ 61 MB: noise that PNG cannot compress (level 0).
  const side = 4500;
  big = path.join(tmp, 'big.png');
  await sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toFile(big);
  for (let i = 0; i < 12; i++) {
    const file = path.join(tmp, `small-${i}.png`);
    await sharp(randomBytes(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(file);
    small.push(file);
  }
});

afterEach(() => Object.assign(THUMBNAIL_LIMITS, DEFAULTS));

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('thumbnail limits', () => {
  it('8 thumbnails of a 60 MB file at once: made one at a time, all of them, with bounded memory', async () => {
    const bytes = (await stat(big)).size;
    expect(bytes).toBeGreaterThan(60_000_000);
    thumbnailLoad(true);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const started = Date.now();
    const urls = await Promise.all(Array.from({ length: 8 }, () => thumbnailDataUrl(big)));
    clearInterval(sampler);
    const load = thumbnailLoad();
    const growthMb = (peak - rssBefore) / 1024 / 1024;
    console.log(`8 × ${(bytes / 1e6).toFixed(0)} MB thumbnails in ${Date.now() - started} ms: RSS +${growthMb.toFixed(0)} MB, at most ${load.peakTasks} at once (${(load.peakBytes / 1e6).toFixed(0)} MB)`);
    expect(new Set(urls).size).toBe(1);
    expect(urls[0]).toMatch(/^data:image\/webp;base64,/);
    expect(load.peakBytes).toBeLessThanOrEqual(THUMBNAIL_LIMITS.bytes);
    expect(load.peakTasks).toBe(1); // two would pass the byte budget
    expect(load).toMatchObject({ tasks: 0, bytes: 0, waiting: 0 });
    // Unbounded, the eight read at once took ≈ +540 MB here; one at a time ≈ +180 MB.
    expect(growthMb).toBeLessThan(400);
  });

  it('small files: at most THUMBNAIL_LIMITS.tasks at once', async () => {
    thumbnailLoad(true);
    const urls = await Promise.all(small.map((f) => thumbnailDataUrl(f, { size: 32 })));
    expect(urls.every((u) => u.startsWith('data:image/webp;base64,'))).toBe(true);
    expect(thumbnailLoad().peakTasks).toBe(THUMBNAIL_LIMITS.tasks);
  });

  it('a file larger than the whole budget is still made, alone; failures free their share', async () => {
    THUMBNAIL_LIMITS.bytes = 1000; // every small file is larger than this
    const corrupt = path.join(tmp, 'corrupt.png');
    await writeFile(corrupt, randomBytes(5000));
    thumbnailLoad(true);
    const files = [small[0], corrupt, small[1], path.join(tmp, 'missing.png'), small[2], tmp, small[3]];
    const results = await Promise.allSettled(files.map((f) => thumbnailDataUrl(f, { size: 32 })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/not an image|corrupt/);
    expect(thumbnailLoad()).toMatchObject({ tasks: 0, bytes: 0, waiting: 0, peakTasks: 1 });
  });
});
