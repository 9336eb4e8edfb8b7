// Exactness of imported timm SE-ResNet weights: timm's own models (timm 0.9, PyPI, on Debian's torch
// 1.13) with seeded random weights — batch-norm statistics, affine terms and SE biases randomised
// too — saved as timm publishes them (legacy SENet sets: torch.save'd state_dicts; seresnet50.ra2:
// safetensors), imported through `refit weights import`, must give timm's probabilities on real photos.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
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
import { readStoredManifest, weightSetDir } from '../../models/weights/store';
import { applyStoredWeights } from '../../models/weights/load';
import { attachHead, buildHead } from '../../models/heads';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, '../fixtures/timm_reference.py');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const FILES = ['birds/pelican.png', 'fruit/banana.png', 'flowers/daffodil.png', 'mammals/cats/tiger.png'].map((p) => path.join(PHOTOS, p));
const SIZE = 64;
/** timm model → Refit backbone, weight set and the file timm's format gives it. */
const CASES = [
  { timm: 'legacy_seresnet18', backbone: 'seresnet18', set: 'timm-legacy', file: 'legacy_seresnet18.pth' },
  { timm: 'legacy_seresnet50', backbone: 'seresnet50', set: 'timm-legacy', file: 'legacy_seresnet50.pth' },
  { timm: 'seresnet50', backbone: 'seresnet50', set: 'timm-ra2', file: 'seresnet50.safetensors' },
];

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

/** Largest |ours − theirs| / theirs over every probability. */
function relativeError(ours: Float32Array, theirs: Float32Array): number {
  let rel = 0;
  for (let i = 0; i < theirs.length; i++) rel = Math.max(rel, Math.abs(ours[i] - theirs[i]) / theirs[i]);
  return rel;
}

const reference = async (name: string) => new Float32Array((await readFile(path.join(dir, name))).buffer.slice(0));

// Skipped only outside CI: .ci/run installs timm, so there a missing reference fails.
describe.skipIf(!hasTimm && !process.env.CI)('timm SE-ResNet weights imported exactly', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'refit-timm-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    const decoded = await Promise.all(FILES.map((f) => decodeImageRgb(f, SIZE)));
    pixels = new Uint8Array(decoded.reduce((n, d) => n + d.length, 0));
    decoded.reduce((at, d) => (pixels.set(d, at), at + d.length), 0);
    await writeFile(path.join(dir, 'pixels.bin'), pixels);
    await run(PYTHON, [SCRIPT, dir, path.join(dir, 'pixels.bin'), String(FILES.length), String(SIZE), ...CASES.map((c) => c.timm)], { maxBuffer: 1 << 20, timeout: 600_000 });
  }, 900_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedEnv;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(`${c.timm} → refit weights import ${c.backbone} --source ${c.set}: timm's probabilities within 1e-4 relative`, async () => {
      const result = await refitWeights('import', c.backbone, path.join(dir, c.file), '--source', c.set, '--json');
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ backbone: c.backbone, set: c.set, checksumVerified: false });
      const entry = getBackbone(c.backbone).weightSet(c.set);
      expect(entry).toMatchObject({ publisher: 'timm', variant: c.set === 'timm-legacy' ? 'senet' : 'resnet-v1.5', effective: { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });

      const { model, manifest } = await loadImagenetClassifier(c.backbone, c.set, { inputSize: SIZE });
      const theirs = await reference(`${c.timm}.probs`);
      const ours = await probabilities(model, manifest.preprocessing);
      model.dispose();
      const rel = relativeError(ours, theirs);
      console.log(`${c.timm}: max relative error ${rel.toExponential(2)} over ${theirs.length} probabilities (PyTorch's own float32 run: ${relativeError(await reference(`${c.timm}.probs32`), theirs).toExponential(2)})`);
      expect(ours.length).toBe(theirs.length);
      for (let i = 0; i < FILES.length; i++) expect(Math.max(...theirs.subarray(i * 1000, (i + 1) * 1000))).toBeGreaterThan(0.005); // 5× uniform
      expect(rel).toBeLessThan(1e-4);
    }, 300_000);
  }

  it('the comparison can fail: the legacy weights with the zero-padded stem pool (v1, all else equal) are far off', async () => {
    const manifest = readStoredManifest('seresnet50', 'timm-legacy')!;
    const model = attachHead(getBackbone('seresnet50').build({ inputSize: SIZE, variant: 'resnet-v1' }), buildHead(2048, 1000));
    await applyStoredWeights(model, manifest, weightSetDir('seresnet50', 'timm-legacy'));
    expect(relativeError(await probabilities(model, manifest.preprocessing), await reference('legacy_seresnet50.probs'))).toBeGreaterThan(0.01);
    model.dispose();
  }, 120_000);

  it('the catalogue lists the SE-ResNet sets with their sources, ra2 the default for SE-ResNet-50', async () => {
    const { stdout, code } = await refitWeights('list', '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { backbone: string; set: string; default: boolean; present: boolean; url: string | null }[];
    const row = (b: string, s: string) => rows.find((r) => r.backbone === b && r.set === s);
    expect(row('seresnet50', 'timm-legacy')).toMatchObject({ present: true, default: false, url: 'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-cadene/se_resnet50-ce0d4300.pth' });
    expect(row('seresnet50', 'timm-ra2')).toMatchObject({ present: true, default: true });
    for (const depth of [18, 34, 101, 152]) expect(row(`seresnet${depth}`, 'timm-legacy')).toMatchObject({ default: true });
    expect(getBackbone('seresnet50').weights).toContain('imagenet');
  });

  it('refuses the wrong model, shape mismatches and truncated files, naming the file and the problem', async () => {
    // One SE layer of the wrong width: listed by name with both shapes.
    const shapes = path.join(dir, 'legacy_seresnet50-shapes.pth');
    let r = await refitWeights('import', 'seresnet50', shapes, '--source', 'timm-legacy');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${shapes} does not hold timm legacy_seresnet50 (timm-legacy) weights`);
    expect(r.stderr).toMatch(/shape mismatches \(2\):\n {2}layer1\.0\.se_module\.fc1\.weight \[32,256,1,1\] does not fit stage1_block1_se_reduce\/kernel: Refit needs \[256,16\]/);
    expect(r.stderr).toMatch(/layer1\.0\.se_module\.fc1\.bias \[32\] does not fit stage1_block1_se_reduce\/bias: Refit needs \[16\]/);
    // SE-ResNet-18's file as SE-ResNet-50, and the ra2 file read with the legacy names.
    r = await refitWeights('import', 'seresnet50', path.join(dir, 'legacy_seresnet18.pth'), '--source', 'timm-legacy');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tensors seresnet50 needs that the file lacks \(\d+\):\n {2}layer1\.0\.conv3\.weight/);
    r = await refitWeights('import', 'seresnet50', path.join(dir, 'seresnet50.safetensors'), '--source', 'timm-legacy');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tensors seresnet50 needs that the file lacks \(\d+\):\n {2}layer0\.conv1\.weight/);
    expect(r.stderr).toMatch(/tensors in the file that Refit would not use \(\d+\):[\s\S]*layer1\.0\.se\.fc1\.weight \[16,256,1,1\]/);
    // A truncated download.
    const cut = path.join(dir, 'cut.pth');
    await copyFile(path.join(dir, 'legacy_seresnet18.pth'), cut);
    await truncate(cut, 20_000_000);
    r = await refitWeights('import', 'seresnet18', cut);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cut}: not a readable zip archive`);
    // The stored sets are untouched by the failures.
    expect(readStoredManifest('seresnet50', 'timm-legacy')?.source.file).toBe(path.join(dir, 'legacy_seresnet50.pth'));
  }, 120_000);
});
