// Symbolic links inside class folders, the shapes real folders have: no link ever moves images into
// another class or makes a class lose images it really has (issue: a link to the dataset's top folder
// once emptied a whole class through the cross-class duplicate rule).
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DatasetReport } from '../../main/api/dataset';
import { scanDataset } from '../../main/engine/dataset-scan';
import { classSourcesFromFolders } from '../../main/engine/dataset-sources';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');
const COUNTS = { birds: 4, fruit: 3, flowers: 5 } as const;

let tmp: string;
let root: string;

/** A dataset of real photos: root/<class>/<n>.png, COUNTS images per class. */
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-links-'));
  root = path.join(tmp, 'data');
  for (const [name, n] of Object.entries(COUNTS)) {
    await mkdir(path.join(root, name), { recursive: true });
    const files = (await readdir(path.join(PHOTOS5, name), { recursive: true })).filter((f) => f.endsWith('.png')).sort().slice(0, n);
    for (const [i, f] of files.entries()) await copyFile(path.join(PHOTOS5, name, f), path.join(root, name, `${i}.png`));
  }
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

const at = (...parts: string[]) => path.join(root, ...parts);

async function scan(): Promise<DatasetReport> {
  return scanDataset(await classSourcesFromFolders([root]));
}

function expectEveryClassIntact(report: DatasetReport, extra: Partial<Record<keyof typeof COUNTS, number>> = {}) {
  const counts = Object.fromEntries(report.classes.map((c) => [c.name, c.images]));
  expect(counts).toEqual(Object.fromEntries(Object.entries(COUNTS).map(([name, n]) => [name, n + (extra[name as keyof typeof COUNTS] ?? 0)])));
  expect(report.problems.filter((p) => p.kind === 'duplicate')).toEqual([]);
  for (const image of report.images) expect(image.file.startsWith(at(image.className) + path.sep) || image.file.startsWith(tmp), image.file).toBe(true);
}

const linkProblems = (report: DatasetReport) => report.problems.filter((p) => p.kind === 'link-outside');

describe('links inside class folders', () => {
  it('a link to the dataset top folder (absolute) is reported and not followed', async () => {
    await symlink(root, at('birds', 'all'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(linkProblems(report)).toEqual([expect.objectContaining({ file: at('birds', 'all'), reason: expect.stringMatching(/contains this class's folder/) })]);
  });

  it('a relative link up to the top folder, from a nested folder, is reported and not followed', async () => {
    await mkdir(at('fruit', 'nested'));
    await symlink('../..', at('fruit', 'nested', 'up'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(linkProblems(report).map((p) => p.file)).toEqual([at('fruit', 'nested', 'up')]);
  });

  it('a link to a sibling class folder leaves its images in that class', async () => {
    await symlink(at('fruit'), at('birds', 'fruit-too'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(linkProblems(report)).toEqual([expect.objectContaining({ file: at('birds', 'fruit-too'), reason: expect.stringMatching(/class "fruit"/) })]);
  });

  it('a link to a file in another class is not a cross-class duplicate', async () => {
    await symlink(at('flowers', '0.png'), at('birds', 'flower.png'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(linkProblems(report)).toEqual([expect.objectContaining({ file: at('birds', 'flower.png'), reason: expect.stringMatching(/a file of class "flowers"/) })]);
  });

  it('a chain of links that ends in another class is stopped', async () => {
    await mkdir(path.join(tmp, 'elsewhere'));
    await symlink(at('flowers'), path.join(tmp, 'elsewhere', 'to-flowers'));
    await symlink(path.join(tmp, 'elsewhere', 'to-flowers'), at('birds', 'hop'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(linkProblems(report).map((p) => p.file)).toEqual([at('birds', 'hop')]);
  });

  it('the same real file reached by two paths in a class counts once, silently', async () => {
    await symlink(at('birds', '0.png'), at('birds', 'same.png'));
    await mkdir(at('birds', 'sub'));
    await symlink(at('birds'), at('birds', 'sub', 'loop'));
    const report = await scan();
    expectEveryClassIntact(report);
    expect(report.problems.filter((p) => p.kind === 'duplicate-in-class')).toEqual([]);
    expect(report.problems.map((p) => p.kind)).toEqual(['symlink-loop']);
  });

  it('a link to a folder outside the dataset is followed: its images belong to the class', async () => {
    await mkdir(path.join(tmp, 'more-birds'));
    await copyFile(path.join(PHOTOS5, 'birds', (await readdir(path.join(PHOTOS5, 'birds'))).filter((f) => f.endsWith('.png')).sort().at(-1)!), path.join(tmp, 'more-birds', 'x.png'));
    await symlink(path.join(tmp, 'more-birds'), at('birds', 'more'));
    const report = await scan();
    expectEveryClassIntact(report, { birds: 1 });
    expect(linkProblems(report)).toEqual([]);
  });
});
