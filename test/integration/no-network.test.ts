// Refit makes no network access except `refit weights get`, and that only to the URL asked for. A whole
// CLI flow runs in child processes (and their training workers) under a preload that records every
// outgoing connection, DNS lookup, fetch and http(s) request and refuses any that is not to 127.0.0.1
// (test/fixtures/no-network.ts). The flow: inspect, train 1 epoch (+ export), predict, weights list,
// classify-imagenet with the bundled ResNet-50, and its advice for a backbone without weights (with
// imported weights: weights-download-classify.test.ts). Then `weights get` to a local server (only that
// server is contacted) and to the publisher's host (refused attempts to that host alone — which also
// shows the preload catches what it should).
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedCli, type GuardedCli } from '../fixtures/no-network';
import { hasTorchvision, seededResnet18 } from '../fixtures/weights-server';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

let tmp: string;
let cli: GuardedCli;
let server: http.Server;
let served: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-no-net-'));
  cli = await guardedCli(tmp);
  for (const c of ['birds', 'fruit']) {
    await mkdir(path.join(tmp, 'data', c), { recursive: true });
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 6);
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(tmp, 'data', c, f));
  }
  if (hasTorchvision) {
    const file = await readFile(await seededResnet18(tmp, 5));
    server = http.createServer((req, res) => {
      served.push(req.url ?? '');
      res.writeHead(200, { 'content-length': file.length }).end(file);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
}, 300_000);

afterAll(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
  await rm(tmp, { recursive: true, force: true });
});

describe('no network access but the one asked for', () => {
  it('a whole CLI flow opens no connection and looks up no host', async () => {
    const data = path.join(tmp, 'data');
    const project = path.join(tmp, 'project');
    const model = path.join(tmp, 'model');
    const steps: [string, string[]][] = [
      ['inspect', ['inspect', data, '--json']],
      ['train', ['train', data, '--backbone', 'resnet18', '--weights', 'none', '--mode', 'head', '--input-size', '32', '--epochs', '1', '--no-augment', '--project', project, '--out', model, '--json']],
      ['weights list', ['weights', 'list', '--json']],
      ['classify-imagenet', ['classify-imagenet', path.join(PHOTOS, 'birds', 'pelican.png'), '--json', '--top', '3']],
      ['classify-imagenet without weights', ['classify-imagenet', '--backbone', 'resnet34', path.join(PHOTOS, 'birds', 'pelican.png')]],
    ];
    for (const [name, args] of steps) {
      const result = await cli.refit(...args);
      if (name.endsWith('without weights')) {
        expect(result.code, name).toBe(1);
        expect(result.stderr).toContain('resnet34 has no ImageNet weights on this machine: run refit weights get resnet34 to download resnet34-b627a593.pth (87 MB), or refit weights import resnet34 FILE');
      } else {
        expect(result.code, `${name}: ${result.stderr}`).toBe(0);
      }
      if (name === 'classify-imagenet') {
        const [row] = JSON.parse(result.stdout) as { top: { label: string; probability: number; index: number }[] }[];
        expect(row.top[0]).toMatchObject({ label: 'pelican', index: 144 });
      }
    }
    expect(JSON.parse(await readFile(path.join(model, 'refit.json'), 'utf8')).labels).toEqual(['birds', 'fruit']);
    const predicted = await cli.refit('predict', model, path.join(PHOTOS, 'fruit', 'banana.png'), '--json');
    expect(predicted.code, predicted.stderr).toBe(0);
    expect(JSON.parse(predicted.stdout)[0].top.map((t: { label: string }) => t.label).sort()).toEqual(['birds', 'fruit']);

    expect(await cli.records()).toEqual([]);
  }, 600_000);

  it.skipIf(!hasTorchvision && !process.env.CI)('refit weights get connects only to the URL asked for', async () => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mirror/`;
    served = [];
    const got = await cli.refit('weights', 'get', 'resnet18', '--url', base);
    // The file is other weights than the published ones: refused by checksum, but the point is where it went.
    expect(got.code).toBe(1);
    expect(got.stderr).toContain('does not start with f37072fd');
    expect(served).toEqual(['/mirror/resnet18-f37072fd.pth']);
    const local = await cli.records();
    expect(local.length).toBeGreaterThan(0);
    expect(local.filter((r) => r.refused)).toEqual([]);
    expect(new Set(local.map((r) => r.target.replace(/^http:\/\/127\.0\.0\.1:\d+\/mirror\/resnet18-f37072fd\.pth$/, 'the URL').replace(/^127\.0\.0\.1:\d+$/, '127.0.0.1:port')))).toEqual(
      new Set(['the URL', '127.0.0.1:port']),
    );
    expect(local.filter((r) => r.kind === 'connect').every((r) => r.target === `127.0.0.1:${(server.address() as AddressInfo).port}`)).toBe(true);

    // Without --url: the publisher's host, and only it, is tried (here refused by the preload), with no fallback.
    await cli.clearRecords();
    const published = await cli.refit('weights', 'get', 'resnet18', '--retries', '1');
    expect(published.code).toBe(1);
    expect(published.stderr).toMatch(/could not connect to https:\/\/download\.pytorch\.org\/models\/resnet18-f37072fd\.pth/);
    const tried = await cli.records();
    expect(tried.length).toBeGreaterThan(0);
    expect(tried.every((r) => r.refused && /download\.pytorch\.org/.test(r.target))).toBe(true);
    expect(published.stderr).toMatch(/gave up after 2 connections/);
  }, 300_000);
});
