import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../main/api/training';
import { recoverDir, replaceDirAtomic, writeJsonAtomic } from '../../main/engine/atomic-fs';
import { makeRunRecord } from '../fixtures/run-record';
import {
  addSources,
  cacheDir,
  createProject,
  excludeImage,
  forgetMissing,
  includeImage,
  listRuns,
  newRunId,
  openOrCreateProject,
  openProject,
  readRun,
  removeClass,
  renameClass,
  runDir,
  scanProject,
  writeRun,
} from '../../main/engine/project';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');

let tmp: string;
const at = (...parts: string[]) => path.join(tmp, ...parts);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-project-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A small class-folder dataset made of real photos: fruit (6) and birds (6). */
async function makeDataset(root: string) {
  for (const cls of ['fruit', 'birds']) {
    await mkdir(path.join(root, cls), { recursive: true });
    const names = (await readdir(path.join(PHOTOS5, cls))).filter((n) => n.endsWith('.png')).sort().slice(0, 6);
    for (const name of names) await copyFile(path.join(PHOTOS5, cls, name), path.join(root, cls, name));
  }
}

function runRecord(id: string, overrides: Partial<RunRecord> = {}): RunRecord {
  return makeRunRecord({
    id,
    created: '2025-01-01T00:00:00.000Z',
    updated: '2025-01-01T00:00:00.000Z',
    config: { mode: 'head', batchSize: 4, learningRate: 0.001, augment: true },
    labels: ['birds', 'fruit'],
    datasetFingerprint: 'abc',
    ...overrides,
  });
}

describe('project store', () => {
  it('creates, edits and reopens a project (round trip)', async () => {
    const dir = at('p1');
    const project = await createProject(dir, { name: 'Photos' });
    expect((await readdir(dir)).sort()).toEqual(['cache', 'project.json', 'runs']);
    expect(project.data).toMatchObject({ format: 'refit-project', version: 1, name: 'Photos', classes: [], exclusions: [], settings: {} });

    await addSources(project, [PHOTOS5]);
    expect(project.data.classes.map((c) => c.name)).toEqual(['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    await addSources(project, [path.join(PHOTOS5, 'birds')]); // same class, same folder: nothing new
    expect(project.data.classes[0].folders).toEqual([path.join(PHOTOS5, 'birds')]);

    await renameClass(project, 'flowers', 'plants');
    await renameClass(project, 'vegetables', 'plants'); // onto an existing name: the classes merge
    expect(project.data.classes.map((c) => c.name)).toEqual(['birds', 'plants', 'fruit', 'mammals']);
    expect(project.data.classes[1].folders).toEqual([path.join(PHOTOS5, 'flowers'), path.join(PHOTOS5, 'vegetables')]);
    await removeClass(project, 'mammals');
    await expect(removeClass(project, 'mammals')).rejects.toThrow(/No class "mammals"/);
    const excluded = path.join(PHOTOS5, 'fruit', 'pineapple.png');
    await excludeImage(project, excluded);
    await excludeImage(project, excluded);
    expect(project.data.exclusions).toEqual([excluded]);

    const reopened = await openProject(dir);
    expect(reopened).toEqual(project);
    const report = await scanProject(reopened);
    expect(Object.fromEntries(report.classes.map((c) => [c.name, c.images]))).toEqual({ birds: 35, plants: 43, fruit: 25 });
    expect(report.excluded).toBe(1);
    expect(report.images.some((i) => i.file === excluded)).toBe(false);
    await includeImage(reopened, excluded);
    expect((await scanProject(reopened)).classes.find((c) => c.name === 'fruit')!.images).toBe(26);

    await expect(createProject(dir, { name: 'again' })).rejects.toThrow(`${path.resolve(dir)} is already a Refit project`);
    expect((await openOrCreateProject(dir, { name: 'x' })).data.name).toBe('Photos');
    expect((await openOrCreateProject(at('p1-new'), { name: 'New' })).data.name).toBe('New');
  });

  it("never makes a project inside a non-empty folder that is not one (e.g. the user's photos)", async () => {
    const dir = at('users-folder');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'holiday.jpg'), 'not really a photo');
    await expect(openOrCreateProject(dir, { name: 'x' })).rejects.toThrow(`${path.resolve(dir)} is not empty and is not a Refit project`);
    expect(await readdir(dir)).toEqual(['holiday.jpg']);
  });

  it('refuses folders that are not Refit projects, newer versions and corrupt files, naming the file', async () => {
    const dir = at('notours');
    await mkdir(dir);
    await expect(openProject(dir)).rejects.toThrow(`${dir} is not a Refit project: it has no project.json`);
    const file = path.join(dir, 'project.json');
    await writeFile(file, JSON.stringify({ name: 'some other app' }));
    await expect(openProject(dir)).rejects.toThrow(`${file} is not a Refit project file: it has no "format" field, expected "refit-project"`);
    await writeFile(file, JSON.stringify({ format: 'vscode-workspace', version: 1 }));
    await expect(openProject(dir)).rejects.toThrow(`${file} is not a Refit project file: its format is "vscode-workspace"`);
    await writeFile(file, JSON.stringify({ format: 'refit-project', version: 2 }));
    await expect(openProject(dir)).rejects.toThrow(`${file} was written by a newer Refit (project format version 2); this Refit reads version 1`);
    await writeFile(file, '{"format": "refit-project", "version": 1, "name": "half-writ');
    await expect(openProject(dir)).rejects.toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is corrupt \\(not valid JSON`));
    const valid = (await createProject(at('valid'), { name: 'v' })).data;
    await writeFile(file, JSON.stringify({ ...valid, classes: [{ name: 'a', folders: 'not-a-list' }] }));
    await expect(openProject(dir)).rejects.toThrow(`${file} is not a valid Refit project file: classes.0.folders:`);
  });

  it('reports a moved image as missing (not fatal), and a moved source folder', async () => {
    const data = at('data-moves');
    await makeDataset(data);
    const project = await createProject(at('p-moves'), { name: 'moves' });
    await addSources(project, [data]);
    const first = await scanProject(project);
    expect(first.images).toHaveLength(12);
    expect(first.problems).toEqual([]);
    const index = JSON.parse(await readFile(path.join(project.dir, 'index.json'), 'utf8'));
    expect(index.format).toBe('refit-index');
    expect(Object.keys(index.entries)).toHaveLength(12);

    const moved = first.images.find((i) => i.className === 'fruit')!.file;
    await rename(moved, at('moved-away.png'));
    const second = await scanProject(project);
    expect(second.images).toHaveLength(11);
    expect(second.problems).toEqual([{ file: moved, kind: 'missing', reason: expect.stringMatching(/no longer there/) }]);
    // still reported on the next scan, until forgotten (or excluded)
    const third = await scanProject(project);
    expect(third.problems.map((p) => p.kind)).toEqual(['missing']);
    expect(await forgetMissing(project, third)).toBe(1);
    expect((await scanProject(project)).problems).toEqual([]);

    await rename(path.join(data, 'birds'), at('birds-elsewhere'));
    const fourth = await scanProject(project);
    expect(fourth.classes.find((c) => c.name === 'birds')!.images).toBe(0);
    expect(fourth.problems.find((p) => p.file === path.join(data, 'birds'))).toMatchObject({ kind: 'missing', reason: expect.stringMatching(/Source folder of class "birds" not found/) });
    expect(fourth.problems.filter((p) => p.kind === 'missing')).toHaveLength(7);
    expect(fourth.warnings).toContain('Class "birds" has no usable images');
  });

  it('rescans from the index without re-reading unchanged files', async () => {
    const data = at('data-warm');
    await makeDataset(data);
    const project = await createProject(at('p-warm'), { name: 'warm' });
    await addSources(project, [data]);
    const cold = await scanProject(project);
    const indexFile = path.join(project.dir, 'index.json');
    const before = await stat(indexFile);
    const warm = await scanProject(project);
    expect(warm).toEqual(cold);
    expect((await stat(indexFile)).mtimeMs).toBe(before.mtimeMs); // nothing new: the index is not rewritten
    await writeFile(indexFile, '{ corrupt');
    expect(await scanProject(project)).toEqual(cold); // a damaged cache only costs a rescan
  });
});

describe('runs', () => {
  it('makes sortable run ids, writes and reads run records, and lists runs', async () => {
    const dir = (await createProject(at('p-runs'), { name: 'runs' })).dir;
    const a = newRunId(new Date('2025-01-01T10:00:00.000Z'));
    const b = newRunId(new Date('2025-01-01T10:00:00.001Z'));
    const c = newRunId(new Date('2025-12-31T23:59:59.999Z'));
    expect(a).toMatch(/^20250101-100000-000-[0-9a-f]{4}$/);
    expect([c, b, a].sort()).toEqual([a, b, c]);
    expect(runDir(dir, a)).toBe(path.join(dir, 'runs', a));
    expect(cacheDir(dir)).toBe(path.join(dir, 'cache'));
    expect(() => runDir(dir, '../escape')).toThrow(/Invalid run id/);

    await writeRun(dir, runRecord(b));
    await writeRun(dir, runRecord(a, { status: 'cancelled' }));
    expect(await readRun(dir, a)).toEqual(runRecord(a, { status: 'cancelled' }));
    await expect(writeRun(dir, { ...runRecord(c), status: 'exploded' as never })).rejects.toThrow(/Refusing to write an invalid run record .*status/);
    await expect(readRun(dir, c)).rejects.toThrow(`No run "${c}"`);

    await mkdir(runDir(dir, c)); // a run being created: no run.json yet
    const damaged = newRunId(new Date('2025-06-01T00:00:00Z'));
    await mkdir(runDir(dir, damaged));
    await writeFile(path.join(runDir(dir, damaged), 'run.json'), '{"format": "refit-run", "vers');
    const { runs, unreadable } = await listRuns(dir);
    expect(runs.map((r) => r.id)).toEqual([a, b]);
    expect(unreadable).toEqual([{ id: damaged, error: expect.stringMatching(/run\.json is corrupt/) }]);
  });
});

describe('atomic writes', () => {
  it('leaves the old file intact when the value cannot be serialised', async () => {
    const file = at('atomic.json');
    await writeJsonAtomic(file, { v: 1 });
    await expect(writeJsonAtomic(file, { v: 2, bad: { toJSON: () => { throw new Error('boom'); } } })).rejects.toThrow('boom');
    await expect(writeJsonAtomic(file, { v: 3, n: 10n })).rejects.toThrow(/BigInt/);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ v: 1 });
    expect((await readdir(tmp)).filter((n) => n.includes('atomic.json.'))).toEqual([]);
  });

  it('replaces a folder atomically, keeps it when filling fails, and recovers after a crash between renames', async () => {
    const dir = at('ckpt', 'best');
    await replaceDirAtomic(dir, async (t) => writeFile(path.join(t, 'model.json'), '1'));
    await replaceDirAtomic(dir, async (t) => writeFile(path.join(t, 'model.json'), '2'));
    expect(await readFile(path.join(dir, 'model.json'), 'utf8')).toBe('2');
    await expect(
      replaceDirAtomic(dir, async (t) => {
        await writeFile(path.join(t, 'model.json'), 'half');
        throw new Error('out of memory while saving');
      }),
    ).rejects.toThrow('out of memory');
    expect(await readFile(path.join(dir, 'model.json'), 'utf8')).toBe('2');
    expect(await readdir(at('ckpt'))).toEqual(['best']);

    // A crash right after the old folder was moved aside: the next call (or recoverDir) puts it back.
    await rename(dir, at('ckpt', '.best.123.abcd.old'));
    await mkdir(at('ckpt', '.best.123.ef01.tmp'));
    await recoverDir(dir);
    expect(await readFile(path.join(dir, 'model.json'), 'utf8')).toBe('2');
    expect(await readdir(at('ckpt'))).toEqual(['best']);
  });
});
