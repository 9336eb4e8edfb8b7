// Fuzzing the scan with a seeded generator of damaged real photos: it never crashes, every file is
// either usable or reported with a reason, and decoding for training and prediction agrees with the
// scan (what the scan accepts decodes; what it reports as damaged or foreign does not).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetReport } from '../../main/api/dataset';
import { scanDataset } from '../../main/engine/dataset-scan';
import { classSourcesFromFolders } from '../../main/engine/dataset-sources';
import { decodeBatch } from '../../main/engine/image-batches';
import { decodeImage } from '../../main/engine/image-decode';
import { mutatedSamples, sourcePhotos, type Sample } from '../fixtures/mutate-images';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');
const SAMPLES = 300;
const SEED = 20261202;

let tmp: string;
let samples: (Sample & { file: string })[];
let report: DatasetReport;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-fuzz-'));
  const sources = [...(await sourcePhotos(path.join(PHOTOS5, 'fruit'), 6)), ...(await sourcePhotos(path.join(PHOTOS5, 'birds'), 6))];
  samples = mutatedSamples(sources, SAMPLES, SEED).map((s, i) => ({ ...s, file: path.join(tmp, 'data', i % 2 ? 'odd' : 'even', s.name) }));
  for (const s of samples) {
    await mkdir(path.dirname(s.file), { recursive: true });
    await writeFile(s.file, s.bytes);
  }
  report = await scanDataset(await classSourcesFromFolders([path.join(tmp, 'data')]), { maxPixels: 40_000_000 });
}, 300_000);
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe(`the scan on ${SAMPLES} damaged photos (seed ${SEED})`, () => {
  it('accounts for every file exactly once: usable, or reported with a reason', () => {
    const usable = new Set(report.images.map((i) => i.file));
    const reported = new Map(report.problems.map((p) => [p.file, p]));
    for (const s of samples) {
      expect(usable.has(s.file) !== reported.has(s.file), `${s.name}: usable ${usable.has(s.file)}, reported ${reported.has(s.file)}`).toBe(true);
      const problem = reported.get(s.file);
      if (problem) expect(problem.reason.length, s.name).toBeGreaterThan(10);
    }
    // Foreign bytes and text are never images; intact photos always are (unless the same photo is
    // already in the class: then it is a reported duplicate).
    for (const s of samples.filter((x) => x.mutation === 'foreign-bytes' || x.mutation === 'text')) expect(usable.has(s.file), s.name).toBe(false);
    for (const s of samples.filter((x) => x.mutation === 'intact')) {
      expect(usable.has(s.file) || /duplicate/.test(reported.get(s.file)!.kind), s.name).toBe(true);
    }
    const byKind = report.problems.reduce<Record<string, number>>((n, p) => ({ ...n, [p.kind]: (n[p.kind] ?? 0) + 1 }), {});
    console.log(`fuzz: ${samples.length} files, ${usable.size} usable, reported ${JSON.stringify(byKind)}`);
    const kinds = new Set(report.problems.map((p) => p.kind));
    expect([...kinds].sort()).toEqual(expect.arrayContaining(['corrupt', 'not-image']));
  });

  it('decodes every image the scan accepts, for training and prediction alike', async () => {
    const files = report.images.map((i) => i.file);
    const batch = await decodeBatch(files, (f) => f, 32);
    try {
      expect(batch.failures.map((f) => `${f.item}: ${f.error}`)).toEqual([]);
      expect(batch.items).toHaveLength(files.length);
    } finally {
      batch.pixels?.dispose();
    }
  });

  it('refuses to decode what the scan reports as corrupt, foreign or empty', async () => {
    const refused = report.problems.filter((p) => p.kind === 'corrupt' || p.kind === 'not-image' || p.kind === 'empty');
    expect(refused.length).toBeGreaterThan(SAMPLES / 4);
    for (const problem of refused) await expect(decodeImage(problem.file, 32), problem.file).rejects.toThrow(/Cannot decode|Not an image|empty/);
  });
});
