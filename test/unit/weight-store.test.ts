// The weights catalogue and the weights cache's bookkeeping (no TF.js, no weight files converted):
// which sets are present, what 'imagenet' resolves to, and what the messages say when a set is absent.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEIGHT_SETS } from '../../models/weight-sets';
import { getBackboneSpec } from '../../models/catalog';
import { availableWeights, readStoredManifest, resolveWeightSet, weightSetDir, weightsRoot } from '../../models/weights/store';

let root: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'refit-store-'));
  env = { XDG_CACHE_HOME: root };
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function store(backbone: string, set: string, manifest: object = {}) {
  const dir = weightSetDir(backbone, set, env);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'weights.json'), JSON.stringify({ format: 'refit-weights', version: 1, backbone, set, tensors: [], ...manifest }));
}

describe('weights catalogue', () => {
  it('holds the publishers\' facts for every torchvision set', () => {
    for (const [backbone, sets] of Object.entries(WEIGHT_SETS)) {
      expect(sets.filter((s) => s.default), backbone).toHaveLength(1);
      for (const s of sets.filter((x) => x.publisher === 'torchvision')) {
        expect(s.url).toBe(`https://download.pytorch.org/models/${s.fileName}`);
        expect(s.fileName.endsWith(`-${s.checksum!.value}.pth`)).toBe(true);
        expect(s.params).toBe(getBackboneSpec(backbone).params);
        expect(s.sources.length).toBeGreaterThan(1);
      }
    }
    expect(WEIGHT_SETS.googlenet[0]).toMatchObject({ preprocessing: { transformInput: true }, effective: { mode: 'tf' } });
    expect(WEIGHT_SETS.resnet50.map((s) => [s.id, s.variant, s.effective.mode])).toEqual([
      ['keras', 'resnet-v1', 'caffe'],
      ['torchvision-v1', 'resnet-v1.5', 'torch'],
      ['torchvision-v2', 'resnet-v1.5', 'torch'],
    ]);
    expect(getBackboneSpec('resnet50').weights).toEqual(['imagenet']);
    expect(getBackboneSpec('resnet18').weights).toEqual([]);
  });
});

describe('weights cache', () => {
  it('lives under XDG_CACHE_HOME (REFIT_WEIGHTS_DIR overrides it) and refuses odd names', () => {
    expect(weightsRoot(env)).toBe(path.join(root, 'refit', 'weights'));
    expect(weightsRoot({ ...env, REFIT_WEIGHTS_DIR: '/w' })).toBe('/w');
    expect(() => weightSetDir('resnet18', '../../etc', env)).toThrow('invalid weight set name');
  });

  it("resolves 'imagenet' to the default present set, else the first present one", async () => {
    expect(availableWeights('resnet101', env)).toEqual([]);
    expect(() => resolveWeightSet('resnet101', 'imagenet', env)).toThrow(
      /resnet101: the torchvision ImageNet weights \(torchvision-v2\) are not on this machine\. Run: refit weights get resnet101 --source torchvision-v2 {2}\(downloads https:\/\/download\.pytorch\.org\/models\/resnet101-cd907fc2\.pth\), or download resnet101-cd907fc2\.pth elsewhere and run: refit weights import resnet101 resnet101-cd907fc2\.pth --source torchvision-v2/,
    );
    await store('resnet101', 'torchvision-v1');
    expect(availableWeights('resnet101', env)).toEqual(['imagenet', 'torchvision-v1']);
    expect(resolveWeightSet('resnet101', 'imagenet', env).id).toBe('torchvision-v1');
    await store('resnet101', 'torchvision-v2');
    expect(resolveWeightSet('resnet101', 'imagenet', env).id).toBe('torchvision-v2');
    // ResNet-50: the bundled Keras set stays the default whatever is imported.
    await store('resnet50', 'torchvision-v1');
    expect(resolveWeightSet('resnet50', 'imagenet', env).id).toBe('keras');
    expect(resolveWeightSet('resnet50', 'torchvision-v1', env).effective.mode).toBe('torch');
    expect(() => resolveWeightSet('resnet50', 'timm-a1', env)).toThrow('resnet50 has no weight set "timm-a1" (known: keras, torchvision-v1, torchvision-v2)');
    expect(() => resolveWeightSet('seinceptionv4', 'imagenet', env)).toThrow("seinceptionv4 has no ImageNet weights in Refit's catalogue yet");
    expect(() => resolveWeightSet('xception', 'imagenet', env)).toThrow('xception: the keras-applications');
  });

  it('ignores a manifest of another format, set or backbone, or one that is not JSON', async () => {
    await store('resnet34', 'torchvision-v1', { backbone: 'resnet18' });
    expect(readStoredManifest('resnet34', 'torchvision-v1', env)).toBeUndefined();
    await writeFile(path.join(weightSetDir('resnet34', 'torchvision-v1', env), 'weights.json'), '{"format": "refit-weights", "vers');
    expect(readStoredManifest('resnet34', 'torchvision-v1', env)).toBeUndefined();
    expect(availableWeights('resnet34', env)).toEqual([]);
  });
});
