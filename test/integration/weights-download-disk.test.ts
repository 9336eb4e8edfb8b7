// `refit weights get` onto a disk that fills up (a small tmpfs mounted for the test, as root): while
// downloading (no size announced, so no check ahead) and when the size shows ahead that it cannot fit,
// nothing is stored; while storing the converted set, the verified download is kept and, once there is
// room, stored without being fetched again. Served by a 127.0.0.1 server (test/fixtures/weights-server.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadableSet, downloadsDir, downloadWeightSet } from '../../main/engine/weights-download';
import { getBackbone } from '../../models/registry';
import type { WeightSetEntry } from '../../models/weight-sets';
import { readStoredManifest, weightSetDir } from '../../models/weights/store';
import { hasTorchvision, seededResnet18, startWeightsServer, type WeightsServer } from '../fixtures/weights-server';

let tmp: string;
let file: Buffer;
let sha256: string;
let server: WeightsServer;
let base: string;
let entry: WeightSetEntry;
const savedDir = process.env.REFIT_WEIGHTS_DIR;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-get-disk-'));
  if (!hasTorchvision) return;
  file = await readFile(await seededResnet18(tmp, 12));
  sha256 = createHash('sha256').update(file).digest('hex');
  entry = { ...downloadableSet('resnet18'), checksum: { algorithm: 'sha256-prefix', value: sha256.slice(0, 8) } };
  server = await startWeightsServer(file, entry.fileName);
  base = server.base;
}, 180_000);

afterAll(async () => {
  if (savedDir === undefined) delete process.env.REFIT_WEIGHTS_DIR;
  else process.env.REFIT_WEIGHTS_DIR = savedDir;
  await server?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Nothing usable and nothing half-written: no weights.json, no temporaries beside the set's folder. */
async function expectNothingStored(cache: string) {
  expect(readStoredManifest('resnet18', entry.id)).toBeUndefined();
  expect(getBackbone('resnet18').weights).toEqual([]);
  const backboneDir = path.join(cache, 'resnet18');
  expect(existsSync(backboneDir) ? await readdir(backboneDir) : []).toEqual([]);
}

describe.skipIf(!hasTorchvision && !process.env.CI)('refit weights get onto a full disk', () => {
  let disk: string;
  let mounted = false;
  beforeAll(async () => {
    disk = path.join(tmp, 'small-disk');
    await mkdir(disk);
    try {
      // Smaller than the ~47 MB file: the download cannot fit.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', disk], { stdio: 'pipe' });
      mounted = true;
    } catch {
      mounted = false;
    }
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [disk]);
  });

  it('stops with a clear message when the disk fills up mid-download, keeping the cache consistent', async (ctx) => {
    if (!mounted) return ctx.skip(); // needs root to mount a small tmpfs
    process.env.REFIT_WEIGHTS_DIR = disk;
    server.mode = { chunked: true }; // no Content-Length: the free space cannot be checked ahead
    await expect(downloadWeightSet('resnet18', entry, { baseUrl: base })).rejects.toThrow(
      /No space left on the disk holding .*small-disk\/\.downloads while downloading resnet18-f37072fd\.pth; free some space/,
    );
    await expectNothingStored(disk);
    // With the size announced, the shortage is found before a byte is written.
    await rm(path.join(disk, '.downloads'), { recursive: true, force: true });
    server.mode = {};
    await expect(downloadWeightSet('resnet18', entry, { baseUrl: base })).rejects.toThrow(/Not enough free space in .*small-disk\/\.downloads: downloading resnet18-f37072fd\.pth \(\d+\.\d MB\) and converting it needs about \d+\.\d MB, \d+\.\d MB is free/);
    await expectNothingStored(disk);
  });

  it('a disk that fills up while storing keeps the verified download; with room, the next try stores it without fetching', async (ctx) => {
    if (!mounted) return ctx.skip();
    const roomy = path.join(tmp, 'store-disk');
    await mkdir(roomy);
    // The download (~47 MB) fits; its converted copy beside it does not.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=70m', 'tmpfs', roomy], { stdio: 'pipe' });
    try {
      process.env.REFIT_WEIGHTS_DIR = roomy;
      server.requests = [];
      server.mode = { chunked: true };
      await expect(downloadWeightSet('resnet18', entry, { baseUrl: base })).rejects.toThrow(
        /No space left on the disk holding .*store-disk while storing the converted resnet18 torchvision-v1 weights; .*the verified download is kept in .*resnet18-f37072fd\.pth\.partial, so the next try only stores it/,
      );
      await expectNothingStored(roomy);
      expect(server.requests).toHaveLength(1);
      execFileSync('mount', ['-o', 'remount,size=200m', roomy], { stdio: 'pipe' });
      const result = await downloadWeightSet('resnet18', entry, { baseUrl: base });
      expect(server.requests).toHaveLength(1); // not fetched again
      expect(result).toMatchObject({ attempts: 0, bytes: file.length });
      const manifest = readStoredManifest('resnet18', entry.id)!;
      expect(manifest.source).toMatchObject({ sha256, bytes: file.length, checksumVerified: true });
      const weightsBin = await stat(path.join(weightSetDir('resnet18', entry.id), 'weights.bin'));
      expect(weightsBin.size).toBe(manifest.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 4, 0));
      expect(await readdir(downloadsDir())).toEqual([]);
    } finally {
      execFileSync('umount', [roomy]);
    }
  });
});
