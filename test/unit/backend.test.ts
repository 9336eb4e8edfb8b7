import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../../main/engine/backend';

describe('backend selection', () => {
  it('falls back past missing native packages and says why', async () => {
    const report = await initBackend({ requested: undefined });
    const names = report.attempts.map((a) => a.name);
    expect(names[0]).toBe('node-gpu');
    expect(names.at(-1)).toBe(report.name);
    for (const failed of report.attempts.filter((a) => !a.ok)) {
      expect(failed.reason).toMatch(/tfjs-node/);
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
