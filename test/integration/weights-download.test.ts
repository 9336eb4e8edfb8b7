// `refit weights get` against a local HTTP server on 127.0.0.1 serving a real torchvision file: a
// ResNet-18 with seeded random weights saved by torch.save (the format torchvision publishes), made at
// test time with /usr/bin/python3 + torchvision. Progress, a connection dropped midway (resumed with a
// Range request), cancel and resume on the next try, a checksum mismatch, HTTP errors — the weights
// cache never holds a usable half or wrong set. A full disk: weights-download-disk.test.ts.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DownloadCancelledError, downloadableSet, downloadsDir, downloadWeightSet, type DownloadProgress } from '../../main/engine/weights-download';
import type { CommandIO } from '../../main/host/commands/io';
import { registerWeights } from '../../main/host/commands/weights';
import { getBackbone } from '../../models/registry';
import type { WeightSetEntry } from '../../models/weight-sets';
import { importWeightFile } from '../../models/weights/load';
import { readStoredManifest, weightSetDir } from '../../models/weights/store';
import { ETAG, hasTorchvision, seededResnet18, startWeightsServer, type WeightsServer } from '../fixtures/weights-server';

let tmp: string;
let file: Buffer;
let sha256: string;
let server: WeightsServer;
let base: string;
const savedDir = process.env.REFIT_WEIGHTS_DIR;

/** The catalogue's ResNet-18 set, with the checksum prefix of the test's file (the published one is of the real weights). */
let entry: WeightSetEntry;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-get-'));
  if (!hasTorchvision) return;
  file = await readFile(await seededResnet18(tmp, 11));
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

let cacheCount = 0;
/** A fresh, empty weights cache for each test. */
async function freshCache(): Promise<string> {
  const dir = path.join(tmp, `cache-${++cacheCount}`);
  await mkdir(dir, { recursive: true });
  process.env.REFIT_WEIGHTS_DIR = dir;
  server.requests = [];
  server.mode = {};
  return dir;
}

afterEach(() => {
  if (server) server.mode = {};
});

let reference: Buffer | undefined;
/** weights.bin as `refit weights import` stores the same file: what a correct download must give. */
async function referenceWeights(): Promise<Buffer> {
  if (reference) return reference;
  const dir = await freshCache();
  const copy = path.join(tmp, entry.fileName);
  await writeFile(copy, file);
  const info = getBackbone('resnet18');
  const result = await importWeightFile('resnet18', entry, copy, (size, variant) => info.build({ inputSize: size, variant }));
  expect(result.manifest.source.checksumVerified).toBe(true);
  reference = await readFile(path.join(weightSetDir('resnet18', entry.id), 'weights.bin'));
  await rm(dir, { recursive: true, force: true });
  return reference;
}

async function storedWeights(): Promise<Buffer> {
  return readFile(path.join(weightSetDir('resnet18', entry.id), 'weights.bin'));
}

/** Nothing usable and nothing half-written: no weights.json, no temporaries beside the set's folder. */
async function expectNothingStored(cache: string) {
  expect(readStoredManifest('resnet18', entry.id)).toBeUndefined();
  expect(getBackbone('resnet18').weights).toEqual([]);
  const backboneDir = path.join(cache, 'resnet18');
  expect(existsSync(backboneDir) ? await readdir(backboneDir) : []).toEqual([]);
}

describe.skipIf(!hasTorchvision && !process.env.CI)('refit weights get from a local server', () => {
  it('downloads with progress, verifies the checksum and stores exactly what an import of the file stores', async () => {
    const expected = await referenceWeights();
    const cache = await freshCache();
    const events: DownloadProgress[] = [];
    const result = await downloadWeightSet('resnet18', entry, { baseUrl: base, onProgress: (p) => events.push(p) });
    expect(server.requests).toEqual([{ url: '/models/resnet18-f37072fd.pth' }]);
    expect(result).toMatchObject({ url: base + 'resnet18-f37072fd.pth', bytes: file.length, attempts: 1, resumed: 0 });
    expect(result.verified).toMatch(new RegExp(`^SHA-256 ${sha256.slice(0, 16)}… starts with the published ${sha256.slice(0, 8)}`));
    const downloading = events.filter((e) => e.phase === 'downloading');
    expect(downloading.length).toBeGreaterThan(10);
    expect(downloading.every((e) => e.total === file.length)).toBe(true);
    expect(downloading.every((e, i) => i === 0 || e.bytes > downloading[i - 1].bytes)).toBe(true);
    expect(downloading.at(-1)!.bytes).toBe(file.length);
    expect(downloading.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== undefined)).toBe(true);
    expect(events.map((e) => e.phase)).toEqual(expect.arrayContaining(['verifying', 'converting', 'storing']));
    const manifest = readStoredManifest('resnet18', entry.id)!;
    expect(manifest).toMatchObject({ publisher: 'torchvision', variant: 'resnet-v1.5', source: { sha256, bytes: file.length, checksumVerified: true } });
    expect((await storedWeights()).equals(expected)).toBe(true);
    expect(getBackbone('resnet18').weights).toEqual(['imagenet', entry.id]);
    // The published file is not kept beside the converted set.
    expect(await readdir(downloadsDir())).toEqual([]);
    expect(await readdir(cache)).toEqual(['.downloads', 'resnet18']);
  });

  it('resumes with a Range request after the server drops the connection midway', async () => {
    const expected = await referenceWeights();
    await freshCache();
    const cut = 17_000_000;
    server.mode = { dropAfter: cut };
    const retries: string[] = [];
    const result = await downloadWeightSet('resnet18', entry, { baseUrl: base, retryDelayMs: 10, onRetry: (m) => retries.push(m) });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0].range).toBeUndefined();
    // The second request continues from where the first stopped, guarded by the first response's ETag.
    const from = Number(/^bytes=(\d+)-$/.exec(server.requests[1].range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(cut);
    expect(server.requests[1].ifRange).toBe(ETAG);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(/connection dropped at .* MB of .* MB.*retrying in/);
    expect(result).toMatchObject({ attempts: 2, resumed: 1, bytes: file.length });
    expect((await storedWeights()).equals(expected)).toBe(true);
  });

  it('cancel mid-download stores nothing; the next try continues from the partial file', async () => {
    const expected = await referenceWeights();
    const cache = await freshCache();
    const controller = new AbortController();
    const first = downloadWeightSet('resnet18', entry, {
      baseUrl: base,
      signal: controller.signal,
      onProgress: (p) => p.phase === 'downloading' && p.bytes > 8_000_000 && controller.abort(),
    });
    const err = await first.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadCancelledError);
    expect((err as Error).message).toMatch(/download cancelled; .* MB kept in .*resnet18-f37072fd\.pth\.partial, run the same command again/);
    await expectNothingStored(cache);
    const kept = (err as DownloadCancelledError).bytes;
    expect(kept).toBeGreaterThan(8_000_000);
    expect(kept).toBeLessThan(file.length);

    const result = await downloadWeightSet('resnet18', entry, { baseUrl: base });
    expect(server.requests.at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(result).toMatchObject({ resumed: 1, bytes: file.length });
    expect((await storedWeights()).equals(expected)).toBe(true);
  });

  it('refuses a file whose SHA-256 does not match the published prefix, and keeps nothing', async () => {
    const cache = await freshCache();
    const published = downloadableSet('resnet18'); // the real f37072fd prefix; the test's file is other weights
    await expect(downloadWeightSet('resnet18', published, { baseUrl: base })).rejects.toThrow(
      /resnet18-f37072fd\.pth from http:\/\/127\.0\.0\.1:\d+\/models\/resnet18-f37072fd\.pth: SHA-256 [0-9a-f]{16}… does not start with f37072fd.*Nothing was stored and the download was deleted/,
    );
    await expectNothingStored(cache);
    expect(await readdir(downloadsDir())).toEqual([]);
  });

  it('names the URL and the HTTP status of a missing file, and never tries another host', async () => {
    await freshCache();
    await expect(downloadWeightSet('resnet18', entry, { baseUrl: base.replace('/models/', '/elsewhere/') })).rejects.toThrow(
      /http:\/\/127\.0\.0\.1:\d+\/elsewhere\/resnet18-f37072fd\.pth answered HTTP 404 Not Found: the file is not there/,
    );
    expect(server.requests).toEqual([{ url: '/elsewhere/resnet18-f37072fd.pth' }]);
    // A server that keeps failing: retried, then a clear error; still only the URL asked for.
    server.requests = [];
    server.mode = { status: 503 };
    await expect(downloadWeightSet('resnet18', entry, { baseUrl: base, retries: 2, retryDelayMs: 5 })).rejects.toThrow(/answered HTTP 503 .*gave up after 3 connections/);
    expect(server.requests.map((r) => r.url)).toEqual(Array(3).fill('/models/resnet18-f37072fd.pth'));
  });

  it('refit weights get --url: the command shows the download and refuses the published checksum of other weights', async () => {
    const cache = await freshCache();
    const out = { stdout: '', stderr: '', code: 0 };
    const io: CommandIO = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), stderrIsTTY: true, columns: 200, setExitCode: (c) => void (out.code = c) };
    const program = new Command('refit').exitOverride();
    registerWeights(program, io);
    await program.parseAsync(['weights', 'get', 'resnet18', '--url', base], { from: 'user' });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`Downloading resnet18 torchvision-v1 (torchvision, 46.8 MB) from ${base}resnet18-f37072fd.pth`);
    expect(out.stderr).toMatch(/downloading resnet18-f37072fd\.pth \d+\.\d MB \/ \d+\.\d MB \(\d+%\)/);
    expect(out.stderr).toMatch(/refit weights get: resnet18-f37072fd\.pth from .*does not start with f37072fd/);
    await expectNothingStored(cache);
  });
});
