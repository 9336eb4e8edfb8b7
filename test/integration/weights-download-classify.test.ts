// `refit classify-imagenet --backbone resnet18` with imported weights (a real torch.save'd ResNet-18 with
// seeded random weights, imported by `refit weights import`): rows carry the class index beside label and
// probability, a second run (from the cached ONNX graph) gives the same rows, a set that is not present
// gets advice naming both ways to get it, and all of it runs under the no-network preload
// (test/fixtures/no-network.ts) without a connection attempt.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagenetLabels } from '../../models/imagenet-files';
import { guardedCli, type GuardedCli } from '../fixtures/no-network';
import { hasTorchvision, seededResnet18 } from '../fixtures/weights-server';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
const IMAGES = ['birds/pelican.png', 'fruit/banana.png'].map((f) => path.join(PHOTOS, f));

let tmp: string;
let cli: GuardedCli;
let pth: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-classify-set-'));
  cli = await guardedCli(tmp);
  if (hasTorchvision) pth = await seededResnet18(tmp, 5);
}, 300_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Row = { file: string; top: { label: string; probability: number; index: number }[]; error?: string };

describe.skipIf(!hasTorchvision && !process.env.CI)('classify-imagenet with imported weights', () => {
  it('names the backbone\'s top classes with their index, the same on a second (cached) run, with no network access', async () => {
    const imported = await cli.refit('weights', 'import', 'resnet18', pth, '--json');
    expect(imported.code, imported.stderr).toBe(0);
    const first = await cli.refit('classify-imagenet', '--backbone', 'resnet18', ...IMAGES, '--json', '--top', '5');
    expect(first.code, first.stderr).toBe(0);
    const rows = JSON.parse(first.stdout) as Row[];
    expect(rows.map((r) => r.file)).toEqual(IMAGES);
    const labels = await imagenetLabels();
    for (const row of rows) {
      expect(row.top).toHaveLength(5);
      expect(row.top.every((t, i) => Number.isInteger(t.index) && t.index >= 0 && t.index < 1000 && (i === 0 || t.probability <= row.top[i - 1].probability))).toBe(true);
      expect(row.top.map((t) => t.label)).toEqual(row.top.map((t) => labels[t.index]));
    }
    // Different images, different answers: the weights are used, not a constant.
    expect(rows[0].top.map((t) => t.probability)).not.toEqual(rows[1].top.map((t) => t.probability));
    // The second run loads the cached ONNX graph and gives the same rows.
    const second = await cli.refit('classify-imagenet', '--backbone', 'resnet18', ...IMAGES, '--json', '--top', '5');
    expect(second.code, second.stderr).toBe(0);
    const again = JSON.parse(second.stdout) as Row[];
    for (let i = 0; i < rows.length; i++) {
      expect(again[i].top.map((t) => t.index)).toEqual(rows[i].top.map((t) => t.index));
      again[i].top.forEach((t, j) => expect(t.probability).toBeCloseTo(rows[i].top[j].probability, 6));
    }
    // A set that is not present: the advice names both ways to get it.
    const missing = await cli.refit('classify-imagenet', '--backbone', 'resnet50', '--weights', 'torchvision-v2', IMAGES[0]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('resnet50 has no ImageNet weights on this machine (set torchvision-v2): run refit weights get resnet50 --source torchvision-v2 to download resnet50-11ad3fa6.pth (103 MB), or refit weights import resnet50 FILE');
    expect(await cli.records()).toEqual([]);
  }, 300_000);
});
