import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../../main/engine/backend';

const BACKEND_ORDER = ['node-gpu', 'node', 'wasm', 'cpu'];

/** Runs f with REFIT_BACKEND unset (a developer may have it set), restoring it afterwards. */
async function withoutRefitBackend<T>(f: () => Promise<T>): Promise<T> {
  const saved = process.env.REFIT_BACKEND;
  delete process.env.REFIT_BACKEND;
  try {
    return await f();
  } finally {
    if (saved !== undefined) process.env.REFIT_BACKEND = saved;
  }
}

describe('backend selection', () => {
  it('falls back past missing native packages and says why', async (ctx) => {
    // Resolved from an empty folder, both native packages are missing whatever this machine has installed
    // (unless one is already loaded in this process: then there is nothing to fall back past).
    if (tf.findBackend('tensorflow')) return ctx.skip();
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-no-native-'));
    try {
      const report = await withoutRefitBackend(() => initBackend({ resolveFrom: empty, settingsFile: path.join(empty, 'settings.json') }));
      expect(report.attempts).toEqual([
        { name: 'node-gpu', ok: false, reason: expect.stringMatching(/^@tensorflow\/tfjs-node-gpu is not installed \(its install script downloads libtensorflow/) },
        { name: 'node', ok: false, reason: expect.stringMatching(/^@tensorflow\/tfjs-node is not installed \(its install script downloads libtensorflow/) },
        { name: 'wasm', ok: true },
      ]);
      expect(report).toMatchObject({ name: 'wasm', tfBackend: 'wasm' });
      expect(tf.getBackend()).toBe('wasm');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it("with this checkout's packages: tries each backend in order up to the one chosen, saying why each earlier one failed", async () => {
    const report = await withoutRefitBackend(() => initBackend({ settingsFile: path.join(os.tmpdir(), 'refit-no-settings', 'settings.json') }));
    const chosen = BACKEND_ORDER.indexOf(report.name);
    expect(chosen).toBeGreaterThanOrEqual(0);
    expect(report.attempts.map((a) => a.name)).toEqual(BACKEND_ORDER.slice(0, chosen + 1));
    expect(report.attempts.at(-1)).toEqual({ name: report.name, ok: true });
    for (const failed of report.attempts.slice(0, -1)) {
      expect(failed.ok, failed.name).toBe(false);
      expect(failed.reason, failed.name).toMatch(/^@tensorflow\/tfjs-node(-gpu)? (is not installed|is installed but|loaded but)/);
    }
    expect(tf.getBackend()).toBe(report.tfBackend);
  });

  it('falls back when a native package is installed but its library fails to load', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-broken-'));
    for (const pkg of ['tfjs-node', 'tfjs-node-gpu']) {
      const dir = path.join(root, 'node_modules', '@tensorflow', pkg);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `@tensorflow/${pkg}`, main: 'index.js' }));
      fs.writeFileSync(
        path.join(dir, 'index.js'),
        "throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');",
      );
    }
    const report = await initBackend({ resolveFrom: root });
    expect(report.name).toBe('wasm');
    expect(report.attempts[0]).toMatchObject({ name: 'node-gpu', ok: false });
    expect(report.attempts[0].reason).toContain('native library failed to load: libtensorflow.so.2');
    expect(report.attempts[1].reason).toContain('@tensorflow/tfjs-node is installed but');
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('honours a requested backend and REFIT_BACKEND', async () => {
    const cpu = await initBackend({ requested: 'cpu' });
    expect(cpu).toMatchObject({ name: 'cpu', tfBackend: 'cpu', requested: 'cpu', threads: 1 });
    expect(cpu.attempts.filter((a) => !a.ok).every((a) => a.reason?.startsWith('skipped'))).toBe(true);

    process.env.REFIT_BACKEND = 'wasm';
    try {
      const wasm = await initBackend();
      expect(wasm).toMatchObject({ name: 'wasm', tfBackend: 'wasm', requested: 'wasm' });
    } finally {
      delete process.env.REFIT_BACKEND;
    }
  });

  it('rejects an unknown backend name naming the field', async () => {
    expect(() => parseBackendName('cuda')).toThrow(/REFIT_BACKEND: unknown backend "cuda"; expected one of node-gpu, node, wasm, cpu/);
    process.env.REFIT_BACKEND = 'tpu';
    try {
      await expect(initBackend()).rejects.toThrow(/unknown backend "tpu"/);
    } finally {
      delete process.env.REFIT_BACKEND;
    }
  });

  it('honours the "backend" key of the settings file, below REFIT_BACKEND, and names a bad file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refit-settings-'));
    const file = path.join(dir, 'settings.json');
    fs.writeFileSync(file, JSON.stringify({ backend: 'cpu' }));
    expect(await initBackend({ settingsFile: file })).toMatchObject({ name: 'cpu', requested: 'cpu' });
    process.env.REFIT_BACKEND = 'wasm';
    try {
      expect((await initBackend({ settingsFile: file })).name).toBe('wasm');
    } finally {
      delete process.env.REFIT_BACKEND;
    }
    fs.writeFileSync(file, JSON.stringify({ backend: 'gpu' }));
    await expect(initBackend({ settingsFile: file })).rejects.toThrow(`${file}: "backend": unknown backend "gpu"`);
    fs.writeFileSync(file, '{ backend: ');
    await expect(initBackend({ settingsFile: file })).rejects.toThrow(`${file}: not valid JSON`);
    expect((await initBackend({ settingsFile: path.join(dir, 'missing.json') })).requested).toBeUndefined();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
