// Crash consistency: the training process killed (SIGKILL, as the out-of-memory killer would) at the
// worst moments — a run.json written but not renamed into place, a checkpoint built but not swapped in,
// the old checkpoint set aside and the new one not yet in place — and the engine's own process killed
// while it writes project.json. After each, the project opens with its last good state, every
// checkpoint on disk loads, and the run resumes to the end. Fault points: REFIT_FAULT_KILL in
// main/engine/atomic-fs.ts, given to the killed process only.
import { fork, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointExists, loadModel } from '../../main/engine/checkpoint';
import { addSources, createProject, listRuns, newRunId, openProject, readRun, runDir, scanProject, type Project } from '../../main/engine/project';
import { startTraining } from '../../main/engine/train-process';
import { disposeAll } from '../../models/heads';
import { copyPhotos, PHOTOS5 as PHOTOS, tinyFullConfig } from '../fixtures/tiny-run';

const ROOT = path.resolve(__dirname, '../..');
const tsxLoader = pathToFileURL(path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;

const config = tinyFullConfig(3);

let tmp: string;
let project: Project;
let images: Awaited<ReturnType<typeof scanProject>>['images'];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-crash-'));
  const data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit'], 8);
  project = await createProject(path.join(tmp, 'project'), { name: 'crash' });
  await addSources(project, [data]);
  images = (await scanProject(project)).images;
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** The TypeScript training worker with a fault point set in its environment only. */
const workerWithFault = (fault: string) => (): ChildProcess =>
  fork(path.join(ROOT, 'main/engine/train-worker.ts'), [], {
    execArgv: ['--import', tsxLoader],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, REFIT_FAULT_KILL: fault },
  });

function run(runId: string, options: { fault?: string; resume?: boolean }) {
  return startTraining(
    { projectDir: project.dir, runId, config, images, ...(options.resume ? { resume: true } : {}) },
    options.fault ? { spawn: workerWithFault(options.fault) } : {},
  );
}

async function expectCheckpointsLoad(runId: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of ['best', 'last', 'head-last']) {
    const dir = path.join(runDir(project.dir, runId), name);
    if (!(await checkpointExists(dir))) continue; // puts back a checkpoint a crash left aside
    disposeAll(await loadModel(dir));
    found.push(name);
  }
  const leftovers = (await readdir(runDir(project.dir, runId))).filter((n) => n.startsWith('.'));
  expect(leftovers, 'temporaries left after recovery').toEqual([]);
  return found;
}

const POINTS: { fault: string; when: string; runJson: boolean }[] = [
  { fault: 'file-renaming:1', when: 'writing the first run.json', runJson: false },
  { fault: 'dir-filled:1', when: 'building the starting checkpoint', runJson: true },
  { fault: 'dir-swapping:1', when: 'between the two renames of last/ after epoch 1', runJson: true },
  { fault: 'file-renaming:2', when: 'writing run.json after epoch 1', runJson: true },
];

describe('a training process killed mid-write', () => {
  it.each(POINTS)('$when ($fault): the project keeps its last good state and the run resumes', async ({ fault, runJson }) => {
    const runId = newRunId();
    await expect(run(runId, { fault }).done).rejects.toThrow(/SIGKILL/);
    // The project opens and scans as before; the run list is readable.
    const reopened = await openProject(project.dir);
    expect((await scanProject(reopened)).images).toHaveLength(images.length);
    const { runs, unreadable } = await listRuns(project.dir);
    expect(unreadable).toEqual([]);
    expect(runs.some((r) => r.id === runId)).toBe(runJson);
    if (!runJson) return; // killed before the run existed: nothing to resume, nothing damaged
    const record = await readRun(project.dir, runId); // the parent marks it failed: that write also clears a dead temporary
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/SIGKILL/);
    // Every epoch run.json announces has its checkpoint on disk.
    const checkpoints = await expectCheckpointsLoad(runId);
    if (record.bestEpoch !== null) expect(checkpoints).toContain('best');

    const resumed = await run(runId, { resume: true }).done;
    expect(resumed.status).toBe('completed');
    const finished = await readRun(project.dir, runId);
    expect(finished.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(await expectCheckpointsLoad(runId)).toEqual(expect.arrayContaining(['best', 'last']));
  }, 240_000);
});

describe('the engine killed while it writes project.json', () => {
  it('reopens with the last good project.json and nothing half-written in sight', async () => {
    const before = await readFile(path.join(project.dir, 'project.json'), 'utf8');
    const extra = path.join(tmp, 'more');
    await mkdir(path.join(extra, 'mammals'), { recursive: true });
    const mammal = (await readdir(path.join(PHOTOS, 'mammals'))).filter((f) => f.endsWith('.png')).sort()[0];
    await cp(path.join(PHOTOS, 'mammals', mammal), path.join(extra, 'mammals', mammal));
    const script = path.join(tmp, 'add-folder.mts');
    await writeFile(
      script,
      `import { addSources, openProject } from ${JSON.stringify(path.join(ROOT, 'main/engine/project.ts'))};\n` +
        `const p = await openProject(${JSON.stringify(project.dir)});\nawait addSources(p, [${JSON.stringify(extra)}]);\n`,
    );
    const child = fork(script, [], { execArgv: ['--import', tsxLoader], stdio: 'ignore', env: { ...process.env, REFIT_FAULT_KILL: 'file-renaming:1' } });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    expect(await readFile(path.join(project.dir, 'project.json'), 'utf8')).toBe(before);
    const reopened = await openProject(project.dir);
    expect(reopened.data.classes.map((c) => c.name).sort()).toEqual(['birds', 'fruit']);
    // The half-written temporary is hidden (a dot-file); the next write replaces project.json cleanly
    // and removes it.
    expect((await readdir(project.dir)).filter((n) => n.startsWith('.project.json.'))).toHaveLength(1);
    await addSources(reopened, [extra]);
    expect((await readdir(project.dir)).filter((n) => n.startsWith('.project.json.'))).toEqual([]);
    expect((await openProject(project.dir)).data.classes.map((c) => c.name).sort()).toEqual(['birds', 'fruit', 'mammals']);
    await stat(path.join(project.dir, 'project.json'));
  }, 120_000);
});
