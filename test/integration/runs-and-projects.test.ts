// Naming runs, renaming and moving projects, and the browser host's export download, with the real
// engine service and a real (tiny) training run on photos5 images: a run's name persists in run.json
// and bad names get a clear error; a project moves (one file system, and across file systems) and
// stays usable; a failed move loses nothing; GET /export.zip is the run's export, byte for byte.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import extractZip from 'extract-zip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetView, Events, Results, RunSummary } from '../../main/api/contract';
import type { TrainConfig } from '../../main/api/train-config';
import { createEngineService, type EngineService } from '../../main/engine/service';
import { startServer, type RunningServer } from '../../main/host/server';
import { copyPhotos } from '../fixtures/tiny-run';

let tmp: string;
let service: EngineService;
let projectDir: string;
let runId: string;
let refusedWhileTraining: unknown[];

const call = <T>(method: string, params: unknown = {}) => service.call(method, params) as Promise<T>;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

const config: TrainConfig = {
  backbone: 'resnet18',
  weights: 'none',
  mode: 'head',
  inputSize: 32,
  head: { kind: 'linear' },
  epochs: 1,
  batchSize: 8,
  valSplit: 0.25,
  seed: 5,
  augment: false,
  patience: 5,
  classWeights: false,
};

function ended(id: string): Promise<Events['training.ended']> {
  return new Promise((resolve) => {
    const off = service.on((event, payload) => {
      if (event === 'training.ended' && (payload as Events['training.ended']).runId === id) {
        off();
        resolve(payload as Events['training.ended']);
      }
    });
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-runs-projects-'));
  service = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'config', 'recent.json') });
  const data = await copyPhotos(path.join(tmp, 'data'), ['birds', 'fruit'], 6);
  projectDir = path.join(tmp, 'Birds and fruit');
  await call('project.open', { dir: projectDir, create: true });
  await call('dataset.addFolders', { folders: [data] });
  const started = await call<{ runId: string }>('training.start', { config });
  runId = started.runId;
  const done = ended(runId);
  // While it trains, the project cannot move and the run cannot be renamed (the trainer rewrites run.json).
  refusedWhileTraining = await Promise.all([
    call('project.move', { to: path.join(tmp, 'elsewhere') }).catch((err: unknown) => err),
    call('runs.rename', { runId, name: 'x' }).catch((err: unknown) => err),
  ]);
  expect(await done).toEqual({ runId, status: 'completed' });
}, 180_000);

afterAll(async () => {
  await service?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('runs.rename', () => {
  it('lists a run with its facts and no name until it is given one; the name persists in run.json', async () => {
    const [before] = await call<RunSummary[]>('runs.list');
    expect(before).toMatchObject({ id: runId, backbone: 'resnet18', mode: 'head', status: 'completed' });
    expect(before.name).toBeUndefined();
    expect(before.seconds).toBeGreaterThan(0);

    const renamed = await call<RunSummary>('runs.rename', { runId, name: '  First try, 32 px  ' });
    expect(renamed).toMatchObject({ id: runId, name: 'First try, 32 px' });
    const onDisk = JSON.parse(await readFile(path.join(projectDir, 'runs', runId, 'run.json'), 'utf8'));
    expect(onDisk.name).toBe('First try, 32 px');
    expect(onDisk.id).toBe(runId);

    // A fresh engine (a restart) reads the name back.
    const other = createEngineService({ host: 'browser', recentFile: path.join(tmp, 'config', 'other.json') });
    try {
      await other.call('project.open', { dir: projectDir });
      const [listed] = (await other.call('runs.list', {})) as RunSummary[];
      expect(listed).toMatchObject({ id: runId, name: 'First try, 32 px' });
      expect(((await other.call('runs.get', { runId })) as { name?: string }).name).toBe('First try, 32 px');
    } finally {
      await other.dispose();
    }
  });

  it('refuses a bad name with the field and what is wrong, and changes nothing', async () => {
    await expect(call('runs.rename', { runId, name: '   ' })).rejects.toThrow(/runs\.rename: invalid request — name: a name cannot be empty/);
    await expect(call('runs.rename', { runId, name: 'two\nlines' })).rejects.toThrow(/name: a name on one line, without control characters/);
    await expect(call('runs.rename', { runId, name: 'x'.repeat(101) })).rejects.toThrow(/name: a name of at most 100 characters/);
    await expect(call('runs.rename', { runId: 'no-such-run', name: 'A' })).rejects.toThrow(/No run "no-such-run"/);
    expect((await call<RunSummary[]>('runs.list'))[0].name).toBe('First try, 32 px');
  });

  it('null takes the name away again', async () => {
    const cleared = await call<RunSummary>('runs.rename', { runId, name: null });
    expect(cleared.name).toBeUndefined();
    const onDisk = JSON.parse(await readFile(path.join(projectDir, 'runs', runId, 'run.json'), 'utf8'));
    expect('name' in onDisk).toBe(false);
  });
});

describe('export into a folder that holds other files', () => {
  it("is a 'folder-not-empty' error", async () => {
    const busy = path.join(tmp, 'holiday photos');
    await mkdir(busy);
    await writeFile(path.join(busy, 'notes.txt'), 'mine');
    await expect(call('export.run', { runId, outDir: busy })).rejects.toMatchObject({ kind: 'folder-not-empty', message: expect.stringMatching(/not empty/) });
    expect(await readdir(busy)).toEqual(['notes.txt']);
  });
});

describe('GET /export.zip (browser host)', () => {
  let server: RunningServer;

  beforeAll(async () => {
    const staticDir = path.join(tmp, 'static');
    await mkdir(staticDir);
    await writeFile(path.join(staticDir, 'index.html'), '<!doctype html><title>Refit</title>');
    server = await startServer({ staticDir, service });
  });
  afterAll(() => server?.close());

  function download(query: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: server.port, path: `/export.zip${query}` }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
  }

  it('needs the token and a run', async () => {
    expect((await download(`?run=${runId}`)).status).toBe(401);
    expect((await download(`?run=${runId}&token=${'x'.repeat(43)}`)).status).toBe(403);
    const noRun = await download(`?token=${server.token}`);
    expect(noRun.status).toBe(400);
    expect(noRun.body.toString()).toMatch(/needs \?run=/);
    const unknown = await download(`?token=${server.token}&run=no-such-run`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.toString()).toMatch(/could not export run "no-such-run": No run "no-such-run"/);
  });

  it("is the run's export as a zip: unzipped, every file is there and matches refit.json's SHA-256 and a folder export", async () => {
    const got = await download(`?token=${server.token}&run=${runId}`);
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('application/zip');
    expect(got.headers['content-disposition']).toBe(`attachment; filename="refit-${runId}.zip"`);
    const zipFile = path.join(tmp, 'download.zip');
    await writeFile(zipFile, got.body);
    const unzipped = path.join(tmp, 'unzipped');
    await extractZip(zipFile, { dir: unzipped });

    // A folder export of the same run (without model.onnx, to keep the test short) for comparison.
    const folder = await call<Results['export.run']>('export.run', { runId, outDir: path.join(tmp, 'export-folder'), onnx: false });
    const names = (await readdir(unzipped)).sort();
    expect(names).toEqual([...folder.files.map((f) => f.path), 'model.onnx'].sort());
    expect(names).toEqual(expect.arrayContaining(['model.json', 'refit.json', 'model.onnx', 'README.md']));

    const manifest = JSON.parse(await readFile(path.join(unzipped, 'refit.json'), 'utf8')) as { files: { path: string; bytes: number; sha256: string }[] };
    for (const f of manifest.files) {
      const bytes = await readFile(path.join(unzipped, f.path));
      expect(bytes.byteLength, f.path).toBe(f.bytes);
      expect(sha256(bytes), f.path).toBe(f.sha256);
      // The weights and graphs are the same bytes as a folder export of the run.
      if (!['refit.json', 'README.md', 'model.onnx'].includes(f.path)) expect(sha256(await readFile(path.join(folder.outDir, f.path))), f.path).toBe(f.sha256);
    }
    // The system's unzip agrees the archive is sound (its CRCs checked), when it is installed.
    try {
      const listing = execFileSync('unzip', ['-t', zipFile], { encoding: 'utf8' });
      expect(listing).toMatch(/No errors detected/);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // Nothing is left behind in the server's temporary folder.
    expect((await readdir(os.tmpdir())).filter((n) => n.startsWith('refit-download-'))).toEqual([]);
  });
});

describe('project.rename and project.move', () => {
  it('renames the project; the folder stays', async () => {
    const view = await call<DatasetView>('project.rename', { name: 'Garden birds' });
    expect(view.project).toMatchObject({ name: 'Garden birds', dir: projectDir });
    expect(JSON.parse(await readFile(path.join(projectDir, 'project.json'), 'utf8')).name).toBe('Garden birds');
    await expect(call('project.rename', { name: '' })).rejects.toThrow(/project\.rename: invalid request — name: a name cannot be empty/);
  });

  it('refuses a folder that holds other files, and its own sub-folder; nothing moves', async () => {
    const busy = path.join(tmp, 'holiday photos');
    await expect(call('project.move', { to: busy })).rejects.toMatchObject({ kind: 'folder-not-empty', message: expect.stringMatching(/not empty .*notes\.txt/) });
    await expect(call('project.move', { to: path.join(projectDir, 'inside') })).rejects.toThrow(/into its own folder/);
    await expect(call('project.move', { to: path.join(tmp, 'no', 'such', 'place') })).rejects.toMatchObject({ kind: 'not-found' });
    expect((await call<DatasetView>('project.current'))!.project.dir).toBe(projectDir);
    expect(await stat(path.join(projectDir, 'runs', runId, 'run.json')).then(() => true)).toBe(true);
  });

  it('moves on the same disk: open there, runs kept, the recent list follows', async () => {
    const to = path.join(tmp, 'moved', 'Garden birds');
    await mkdir(path.dirname(to));
    const view = await call<DatasetView>('project.move', { to });
    expect(view.project).toMatchObject({ dir: to, name: 'Garden birds' });
    expect(view.totalImages).toBe(12);
    expect(await stat(projectDir).then(() => true, () => false)).toBe(false);
    expect((await call<RunSummary[]>('runs.list')).map((r) => r.id)).toEqual([runId]);
    expect(await call<string[]>('project.recent')).toEqual([to]);
    projectDir = to;
  });

  it('moves to another file system (copy, then swap in, then remove the old folder)', async () => {
    const shm = await mkdtemp(path.join('/dev/shm', 'refit-move-'));
    try {
      const to = path.join(shm, 'Garden birds');
      const view = await call<DatasetView>('project.move', { to });
      expect(view.project.dir).toBe(to);
      expect(await stat(projectDir).then(() => true, () => false)).toBe(false);
      expect((await readdir(shm)).sort()).toEqual(['Garden birds']); // no staging folder left
      const record = await call<{ id: string; status: string }>('runs.get', { runId });
      expect(record).toMatchObject({ id: runId, status: 'completed' });
      // Back to the main disk for the next test.
      const back = path.join(tmp, 'Garden birds');
      expect((await call<DatasetView>('project.move', { to: back })).project.dir).toBe(back);
      projectDir = back;
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it('loses nothing when the other disk fills up half-way (a 1 MiB tmpfs, as root)', async (ctx) => {
    const mountPoint = path.join(tmp, 'small-disk');
    await mkdir(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    } catch {
      ctx.skip(); // not root: no small disk to fill
    }
    try {
      const before = (await readdir(projectDir, { recursive: true })).sort();
      await expect(call('project.move', { to: path.join(mountPoint, 'Garden birds') })).rejects.toThrow(/Cannot move the project .*still in .*unchanged/);
      expect((await readdir(projectDir, { recursive: true })).sort()).toEqual(before);
      expect(await readdir(mountPoint)).toEqual([]); // the partial copy is gone
      expect((await call<DatasetView>('project.current'))!.project.dir).toBe(projectDir);
      expect((await call<RunSummary[]>('runs.list')).map((r) => r.id)).toEqual([runId]);
    } finally {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    }
  });

  it('refuses to move while a run trains, and to rename the run training', () => {
    expect(refusedWhileTraining[0]).toMatchObject({ kind: 'busy', message: expect.stringMatching(/cannot move while it writes into its folder/) });
    expect(refusedWhileTraining[1]).toMatchObject({ kind: 'busy', message: expect.stringMatching(/still training: rename it once it has ended/) });
  });
});
