// Where onnxruntime-node cannot load (a platform without its binary, a broken install), the real CLI in
// real processes: `refit doctor` says training runs in TF.js and why, a full-mode run trains in TF.js
// with a warning and records it, and forcing the onnxruntime trainer is a clear error. The module is
// made unresolvable by a resolve hook (test/fixtures/block-onnxruntime.mjs) in NODE_OPTIONS, so the
// training process the CLI starts cannot load it either.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { copyPhotos } from '../fixtures/tiny-run';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../bin/refit.mjs');
const HOOK = path.resolve(__dirname, '../fixtures/block-onnxruntime.mjs');
const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${HOOK}`.trim() };
delete env.REFIT_TRAINER;
let tmp: string;
let data: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-no-ort-'));
  data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit'], 6);
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('without onnxruntime-node', () => {
  it('refit doctor says the network trains in TF.js, and why', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'doctor'], { env });
    expect(stdout).toMatch(/^Training: TF\.js for fine-tune and full modes \(onnxruntime-node cannot load: onnxruntime-node is blocked/m);
    // The same machine with onnxruntime-node: the default.
    const normal = await run(process.execPath, [BIN, 'doctor'], { env: { ...env, NODE_OPTIONS: process.env.NODE_OPTIONS ?? '' } });
    expect(normal.stdout).toMatch(/^Training: onnxruntime/m);
  }, 120_000);

  it('a full-mode run trains in TF.js with a warning and records why; --trainer onnx refuses', async () => {
    const project = path.join(tmp, 'project');
    const { stdout } = await run(
      process.execPath,
      [BIN, 'train', data, '--backbone', 'resnet18', '--weights', 'none', '--mode', 'full', '--input-size', '32', '--epochs', '1', '--batch-size', '4', '--no-augment', '--project', project, '--out', path.join(tmp, 'model'), '--json'],
      { env },
    );
    const events = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(events.some((e) => e.type === 'warning' && /trains in TF\.js, not onnxruntime: onnxruntime-node cannot load/.test(e.message))).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'result' });
    const runsDir = path.join(project, 'runs');
    const [runId] = await readdir(runsDir);
    const record = JSON.parse(await readFile(path.join(runsDir, runId, 'run.json'), 'utf8'));
    expect(record.status).toBe('completed');
    expect(record.trainer).toEqual({ engine: 'tfjs', reason: expect.stringMatching(/^onnxruntime-node cannot load/) });

    const forced = run(
      process.execPath,
      [BIN, 'train', data, '--backbone', 'resnet18', '--weights', 'none', '--mode', 'full', '--input-size', '32', '--epochs', '1', '--trainer', 'onnx', '--project', path.join(tmp, 'project2'), '--out', path.join(tmp, 'never'), '--json'],
      { env },
    );
    await expect(forced).rejects.toMatchObject({ stdout: expect.stringMatching(/--trainer onnx: the onnxruntime trainer cannot run: onnxruntime-node cannot load/) });
  }, 300_000);
});
