// The app's weights through the engine service (what the backbone cards call): weights.list,
// weights.get with weights.progress events and weights.cancel, against a 127.0.0.1 server named by
// REFIT_WEIGHTS_BASE_URL, serving a real torch.save'd ResNet-18 (seeded random weights, so the
// published checksum refuses it: the download itself is tested in weights-download.test.ts), and
// weights.import of the same file, after which the backbone lists ImageNet weights.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Events, ModelCard, Results } from '../../main/api/contract';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { hasTorchvision, seededResnet18 } from '../fixtures/weights-server';

let tmp: string;
let pth: string;
let server: http.Server;
let service: EngineService;
const progress: Events['weights.progress'][] = [];
const saved = { dir: process.env.REFIT_WEIGHTS_DIR, base: process.env.REFIT_WEIGHTS_BASE_URL };

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-weights-service-'));
  if (!hasTorchvision) return;
  pth = await seededResnet18(tmp, 3);
  const file = await readFile(pth);
  // Sends the file in 1 MB pieces, 20 ms apart: slow enough to cancel midway.
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': file.length });
    let at = 0;
    const next = () => {
      if (res.destroyed) return;
      if (at >= file.length) return void res.end();
      res.write(file.subarray(at, (at += 1 << 20)));
      setTimeout(next, 20);
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.REFIT_WEIGHTS_DIR = path.join(tmp, 'weights');
  process.env.REFIT_WEIGHTS_BASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'recent.json') });
  service.on((event, payload) => {
    if (event === 'weights.progress') progress.push(payload as Events['weights.progress']);
  });
}, 180_000);

afterAll(async () => {
  await service?.dispose();
  for (const [key, value] of [['REFIT_WEIGHTS_DIR', saved.dir], ['REFIT_WEIGHTS_BASE_URL', saved.base]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  server?.closeAllConnections();
  if (server) await new Promise((resolve) => server.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

const resnet18Sets = async () => ((await service.call('weights.list', {})) as Results['weights.list']).filter((s) => s.backbone === 'resnet18');

describe.skipIf(!hasTorchvision && !process.env.CI)('weights through the engine service', () => {
  it('lists the catalogue, downloads with progress events, cancels, and reports a refused file', async () => {
    expect(await resnet18Sets()).toEqual([
      expect.objectContaining({ set: 'torchvision-v1', publisher: 'torchvision', delivery: 'file', fileName: 'resnet18-f37072fd.pth', bytes: Math.round(44.661 * 2 ** 20), present: false, where: null }),
    ]);

    // Cancel once a few MB have arrived: the call fails saying so, nothing is usable, the partial file stays.
    const cancelled = service.call('weights.get', { backbone: 'resnet18' });
    await expect.poll(() => progress.at(-1)?.bytes ?? 0, { timeout: 30_000, interval: 20 }).toBeGreaterThan(3_000_000);
    expect(await service.call('weights.cancel', { backbone: 'resnet18' })).toEqual({ cancelled: true });
    await expect(cancelled).rejects.toThrow(/Download of resnet18's weights cancelled; \d+\.\d MB kept in .*resnet18-f37072fd\.pth\.partial/);
    expect(progress.every((p) => p.backbone === 'resnet18' && p.set === 'torchvision-v1' && p.total === (progress[0].total ?? 0))).toBe(true);
    expect(progress.some((p) => p.phase === 'downloading' && p.etaSeconds !== null && p.bytesPerSecond > 0)).toBe(true);
    expect((await resnet18Sets())[0].present).toBe(false);
    expect(await service.call('weights.cancel', { backbone: 'resnet18' })).toEqual({ cancelled: false });

    // The next try completes the download (this server ignores Range requests, so the file starts over); the seeded file is not the published one.
    await expect(service.call('weights.get', { backbone: 'resnet18' })).rejects.toThrow(/does not start with f37072fd.*Nothing was stored/);
    expect((await resnet18Sets())[0].present).toBe(false);
    expect(await readdir(path.join(process.env.REFIT_WEIGHTS_DIR!, '.downloads'))).toEqual([]);
  }, 120_000);

  it('imports a weights file, and the backbone then has ImageNet weights', async () => {
    const models = async () => ((await service.call('models.list', {})) as ModelCard[]).find((m) => m.id === 'resnet18')!;
    expect((await models()).weights).toEqual([]);
    const stored = (await service.call('weights.import', { backbone: 'resnet18', file: pth })) as Results['weights.import'];
    expect(stored).toMatchObject({ backbone: 'resnet18', set: 'torchvision-v1', publisher: 'torchvision', dir: path.join(process.env.REFIT_WEIGHTS_DIR!, 'resnet18', 'torchvision-v1') });
    expect(stored.tensors).toBeGreaterThan(60);
    expect((await resnet18Sets())[0]).toMatchObject({ present: true, where: stored.dir });
    expect((await models()).weights).toEqual(['imagenet', 'torchvision-v1']);
    await expect(service.call('weights.import', { backbone: 'resnet18', file: path.join(tmp, 'missing.pth') })).rejects.toThrow(/missing\.pth/);
    await expect(service.call('weights.get', { backbone: 'no such' })).rejects.toThrow(/backbone: an id such as resnet18/);
    await expect(service.call('weights.get', { backbone: 'resnet19' })).rejects.toThrow(/unknown backbone "resnet19"; valid ids are .*resnet18/);
    await expect(service.call('weights.get', { backbone: 'resnet50', source: 'keras' })).rejects.toThrow(/resnet50 keras: these weights ship with Refit; nothing to download/);
  }, 120_000);
});
