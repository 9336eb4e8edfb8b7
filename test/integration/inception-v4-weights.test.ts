// Exactness of imported timm Inception-v4 weights: timm's own inception_v4 (PyPI timm, installed for
// the tests by .ci/run) with seeded random weights — batch-norm statistics and affine terms randomised
// too — saved with torch.save(model.state_dict()), imported through `refit weights import`, must give
// timm's probabilities on real photos. Both sides see the same decoded pixels (Refit decodes them).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageRgb } from '../../main/engine/image-decode';
import { registerWeights } from '../../main/host/commands/weights';
import type { CommandIO } from '../../main/host/commands/io';
import { getBackbone, loadImagenetClassifier } from '../../models/registry';
import { preprocess } from '../../models/preprocess';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, '../fixtures/timm_inception_reference.py');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const FILES = ['birds/pelican.png', 'fruit/banana.png', 'flowers/daffodil.png', 'mammals/cats/tiger.png'].map((p) => path.join(PHOTOS, p));
// The smallest input, to keep CI time down: the inception modules then run on 7×7, 3×3 and 1×1 maps,
// where the 3×3 average pools' excluded padding (count_include_pad=False) changes most values.
const SIZE = 75;

const hasTimm = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import timm']).then(() => true, () => false));

let dir: string;
let pixels: Uint8Array;
const savedEnv = process.env.XDG_CACHE_HOME;

async function refitWeights(...args: string[]) {
  const out = { stdout: '', stderr: '', code: 0 };
  const io: CommandIO = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    stderrIsTTY: false,
    setExitCode: (c) => void (out.code = c),
  };
  const program = new Command('refit').exitOverride();
  registerWeights(program, io);
  await program.parseAsync(['weights', ...args], { from: 'user' });
  return out;
}

async function probabilities(model: tf.LayersModel, preprocessing: Parameters<typeof preprocess>[1]): Promise<Float32Array> {
  const x = tf.tidy(() => preprocess(tf.tensor4d(pixels, [FILES.length, SIZE, SIZE, 3], 'int32'), preprocessing));
  const y = model.predict(x) as tf.Tensor;
  const out = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return out;
}

/** Largest |ours − theirs| / theirs over every probability, and the largest absolute difference. */
function compare(ours: Float32Array, theirs: Float32Array) {
  let rel = 0;
  let abs = 0;
  for (let i = 0; i < theirs.length; i++) {
    const d = Math.abs(ours[i] - theirs[i]);
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / theirs[i]);
  }
  return { rel, abs };
}

const readProbs = async (name: string) => new Float32Array((await readFile(path.join(dir, name))).buffer.slice(0));

// Skipped only outside CI: .ci/run installs timm, so there a missing reference fails.
describe.skipIf(!hasTimm && !process.env.CI)('timm Inception-v4 weights imported exactly', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'refit-inception-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    const decoded = await Promise.all(FILES.map((f) => decodeImageRgb(f, SIZE)));
    pixels = new Uint8Array(decoded.reduce((n, d) => n + d.length, 0));
    decoded.reduce((at, d) => (pixels.set(d, at), at + d.length), 0);
    await writeFile(path.join(dir, 'pixels.bin'), pixels);
    const { stdout } = await run(PYTHON, [SCRIPT, dir, path.join(dir, 'pixels.bin'), String(FILES.length), String(SIZE)], { maxBuffer: 1 << 20, timeout: 120_000 });
    console.log(stdout.trim());
  }, 180_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedEnv;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refit weights import inceptionv4 → timm's probabilities within 1e-4 relative; 'torch' preprocessing instead is far off", async () => {
    const result = await refitWeights('import', 'inceptionv4', path.join(dir, 'inception_v4.pth'), '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ backbone: 'inceptionv4', set: 'timm-tf-in1k', checksumVerified: false });
    expect(getBackbone('inceptionv4').weights).toContain('imagenet');

    const { model, manifest } = await loadImagenetClassifier('inceptionv4', 'imagenet', { inputSize: SIZE });
    expect(manifest.preprocessing).toEqual({ mode: 'tf' });
    const theirs = await readProbs('inception_v4.probs');
    const ours = await probabilities(model, manifest.preprocessing);
    const wrongPreprocessing = await probabilities(model, { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    model.dispose();
    const { rel, abs } = compare(ours, theirs);
    const torch32 = compare(await readProbs('inception_v4.probs32'), theirs);
    console.log(
      `inceptionv4 at ${SIZE}²: max relative error ${rel.toExponential(2)}, max absolute ${abs.toExponential(2)} over ${theirs.length} probabilities ` +
        `(PyTorch's own float32 run: ${torch32.rel.toExponential(2)} relative)`,
    );
    expect(ours.length).toBe(theirs.length);
    // The reference is not degenerate: every photo's prediction is far from uniform.
    for (let i = 0; i < FILES.length; i++) expect(Math.max(...theirs.subarray(i * 1000, (i + 1) * 1000))).toBeGreaterThan(0.005);
    expect(rel).toBeLessThan(1e-4);
    expect(compare(wrongPreprocessing, theirs).rel).toBeGreaterThan(0.01);
  }, 120_000);

  it('refuses a damaged file, naming the file and every missing, foreign or misfitting tensor', async () => {
    const broken = path.join(dir, 'inception_v4-broken.pth');
    const result = await refitWeights('import', 'inceptionv4', broken);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${broken} does not hold timm inception_v4 (timm-tf-in1k) weights`);
    expect(result.stderr).toMatch(/last_linear\.weight \[10,1536\] does not fit head_classifier\/kernel: Refit needs \[1536,1000\]/);
    expect(result.stderr).toMatch(/lacks \(1\):\n\s+features\.21\.branch3\.1\.conv\.weight/);
    expect(result.stderr).toMatch(/would not use \(1\):\n\s+aux_logits\.fc\.weight \[10,768\]/);
  });

  it('refuses the Inception-v4 file for SE-Inception-v4, which has no published weights', async () => {
    const result = await refitWeights('import', 'seinceptionv4', path.join(dir, 'inception_v4.pth'));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/SE-Inception-v4 has no importable weight sets/);
  });
});
