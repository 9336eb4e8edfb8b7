// Exactness of imported torchvision weights: torchvision's own models (Debian python3-torchvision 0.14)
// with seeded random weights — batch-norm statistics and affine terms randomised too — saved with
// torch.save(model.state_dict()), imported through `refit weights import`, must give torchvision's
// probabilities on real photos. Both sides see the same decoded pixels (Refit decodes them); the
// Python reference runs once for all architectures.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
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
import { startFeatureKey, startPreprocessing } from '../../main/engine/training/model';
import type { RunRecord } from '../../main/api/training';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, '../fixtures/torchvision_reference.py');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const FILES = ['birds/pelican.png', 'fruit/banana.png', 'flowers/daffodil.png', 'mammals/cats/tiger.png'].map((p) => path.join(PHOTOS, p));
// Small inputs keep CI time down; every architecture accepts 64² (VGG's adaptive pool then upsamples 2×2 to 7×7).
const SIZE = 64;
const ALL = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'vgg16', 'googlenet'];
// REFIT_TV_ARCHS=resnet18,resnet50 narrows the set while developing (the refusal test needs those two).
const ARCHS = process.env.REFIT_TV_ARCHS ? process.env.REFIT_TV_ARCHS.split(',').filter((a) => ALL.includes(a)) : ALL;

const hasTorchvision = existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import torchvision']).then(() => true, () => false));

let dir: string;
let pixels: Uint8Array;
const savedEnv = process.env.XDG_CACHE_HOME;

function captureIO() {
  const out = { stdout: '', stderr: '', code: 0 };
  const io: CommandIO = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    stderrIsTTY: false,
    setExitCode: (c) => void (out.code = c),
  };
  return { out, io };
}

/** `refit weights …` through the command's own code, in this process. */
async function refitWeights(...args: string[]) {
  const { out, io } = captureIO();
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

// Skipped only outside CI: .ci/run installs python3-torchvision, so there a missing reference fails.
describe.skipIf(!hasTorchvision && !process.env.CI)('torchvision weights imported exactly', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'refit-tv-'));
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
    const decoded = await Promise.all(FILES.map((f) => decodeImageRgb(f, SIZE)));
    pixels = new Uint8Array(decoded.reduce((n, d) => n + d.length, 0));
    decoded.reduce((at, d) => (pixels.set(d, at), at + d.length), 0);
    await writeFile(path.join(dir, 'pixels.bin'), pixels);
    await run(PYTHON, [SCRIPT, dir, path.join(dir, 'pixels.bin'), String(FILES.length), String(SIZE), ...ARCHS], { maxBuffer: 1 << 20, timeout: 600_000 });
  }, 900_000);

  afterAll(async () => {
    if (savedEnv === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedEnv;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const arch of ARCHS) {
    it(`${arch}: refit weights import → torchvision's probabilities within 1e-4 relative`, async () => {
      const result = await refitWeights('import', arch, path.join(dir, `${arch}.pth`), '--source', 'torchvision-v1', '--json');
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const imported = JSON.parse(result.stdout);
      expect(imported).toMatchObject({ backbone: arch, set: 'torchvision-v1', checksumVerified: false });
      // The backbone now lists ImageNet weights, and the set carries the publisher's preprocessing.
      expect(getBackbone(arch).weights).toContain('imagenet');
      const entry = getBackbone(arch).weightSet('torchvision-v1');
      expect(entry.effective).toEqual(arch === 'googlenet' ? { mode: 'tf' } : { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });

      const { model, manifest } = await loadImagenetClassifier(arch, 'torchvision-v1', { inputSize: SIZE });
      const theirs = new Float32Array((await readFile(path.join(dir, `${arch}.probs`))).buffer.slice(0));
      const ours = await probabilities(model, manifest.preprocessing);
      model.dispose();
      const { rel, abs } = compare(ours, theirs);
      const torch32 = compare(new Float32Array((await readFile(path.join(dir, `${arch}.probs32`))).buffer.slice(0)), theirs);
      console.log(
        `${arch}: max relative error ${rel.toExponential(2)}, max absolute ${abs.toExponential(2)} over ${theirs.length} probabilities ` +
          `(PyTorch's own float32 run: ${torch32.rel.toExponential(2)} relative)`,
      );
      expect(ours.length).toBe(theirs.length);
      // The reference is not degenerate: every photo's prediction is far from uniform.
      for (let i = 0; i < FILES.length; i++) expect(Math.max(...theirs.subarray(i * 1000, (i + 1) * 1000))).toBeGreaterThan(0.005); // 5× uniform
      expect(rel).toBeLessThan(1e-4);
    }, 300_000);
  }

  it.skipIf(!ARCHS.includes('resnet50') || !ARCHS.includes('googlenet'))('the comparison can fail: the wrong variant or preprocessing is far off', async () => {
    // The same torchvision ResNet-50 weights in the v1 architecture (stride on the 1×1, as Keras).
    const manifest = readStoredManifest('resnet50', 'torchvision-v1')!;
    const v1 = attachHead(getBackbone('resnet50').build({ inputSize: SIZE, variant: 'resnet-v1' }), buildHead(2048, 1000));
    await applyStoredWeights(v1, manifest, weightSetDir('resnet50', 'torchvision-v1'));
    const resnet50 = new Float32Array((await readFile(path.join(dir, 'resnet50.probs'))).buffer.slice(0));
    expect(compare(await probabilities(v1, manifest.preprocessing), resnet50).rel).toBeGreaterThan(0.01);
    v1.dispose();
    // GoogLeNet without its transform_input step (plain torch mean/std).
    const { model } = await loadImagenetClassifier('googlenet', 'torchvision-v1', { inputSize: SIZE });
    const googlenet = new Float32Array((await readFile(path.join(dir, 'googlenet.probs'))).buffer.slice(0));
    expect(compare(await probabilities(model, { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }), googlenet).rel).toBeGreaterThan(0.01);
    model.dispose();
  }, 120_000);

  it.skipIf(!ARCHS.includes('resnet18'))('a .safetensors file of the same state_dict stores the same weights, byte for byte', async () => {
    const cache = process.env.XDG_CACHE_HOME!;
    process.env.XDG_CACHE_HOME = path.join(dir, 'cache-safetensors');
    try {
      const r = await refitWeights('import', 'resnet18', path.join(dir, 'resnet18.safetensors'), '--source', 'torchvision-v1');
      expect(r.stderr).toBe('');
      const fromSafetensors = await readFile(path.join(weightSetDir('resnet18', 'torchvision-v1'), 'weights.bin'));
      process.env.XDG_CACHE_HOME = cache;
      const fromPth = await readFile(path.join(weightSetDir('resnet18', 'torchvision-v1'), 'weights.bin'));
      expect(fromSafetensors.length).toBe(fromPth.length);
      expect(fromSafetensors.equals(fromPth)).toBe(true);
    } finally {
      process.env.XDG_CACHE_HOME = cache;
    }
  });

  it('lists the catalogue with what is present and where', async () => {
    const { stdout, code } = await refitWeights('list', '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { backbone: string; set: string; present: boolean; where: string | null; url: string | null; checksum: { value: string } | null }[];
    const row = (b: string, s: string) => rows.find((r) => r.backbone === b && r.set === s)!;
    expect(row('resnet50', 'keras')).toMatchObject({ present: true, where: expect.stringContaining('bundled') });
    expect(row('resnet18', 'torchvision-v1')).toMatchObject({ url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth', checksum: { value: 'f37072fd' } });
    for (const arch of ARCHS) expect(row(arch, 'torchvision-v1')).toMatchObject({ present: true, where: path.join(dir, 'cache', 'refit', 'weights', arch, 'torchvision-v1') });
    expect(row('resnet50', 'torchvision-v2').present).toBe(false);
    const table = await refitWeights('list');
    expect(table.stdout).toMatch(/googlenet\s+torchvision-v1 \(default\)\s+torchvision\s+69\.8%\s+50 MiB\s+\//);
  });

  it.skipIf(!ARCHS.includes('resnet18') || !ARCHS.includes('resnet50'))('a run records the weight set\'s preprocessing, and its features are cached per set', async () => {
    const config = (weightSet?: string) => ({ backbone: 'resnet50', weights: 'imagenet', ...(weightSet ? { weightSet } : {}), mode: 'head', inputSize: SIZE, learningRate: 1e-3 }) as RunRecord['config'];
    const torch = { mode: 'torch', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    // ResNet-50: 'imagenet' is still the bundled Keras set (caffe); the imported torchvision set brings torch mean/std.
    expect(startPreprocessing(config(), undefined)).toEqual({ mode: 'caffe', mean: [103.939, 116.779, 123.68] });
    expect(startPreprocessing(config('torchvision-v1'), undefined)).toEqual(torch);
    expect(startFeatureKey('r1', config(), undefined)).toBe('imagenet');
    const sha = readStoredManifest('resnet50', 'torchvision-v1')!.source.sha256;
    expect(startFeatureKey('r1', config('torchvision-v1'), undefined)).toBe(`torchvision-v1-${sha.slice(0, 12)}`);

    // The real CLI: `refit train --weights imagenet` on ResNet-18 uses the imported set (in a child process that inherits XDG_CACHE_HOME).
    const project = path.join(dir, 'project');
    const bin = path.resolve(__dirname, '../../bin/refit.mjs');
    const data = path.join(PHOTOS, 'fruit');
    const { stdout } = await run(
      process.execPath,
      [bin, 'train', path.join(PHOTOS, 'flowers'), data, '--backbone', 'resnet18', '--weights', 'imagenet', '--mode', 'head', '--input-size', String(SIZE), '--epochs', '1', '--no-augment', '--project', project, '--out', path.join(dir, 'model'), '--json'],
      { maxBuffer: 16 << 20, env: { ...process.env } },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.status).toBe('completed');
    const runs = await readdir(path.join(project, 'runs'));
    const record = JSON.parse(await readFile(path.join(project, 'runs', runs[0], 'run.json'), 'utf8')) as RunRecord;
    expect(record.preprocessing).toEqual(torch);
    const key = `torchvision-v1-${readStoredManifest('resnet18', 'torchvision-v1')!.source.sha256.slice(0, 12)}`;
    expect(record.featureKey).toBe(key);
    expect(await readdir(path.join(project, 'cache', 'features'))).toEqual([`resnet18-${key}-${SIZE}`]);
    // Without the set, ResNet-34 cannot start from ImageNet weights, and the error says how to get them.
    const refused = await run(process.execPath, [bin, 'train', data, '--backbone', 'resnet34', '--weights', 'imagenet', '--project', project], { env: { ...process.env, XDG_CACHE_HOME: path.join(dir, 'empty-cache') } }).then(
      () => '',
      (err: { stderr: string }) => err.stderr,
    );
    expect(refused).toContain('resnet34 has no ImageNet weights');
  }, 300_000);

  it('refuses the wrong model, shape mismatches and truncated files, naming the file and the problem', async () => {
    const resnet18 = path.join(dir, 'resnet18.pth');
    // ResNet-18's file as ResNet-34: the tensors of the extra units are missing.
    let r = await refitWeights('import', 'resnet34', resnet18);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(resnet18);
    expect(r.stderr).toMatch(/tensors resnet34 needs that the file lacks \(\d+\):\n {2}layer1\.2\.conv1\.weight/);
    // ResNet-50's file as ResNet-18: shapes do not fit and bottleneck tensors are left over, each by name.
    r = await refitWeights('import', 'resnet18', path.join(dir, 'resnet50.pth'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shape mismatches \(\d+\):\n {2}layer1\.0\.conv1\.weight \[64,64,1,1\] does not fit stage1_block1_conv1\/kernel: Refit needs \[3,3,64,64\]/);
    expect(r.stderr).toMatch(/tensors in the file that Refit would not use \(\d+\):[\s\S]*layer1\.0\.conv3\.weight \[256,64,1,1\]/);
    // A truncated download.
    const cut = path.join(dir, 'cut.pth');
    await copyFile(resnet18, cut);
    await truncate(cut, 10_000_000);
    r = await refitWeights('import', 'resnet18', cut);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cut}: not a readable zip archive: no end-of-central-directory record (the file is truncated)`);
    // A file under the publisher's name must carry the publisher's SHA-256 prefix.
    const named = path.join(dir, 'resnet18-f37072fd.pth');
    await copyFile(resnet18, named);
    r = await refitWeights('import', 'resnet18', named);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/resnet18-f37072fd\.pth: SHA-256 [0-9a-f]{16}… does not start with f37072fd, the prefix torchvision publishes in the name resnet18-f37072fd\.pth/);
    // torch.save of an object whose pickle calls os.system: refused, and nothing ran.
    r = await refitWeights('import', 'resnet18', path.join(dir, 'hostile.pth'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hostile\.pth: refused: global posix\.system is not allowed/);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
    // A failed import leaves the cache as it was: the stored ResNet-18 set still comes from resnet18.pth,
    // and no temporary folder is left beside it.
    expect(readStoredManifest('resnet18', 'torchvision-v1')?.source.file).toBe(resnet18);
    expect((await readdir(path.join(dir, 'cache', 'refit', 'weights', 'resnet18'))).sort()).toEqual(['torchvision-v1']);
  }, 120_000);
});
