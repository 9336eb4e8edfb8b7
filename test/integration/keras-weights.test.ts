// Exactness of imported Keras Xception weights: Keras Applications' own Xception (Keras 3 on JAX, CPU,
// from PyPI; installed by .ci/run into its own folder) with seeded random weights — batch-norm
// statistics and affine terms randomised too — saved in the legacy .h5 layout Keras Applications
// publishes (and read back by Keras' own loader for the reference), imported through the compiled
// `refit weights import`, must give Keras' probabilities on real photos.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageRgb } from '../../main/engine/image-decode';
import { getBackbone, importWeightsFile, loadImagenetClassifier } from '../../models/registry';
import { preprocess } from '../../models/preprocess';
import { readStoredManifest, weightSetDir } from '../../models/weights/store';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const KERAS_PATH = process.env.REFIT_KERAS_PYTHONPATH ?? '/usr/local/lib/refit-keras';
const PYTHON_ENV = { ...process.env, PYTHONPATH: KERAS_PATH, KERAS_BACKEND: 'jax', JAX_PLATFORMS: 'cpu' };
const SCRIPT = path.resolve(__dirname, '../fixtures/keras_reference.py');
const BIN = path.resolve(__dirname, '../../bin/refit.mjs');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const FILES = ['birds/pelican.png', 'fruit/banana.png', 'flowers/daffodil.png', 'mammals/cats/tiger.png'].map((p) => path.join(PHOTOS, p));
// Small but even and odd sides on the way down (96 → 47 → 45 → 23 → 12 → 6 → 3), so TF's 'same' pools pad unevenly.
const SIZE = 96;

const hasKeras = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import keras, jax'], { env: PYTHON_ENV }).then(() => true, () => false));

let dir: string;
let pixels: Uint8Array;
const savedEnv = process.env.XDG_CACHE_HOME;

/** The compiled CLI in a child process (as a user runs it), with this test's weights cache. */
async function refit(...args: string[]) {
  return run(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20, env: { ...process.env } }).then(
    ({ stdout, stderr }) => ({ stdout, stderr, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => ({ stdout: err.stdout, stderr: err.stderr, code: err.code }),
  );
}

function relativeError(ours: Float32Array, theirs: Float32Array): number {
  let rel = 0;
  for (let i = 0; i < theirs.length; i++) rel = Math.max(rel, Math.abs(ours[i] - theirs[i]) / theirs[i]);
  return rel;
}

// Skipped only outside CI: .ci/run installs Keras and JAX, so there a missing reference fails.
describe.skipIf(!hasKeras && !process.env.CI)('Keras Xception weights imported exactly', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'refit-keras-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    const decoded = await Promise.all(FILES.map((f) => decodeImageRgb(f, SIZE)));
    pixels = new Uint8Array(decoded.reduce((n, d) => n + d.length, 0));
    decoded.reduce((at, d) => (pixels.set(d, at), at + d.length), 0);
    await writeFile(path.join(dir, 'pixels.bin'), pixels);
    await run(PYTHON, [SCRIPT, dir, path.join(dir, 'pixels.bin'), String(FILES.length), String(SIZE)], { maxBuffer: 1 << 20, timeout: 600_000, env: PYTHON_ENV });
  }, 900_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedEnv;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refit weights import xception FILE.h5 (the compiled CLI) → Keras' probabilities within 1e-4 relative", async () => {
    const result = await refit('weights', 'import', 'xception', path.join(dir, 'xception.h5'), '--json');
    expect(result.stderr).not.toContain('refit weights import:');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ backbone: 'xception', set: 'keras', checksumVerified: false });
    expect(getBackbone('xception').weights).toContain('imagenet');
    const entry = getBackbone('xception').weightSet('imagenet');
    expect(entry).toMatchObject({ publisher: 'keras-applications', variant: 'keras', effective: { mode: 'tf' }, checksum: { algorithm: 'md5', value: '0a58e3b7378bc2990ea3b43d5981f1f6' } });

    const { model, manifest } = await loadImagenetClassifier('xception', 'keras', { inputSize: SIZE });
    const probabilities = async (preprocessing: Parameters<typeof preprocess>[1]) => {
      const x = tf.tidy(() => preprocess(tf.tensor4d(pixels, [FILES.length, SIZE, SIZE, 3], 'int32'), preprocessing));
      const y = model.predict(x) as tf.Tensor;
      const out = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      return out;
    };
    const ours = await probabilities(manifest.preprocessing);
    const theirs = new Float32Array((await readFile(path.join(dir, 'xception.probs'))).buffer.slice(0));
    // The comparison can fail: torch mean/std instead of Keras' x/127.5 − 1 is far off.
    expect(relativeError(await probabilities({ mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }), theirs)).toBeGreaterThan(0.01);
    model.dispose();
    const rel = relativeError(ours, theirs);
    console.log(`xception: max relative error ${rel.toExponential(2)} over ${theirs.length} probabilities against Keras 3 (JAX, float32)`);
    expect(ours.length).toBe(theirs.length);
    for (let i = 0; i < FILES.length; i++) expect(Math.max(...theirs.subarray(i * 1000, (i + 1) * 1000))).toBeGreaterThan(0.005); // 5× uniform
    expect(rel).toBeLessThan(1e-4);
  }, 300_000);

  it('reads the same weights under Keras 2 names (kernel:0, conv2d_1 …), as the published file has them, byte for byte', async () => {
    const cache = process.env.XDG_CACHE_HOME!;
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache-keras2');
    try {
      await importWeightsFile('xception', path.join(dir, 'xception-keras2.h5'), undefined);
      const keras2 = await readFile(path.join(weightSetDir('xception', 'keras'), 'weights.bin'));
      process.env.XDG_CACHE_HOME = cache;
      const keras3 = await readFile(path.join(weightSetDir('xception', 'keras'), 'weights.bin'));
      expect(keras2.length).toBe(keras3.length);
      expect(keras2.equals(keras3)).toBe(true);
    } finally {
      process.env.XDG_CACHE_HOME = cache;
    }
  }, 120_000);

  it('refuses another model, shape mismatches, a truncated .h5 and a damaged published file, naming the file and the problem', async () => {
    const stored = readStoredManifest('xception', 'keras')?.source.sha256;
    // Two kernels of the wrong shape: each listed by name with both shapes.
    const shapes = path.join(dir, 'xception-shapes.h5');
    const error = await importWeightsFile('xception', shapes, undefined).then(() => '', (err: Error) => err.message);
    expect(error).toContain(`${shapes} does not hold Keras Applications xception weights (with its 1000-class 'predictions' layer):`);
    // The bias keeps its 1000 classes: exactly the two altered kernels misfit.
    expect(error).toMatch(/shape mismatches \(2\):\n {2}block1_conv1\/kernel \[3,3,4,32\] does not fit entry_block1_conv1\/kernel: Refit needs \[3,3,3,32\]\n {2}predictions\/kernel \[2048,10\] does not fit head_classifier\/kernel: Refit needs \[2048,1000\]/);
    // Another model's .h5 (a small Keras MobileNet): what Xception needs is missing, what it holds is left over.
    const mobilenet = path.join(dir, 'mobilenet.h5');
    const r = await refit('weights', 'import', 'xception', mobilenet);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${mobilenet} does not hold Keras Applications xception weights`);
    expect(r.stderr).toMatch(/tensors xception needs that the file lacks \(\d+\):\n {2}block1_conv1\/kernel/);
    expect(r.stderr).toMatch(/tensors xception needs that the file lacks \(\d+\):[\s\S]*conv2d…\/kernel \(the 1st unnamed Conv2D layer\)/);
    expect(r.stderr).toMatch(/tensors in the file that Refit would not use \(\d+\):\n {2}conv1\/kernel \[3,3,3,8\]/);
    expect(r.stderr).not.toContain('shape mismatches');
    // A truncated download.
    const cut = path.join(dir, 'cut.h5');
    await copyFile(path.join(dir, 'xception.h5'), cut);
    await truncate(cut, 40_000_000);
    await expect(importWeightsFile('xception', cut, undefined)).rejects.toThrow(`${cut}: truncated HDF5 file: its superblock records`);
    // A file under Keras' published name must have the MD5 Keras states.
    const named = path.join(dir, 'xception_weights_tf_dim_ordering_tf_kernels.h5');
    await copyFile(path.join(dir, 'xception.h5'), named);
    await expect(importWeightsFile('xception', named, undefined)).rejects.toThrow(
      new RegExp(`xception_weights_tf_dim_ordering_tf_kernels\\.h5: MD5 [0-9a-f]{32} is not 0a58e3b7378bc2990ea3b43d5981f1f6, the hash keras-applications states`),
    );
    // Not an HDF5 file at all, though named .h5.
    const text = path.join(dir, 'notes.h5');
    await writeFile(text, 'not weights');
    await expect(importWeightsFile('xception', text, undefined)).rejects.toThrow(`${text}: not an HDF5 file (it does not start with the HDF5 signature)`);
    // The stored set is untouched by the failures.
    expect(readStoredManifest('xception', 'keras')?.source.sha256).toBe(stored);
  }, 120_000);
});
