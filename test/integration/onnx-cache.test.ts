// The user-cache ONNX models (main/engine/onnx-cache.ts) and their two users: classify-imagenet's
// ImageNet ResNet-50 graph (built once, keyed by the weights' content) and onnxruntime's optimised
// copies of graphs. A stale entry is never found, a damaged one is detected, deleted and rebuilt —
// never used.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { contentDigests, onnxCacheDir, readOnnxCache, writeOnnxCache } from '../../main/engine/onnx-cache';
import { classifyImagenet, imagenetOnnxKey, loadImagenetClassifier, type ImagenetClassifier } from '../../main/engine/classify-imagenet';
import { initBackend } from '../../main/engine/backend';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const PELICAN = path.join(PHOTOS, 'birds', 'pelican.png');

let tmp: string;
let saved: string | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-onnx-cache-'));
  saved = process.env.REFIT_CACHE_DIR;
  process.env.REFIT_CACHE_DIR = path.join(tmp, 'cache');
});

afterAll(async () => {
  if (saved === undefined) delete process.env.REFIT_CACHE_DIR;
  else process.env.REFIT_CACHE_DIR = saved;
  await rm(tmp, { recursive: true, force: true });
});

/** Flips one byte in the middle of a file (same size, same modification time). */
async function damage(file: string): Promise<void> {
  const data = await readFile(file);
  const { mtime } = await stat(file);
  data[data.length >> 1] ^= 0x5a;
  await writeFile(file, data);
  await utimes(file, mtime, mtime);
}

const entries = async () => (await readdir(onnxCacheDir()).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();

describe('onnx cache entries', () => {
  it('reads back what was written, and detects a missing record, a flipped byte and truncation', async () => {
    const dir = path.join(tmp, 'entries');
    const bytes = new Uint8Array(4096).map((_, i) => (i * 7) & 255);
    expect(await readOnnxCache('k1', dir)).toEqual({ missing: 'absent' });
    expect(await writeOnnxCache('k1', bytes, undefined, dir)).toBe(true);
    const hit = await readOnnxCache('k1', dir);
    expect('bytes' in hit && Buffer.from(hit.bytes).equals(Buffer.from(bytes))).toBe(true);

    await damage(path.join(dir, 'k1.onnx'));
    expect(await readOnnxCache('k1', dir)).toMatchObject({ missing: 'damaged', why: 'CRC-32 mismatch' });
    expect(await readdir(dir)).toEqual([]); // a damaged entry is deleted

    await writeOnnxCache('k2', bytes, undefined, dir);
    await writeFile(path.join(dir, 'k2.onnx'), bytes.subarray(0, 1000));
    expect(await readOnnxCache('k2', dir)).toMatchObject({ missing: 'damaged', why: '1000 bytes, the record says 4096' });

    // A model without its record (a crash between the two renames) is not used, and is removed.
    await writeOnnxCache('k3', bytes, undefined, dir);
    await rm(path.join(dir, 'k3.json'));
    expect(await readOnnxCache('k3', dir)).toEqual({ missing: 'absent' });
    expect(await readdir(dir)).toEqual([]);

    // A record for another key (copied or renamed by hand) is not trusted.
    await writeOnnxCache('k4', bytes, undefined, dir);
    await writeFile(path.join(dir, 'k5.json'), await readFile(path.join(dir, 'k4.json')));
    await writeFile(path.join(dir, 'k5.onnx'), bytes);
    expect(await readOnnxCache('k5', dir)).toMatchObject({ missing: 'damaged' });
  });

  it('content digests follow the content (remembered by path, size and modification time)', async () => {
    const dir = path.join(tmp, 'digests');
    const file = path.join(tmp, 'weights.bin');
    await writeFile(file, 'first content');
    const [a] = await contentDigests([file], dir);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(await contentDigests([file], dir)).toEqual([a]);
    await writeFile(file, 'other content');
    const later = new Date(Date.now() + 5000);
    await utimes(file, later, later);
    const [b] = await contentDigests([file], dir);
    expect(b).not.toBe(a);
  });
});

describe('classify-imagenet from the cached ONNX model', () => {
  const top1 = async (c: ImagenetClassifier) => {
    try {
      const [row] = await classifyImagenet([PELICAN], { classifier: c, topK: 1 });
      return row.top[0];
    } finally {
      c.forward.dispose();
    }
  };
  let expected: { label: string; probability: number };

  it('builds the graph once, then loads it (and its optimised form) from the cache without TF.js', async () => {
    await initBackend();
    const built = await loadImagenetClassifier();
    expect(built).toMatchObject({ onnxCache: 'built', forward: { runtime: 'onnxruntime' } });
    expected = await top1(built);
    expect(expected.label).toBe('pelican');
    const key = await imagenetOnnxKey();
    const names = await entries();
    expect(names).toContain(`${key}.onnx`);
    expect(names.filter((n) => n.startsWith('opt-') && n.endsWith('.onnx'))).toHaveLength(1);

    const again = await loadImagenetClassifier({ prepareTfjs: () => Promise.reject(new Error('TF.js must not be needed')) });
    expect(again).toMatchObject({ forward: { runtime: 'onnxruntime' } });
    expect(again.resnet).toBeUndefined();
    const got = await top1(again);
    expect(got.label).toBe(expected.label);
    expect(Math.abs(got.probability - expected.probability)).toBeLessThan(1e-5);
  });

  it('a damaged optimised graph is detected and optimised again from the cached graph', async () => {
    const opt = (await entries()).find((n) => n.startsWith('opt-') && n.endsWith('.onnx'))!;
    await damage(path.join(onnxCacheDir(), opt));
    const c = await loadImagenetClassifier({ prepareTfjs: () => Promise.reject(new Error('TF.js must not be needed')) });
    expect(c.onnxCache).toBe('hit'); // the graph itself was intact
    const got = await top1(c);
    expect(got.label).toBe(expected.label);
    expect(Math.abs(got.probability - expected.probability)).toBeLessThan(1e-5);
    expect((await readOnnxCache(opt.replace(/\.onnx$/, ''))).hasOwnProperty('bytes')).toBe(true);
  });

  it('a damaged graph is detected and rebuilt with TF.js, never used', async () => {
    const key = await imagenetOnnxKey();
    for (const n of (await entries()).filter((n) => n.startsWith('opt-'))) await rm(path.join(onnxCacheDir(), n));
    await damage(path.join(onnxCacheDir(), `${key}.onnx`));
    const c = await loadImagenetClassifier();
    expect(c.onnxCache).toBe('built');
    const got = await top1(c);
    expect(got.label).toBe(expected.label);
    expect(Math.abs(got.probability - expected.probability)).toBeLessThan(1e-5);
    expect('bytes' in (await readOnnxCache(key))).toBe(true);
  });

  it('a stale graph (the weights changed) is not found: a new one is built under the new key and the old one removed', async () => {
    const oldKey = await imagenetOnnxKey();
    // Pretend the weight files' content changed: their remembered digests no longer match the old key.
    const memoFile = path.join(onnxCacheDir(), 'sources.json');
    const memo = JSON.parse(await readFile(memoFile, 'utf8')) as Record<string, { sha256: string }>;
    const first = Object.keys(memo).find((f) => f.endsWith('model.json'))!;
    memo[first].sha256 = 'f'.repeat(64);
    await writeFile(memoFile, JSON.stringify(memo));
    const newKey = await imagenetOnnxKey();
    expect(newKey).not.toBe(oldKey);
    const c = await loadImagenetClassifier();
    expect(c.onnxCache).toBe('built');
    expect((await top1(c)).label).toBe(expected.label);
    const names = await entries();
    expect(names).toContain(`${newKey}.onnx`);
    expect(names).not.toContain(`${oldKey}.onnx`);
  });
});
