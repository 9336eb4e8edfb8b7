// `refit train` → `refit predict` as a user runs them, and Ctrl-C during training.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../bin/refit.mjs');
const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');
let tmp: string;
let data: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-cli-train-'));
  data = path.join(tmp, 'data');
  for (const c of ['birds', 'fruit']) {
    await mkdir(path.join(data, c), { recursive: true });
    const files = (await readdir(path.join(PHOTOS, c))).filter((f) => f.endsWith('.png')).sort().slice(0, 12);
    for (const f of files) await cp(path.join(PHOTOS, c, f), path.join(data, c, f));
  }
});

const jsonLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('refit train and predict', () => {
  it('trains, exports, and the export classifies images', async () => {
    const out = path.join(tmp, 'model');
    const { stdout } = await run(process.execPath, [
      BIN, 'train', data, '--backbone', 'resnet18', '--weights', 'none', '--mode', 'head', '--input-size', '32',
      '--epochs', '2', '--no-augment', '--project', path.join(tmp, 'project'), '--out', out, '--json',
    ]);
    const events = jsonLines(stdout);
    expect(events.some((e) => e.type === 'progress' && e.phase === 'extract')).toBe(true);
    expect(events.filter((e) => e.type === 'epoch')).toHaveLength(2);
    const result = events.at(-1);
    expect(result).toMatchObject({ type: 'result', modelDir: out });
    expect(result.metrics.valAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.metrics.valAccuracy).toBeLessThanOrEqual(1);
    const manifest = JSON.parse(await readFile(path.join(out, 'refit.json'), 'utf8'));
    expect(manifest.labels).toEqual(['birds', 'fruit']);

    const images = [path.join(PHOTOS, 'birds', 'owl.png'), path.join(PHOTOS, 'fruit', 'banana.png')];
    const predicted = await run(process.execPath, [BIN, 'predict', out, ...images, '--json', '--top', '2']);
    const rows = JSON.parse(predicted.stdout) as { file: string; top: { label: string; probability: number }[] }[];
    expect(rows.map((r) => r.file)).toEqual(images);
    for (const row of rows) {
      expect(row.top.map((t) => t.label).sort()).toEqual(['birds', 'fruit']);
      expect(row.top[0].probability + row.top[1].probability).toBeCloseTo(1, 4);
    }
  }, 300_000);

  it('Ctrl-C cancels cleanly: the run and its checkpoint are kept, nothing is exported', async () => {
    const project = path.join(tmp, 'project-cancel');
    const child = spawn(process.execPath, [
      BIN, 'train', data, '--backbone', 'resnet18', '--weights', 'none', '--mode', 'full', '--input-size', '32',
      '--epochs', '20', '--batch-size', '4', '--project', project, '--out', path.join(tmp, 'never'), '--json',
    ]);
    let stdout = '';
    let interrupted = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!interrupted && stdout.includes('"type":"epoch"')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    const result = jsonLines(stdout).at(-1);
    expect(result).toMatchObject({ type: 'result', status: 'cancelled', modelDir: null });
    const record = JSON.parse(await readFile(path.join(project, 'runs', result.runId, 'run.json'), 'utf8'));
    expect(record.status).toBe('cancelled');
    expect(record.history.length).toBeGreaterThanOrEqual(1);
    expect(record.history.length).toBeLessThan(20);
    await expect(readdir(path.join(tmp, 'never'))).rejects.toThrow();
  }, 300_000);
});
