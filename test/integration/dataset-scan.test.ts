// The dataset scan's slower cases, moved out of test/unit/dataset.test.ts: unreadable files and
// folders (a child process running as an unprivileged user) and a 1000-image Fashion-MNIST folder
// written by a Python script (cache, progress, cancellation).
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetReport, FileProblem } from '../../main/api/dataset';
import { scanDataset } from '../../main/engine/dataset-scan';
import { classSourcesFromFolders } from '../../main/engine/dataset-sources';
import type { ImageFacts } from '../../main/engine/image-check';
import { readableTempDir, runUnprivileged, unprivilegedScript } from '../fixtures/unprivileged';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');
const photo = (rel: string) => path.join(PHOTOS5, rel);

let tmp: string;
const at = (...parts: string[]) => path.join(tmp, ...parts);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-dataset-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const problemOf = (report: DatasetReport, file: string) => report.problems.filter((p) => p.file === file);

describe('scanDataset: unreadable input is reported per file and the import goes on', () => {
  it('reports unreadable files and folders (as an unprivileged user: root reads through chmod 000)', async () => {
    // Tests run as root here, and root ignores file permissions, so the scan runs in a child process
    // as "nobody", where chmod 000 really denies reading (see test/fixtures/unprivileged.ts).
    const dir = await readableTempDir('refit-unreadable-');
    try {
      await mkdir(path.join(dir, 'cls', 'locked-folder'), { recursive: true });
      for (const i of [0, 1]) await copyFile(photo(`fruit/${i ? 'pineapple' : 'apple_green'}.png`), path.join(dir, 'cls', `ok${i}.png`));
      await copyFile(photo('fruit/cherimoya.png'), path.join(dir, 'cls', 'locked.png'));
      await copyFile(photo('fruit/sliced_orange.png'), path.join(dir, 'cls', 'locked-folder', 'inside.png'));
      await chmod(path.join(dir, 'cls', 'locked.png'), 0o000);
      await chmod(path.join(dir, 'cls', 'locked-folder'), 0o000);
      const script = path.join(dir, 'scan.mts');
      await writeFile(
        script,
        unprivilegedScript(
          { 'main/engine/dataset-scan': ['scanDataset'] },
          `const r = await scanDataset([{ name: 'cls', folders: [${JSON.stringify(path.join(dir, 'cls'))}] }]);\n` +
            `console.log(JSON.stringify({ images: r.images.length, problems: r.problems }));`,
        ),
      );
      const result = runUnprivileged(script);
      expect(result.status, result.stderr).toBe(0);
      const out = JSON.parse(result.stdout) as { images: number; problems: FileProblem[] };
      expect(out.images).toBe(2);
      expect(out.problems).toEqual([
        { file: path.join(dir, 'cls', 'locked-folder'), kind: 'unreadable', reason: expect.stringMatching(/Cannot read this folder \(EACCES\)/) },
        { file: path.join(dir, 'cls', 'locked.png'), kind: 'unreadable', reason: 'Cannot read the file (permission denied)' },
      ]);
    } finally {
      await chmod(path.join(dir, 'cls', 'locked-folder'), 0o755).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('scanDataset at scale: cache, progress, cancellation', () => {
  let fm: string;
  beforeAll(() => {
    fm = at('fm');
    execFileSync('python3', [path.resolve(__dirname, '../../../shared/tools/fashion-mnist-folders.py'), fm, '--per-class', '100'], { stdio: 'pipe' });
  });

  it('reports progress, and a warm cache gives the same report without re-reading unchanged files', async () => {
    const cache = new Map<string, ImageFacts>();
    const progress: [number, number][] = [];
    const classes = await classSourcesFromFolders([fm]);
    const victim = path.join(fm, 'bag', (await readdir(path.join(fm, 'bag'))).sort()[0]);
    const stamp = new Date('2024-05-01T12:00:00Z');
    await utimes(victim, stamp, stamp);
    const cold = await scanDataset(classes, { cache, onProgress: (done, total) => progress.push([done, total]) });
    expect(cold.images).toHaveLength(1000);
    expect(progress[0]).toEqual([0, 1000]);
    expect(progress.at(-1)).toEqual([1000, 1000]);
    expect(cache.size).toBe(1000);

    // Same size and mtime but different bytes: the cache is trusted (that is what makes rescans fast)…
    const original = await readFile(victim);
    const altered = Buffer.from(original);
    altered[altered.length - 20] ^= 0xff;
    await writeFile(victim, altered);
    await utimes(victim, stamp, stamp);
    const warm = await scanDataset(classes, { cache });
    expect(warm.images).toEqual(cold.images);
    const before = cold.images.find((i) => i.file === victim)!;
    // …and a changed mtime makes it look again.
    await utimes(victim, new Date(), new Date());
    const rescanned = await scanDataset(classes, { cache });
    expect(rescanned.images.find((i) => i.file === victim)).toBeUndefined();
    expect(problemOf(rescanned, victim)).toEqual([{ file: victim, kind: 'corrupt', reason: expect.stringMatching(/Corrupt/) }]);
    expect(before.hash).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(victim, original);
  });

  it('stops promptly when the AbortSignal fires', async () => {
    const controller = new AbortController();
    let seen = 0;
    let abortedAt = 0;
    const scan = scanDataset(await classSourcesFromFolders([fm]), {
      signal: controller.signal,
      onProgress: (done) => {
        seen = done;
        if (done === 50 && !abortedAt) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    });
    await expect(scan).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - abortedAt).toBeLessThan(200);
    expect(seen).toBeLessThan(80);
  });

  it('rejects at once with an already aborted signal', async () => {
    await expect(scanDataset([{ name: 'x', folders: [fm] }], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
