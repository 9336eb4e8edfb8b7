// A disk that fills up while training writes a checkpoint: the project lives on a 100 MiB tmpfs
// (mounted for the test, as root) where ResNet-18's resume checkpoint (≈ 45 MB), the new one built
// beside it before the swap, and a best checkpoint fit, but not a third copy: epoch 1 saves, epoch 2's
// resume checkpoint does not. The run fails
// with an error that names the checkpoint and the full disk; run.json, the best checkpoint and the
// previous last checkpoint are intact, nothing half-written is left, and the run resumes once there
// is room (the project folder copied to a roomier disk).
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointExists, loadModel } from '../../main/engine/checkpoint';
import { addSources, createProject, newRunId, readRun, runDir, scanProject } from '../../main/engine/project';
import { startTraining } from '../../main/engine/train-process';
import { disposeAll } from '../../models/heads';
import { copyPhotos, tinyFullConfig } from '../fixtures/tiny-run';

let tmp: string;
let disk: string;
let mounted = false;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-ckpt-disk-'));
  disk = path.join(tmp, 'small-disk');
  await mkdir(disk);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=100m', 'tmpfs', disk], { stdio: 'pipe' });
    mounted = true;
  } catch {
    mounted = false;
  }
});

afterAll(async () => {
  if (mounted) execFileSync('umount', [disk]);
  await rm(tmp, { recursive: true, force: true });
});

const config = tinyFullConfig(5);

describe('a disk that fills up during a checkpoint write', () => {
  it('fails the run clearly, keeps what was saved, and resumes where there is room', async (ctx) => {
    if (!mounted) return ctx.skip(); // needs root to mount a small tmpfs
    const data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit'], 8);
    const project = await createProject(path.join(disk, 'project'), { name: 'full disk' });
    await addSources(project, [data]);
    const images = (await scanProject(project)).images;
    const runId = newRunId();
    const job = { projectDir: project.dir, runId, config, images };
    await expect(startTraining(job, {}).done).rejects.toThrow(/could not write checkpoint .*small-disk\/project\/runs\/.*(ENOSPC|no space left)/i);

    const record = await readRun(project.dir, runId);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/ENOSPC|no space left/i);
    // run.json names no epoch whose checkpoints did not reach the disk: epoch 1 (saved), not epoch 2.
    expect(record.history.map((h) => h.epoch)).toEqual([1]);
    expect(record.bestEpoch).toBe(1);
    for (const name of ['best', 'last']) {
      const dir = path.join(runDir(project.dir, runId), name);
      expect(await checkpointExists(dir), name).toBe(true);
      disposeAll(await loadModel(dir));
    }
    expect((await readdir(runDir(project.dir, runId))).filter((n) => n.startsWith('.'))).toEqual([]);

    // With room again (the project copied to a bigger disk), the run resumes to the end.
    const roomy = path.join(tmp, 'project-copy');
    await cp(project.dir, roomy, { recursive: true });
    const resumed = await startTraining({ ...job, projectDir: roomy, resume: true }, {}).done;
    expect(resumed.status).toBe('completed');
    expect((await readRun(roomy, runId)).history.map((h) => h.epoch)).toEqual([1, 2]);
  }, 300_000);
});
