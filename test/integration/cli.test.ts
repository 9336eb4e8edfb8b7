// Runs the real `refit` binary (bin/refit.mjs) as a user would, in a child process.
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../bin/refit.mjs');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

async function refit(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('refit CLI', () => {
  it('has --help on every command', async () => {
    const top = await refit('--help');
    expect(top.code).toBe(0);
    const commandSection = top.stdout.split('Commands:')[1];
    const commands = [...commandSection.matchAll(/^ {2}([a-z-]+)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['models', 'doctor', 'classify-imagenet']));
    for (const command of commands) {
      const help = await refit(command, '--help');
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain(`Usage: refit ${command}`);
    }
  });

  it('lists the registry as JSON with exact parameter counts', async () => {
    const { stdout, code } = await refit('models', '--json');
    expect(code).toBe(0);
    const models = JSON.parse(stdout) as { id: string; params: number; featureDim: number; inputSize: number; weights: string[] }[];
    const byId = Object.fromEntries(models.map((m) => [m.id, m]));
    expect(Object.keys(byId).sort()).toEqual(
      [
        'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
        'seresnet18', 'seresnet34', 'seresnet50', 'seresnet101', 'seresnet152',
        'xception', 'googlenet', 'vgg16', 'inceptionv4', 'seinceptionv4',
      ].sort(),
    );
    expect(byId.resnet50).toMatchObject({ params: 25_557_032, featureDim: 2048, inputSize: 224, weights: ['imagenet'] });
    expect(byId.vgg16.params).toBe(138_357_544);
    const table = await refit('models');
    expect(table.stdout).toMatch(/resnet18\s+ResNet-18\s+11,689,512/);
  });

  it('doctor reports the backend and why better ones were not used', async () => {
    const { stdout, code } = await refit('doctor', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(['node-gpu', 'node', 'wasm', 'cpu']).toContain(report.backend.name);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.versions.tfjs).toBe('4.22.0');
    const text = await refit('doctor');
    expect(text.stdout).toMatch(/^Backend: {2}\w/m);
    expect(report.forward).toMatchObject({ runtime: 'onnxruntime', threads: report.machine.cores, version: expect.stringMatching(/^1\./) });
    expect(text.stdout).toMatch(/^Forward: {2}onnxruntime 1\.\d+\.\d+ \(CPU, \d+ threads?\) for prediction, feature extraction and frozen stages$/m);
    // With onnxruntime turned off, doctor says TF.js serves forward passes, and why.
    const off = await run(process.execPath, [BIN, 'doctor'], { env: { ...process.env, REFIT_FORWARD: 'tfjs' } });
    expect(off.stdout).toMatch(/^Forward: {2}TF\.js '\w+' for prediction, feature extraction and frozen stages \(onnxruntime not used: disabled by REFIT_FORWARD=tfjs\)$/m);
    for (const failed of report.backend.attempts.filter((a: { ok: boolean }) => !a.ok)) {
      expect(text.stdout).toContain(failed.reason);
    }
    const cpu = await refit('--backend', 'cpu', 'doctor', '--json');
    expect(JSON.parse(cpu.stdout).backend.name).toBe('cpu');
  });

  it('rejects an unknown backend with a clear message', async () => {
    const { stderr, code } = await refit('--backend', 'cuda', 'doctor');
    expect(code).not.toBe(0);
    expect(stderr).toContain('unknown backend "cuda"');
  });

  it('classify-imagenet prints top-5 ImageNet labels as JSON', async () => {
    const image = path.join(PHOTOS, 'birds', 'pelican.png');
    const { stdout, code } = await refit('classify-imagenet', '--json', image, '/nonexistent/picture.jpg');
    expect(code).toBe(0);
    const results = JSON.parse(stdout) as { file: string; top: { label: string; probability: number; index: number }[]; error?: string }[];
    const pelican = results.find((r) => r.file === image)!;
    expect(pelican.top).toHaveLength(5);
    expect(Object.keys(pelican.top[0]).sort()).toEqual(['index', 'label', 'probability']);
    expect(pelican.top[0]).toMatchObject({ label: 'pelican', index: 144 });
    expect(pelican.top[0].label).toMatch(/pelican/i);
    const probs = pelican.top.map((t) => t.probability);
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);
    const missing = results.find((r) => r.file.includes('nonexistent'));
    expect(missing?.error).toMatch(/picture\.jpg/);
  });
});
