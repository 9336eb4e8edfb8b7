// Ctrl-C during `refit weights get` (the compiled CLI in a child process, a slow 127.0.0.1 server):
// exit code 130, a message saying how much is kept and how to continue, no usable set; the same
// command then continues with a Range request from where it stopped.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTorchvision, seededResnet18, startWeightsServer, type WeightsServer } from '../fixtures/weights-server';

const BIN = path.resolve(__dirname, '../../bin/refit.mjs');
let tmp: string;
let server: WeightsServer;
let sha256: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-get-int-'));
  if (!hasTorchvision) return;
  const file = await readFile(await seededResnet18(tmp, 13));
  sha256 = createHash('sha256').update(file).digest('hex');
  server = await startWeightsServer(file, 'resnet18-f37072fd.pth');
}, 180_000);

afterAll(async () => {
  await server?.close();
  await rm(tmp, { recursive: true, force: true });
});

function refit(args: string[], onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, REFIT_WEIGHTS_DIR: path.join(tmp, 'weights') } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    onSpawn?.(child);
  });
}

describe.skipIf(!hasTorchvision && !process.env.CI)('Ctrl-C during refit weights get', () => {
  it('stops with exit code 130 keeping the partial file, and the same command continues it', async () => {
    const partial = path.join(tmp, 'weights', '.downloads', 'resnet18-f37072fd.pth.partial');
    server.mode = { slow: 256 * 1024 };
    const interrupted = await refit(['weights', 'get', 'resnet18', '--url', server.base], (child) => {
      const poll = setInterval(() => {
        if (existsSync(partial) && statSync(partial).size > 2_000_000) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 20);
      child.on('exit', () => clearInterval(poll));
    });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(/refit weights get: download cancelled; \d+\.\d MB kept in .*resnet18-f37072fd\.pth\.partial, run the same command again to continue/);
    expect(existsSync(path.join(tmp, 'weights', 'resnet18'))).toBe(false);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(2_000_000);

    server.mode = {};
    server.requests = [];
    // The test's file is other weights than the published ones, so the published checksum refuses it once complete.
    const resumed = await refit(['weights', 'get', 'resnet18', '--url', server.base, '--json']);
    expect(server.requests).toEqual([{ url: '/models/resnet18-f37072fd.pth', range: `bytes=${kept}-`, ifRange: '"refit-test-1"' }]);
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toContain(`SHA-256 ${sha256.slice(0, 16)}… does not start with f37072fd`);
    expect(existsSync(partial)).toBe(false);
  }, 120_000);
});
