// `npm run bench:fuzz [-- COUNT]`: the scan and the decoder on thousands of damaged real photos (the
// generator of test/integration/fuzz-images.test.ts). Prints files per second, how each was accounted
// for, crashes (a throw out of the scan, or a file neither usable nor reported), and disagreements
// between the scan and the decoder.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { scanDataset } from '../main/engine/dataset-scan';
import { classSourcesFromFolders } from '../main/engine/dataset-sources';
import { decodeImage } from '../main/engine/image-decode';
import { mutatedSamples, sourcePhotos } from '../test/fixtures/mutate-images';

const COUNT = Number(process.argv[2] ?? 3000);
const SEED = Number(process.env.SEED ?? 7);
const PHOTOS5 = path.resolve(import.meta.dirname, '../../shared/datasets/photos5');

const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-fuzz-'));
try {
  const sources = [];
  for (const cls of ['birds', 'fruit', 'flowers', 'mammals', 'vegetables']) sources.push(...(await sourcePhotos(path.join(PHOTOS5, cls), 8)));
  const samples = mutatedSamples(sources, COUNT, SEED).map((s, i) => ({ ...s, file: path.join(tmp, 'data', `class${i % 5}`, s.name) }));
  for (const s of samples) {
    await mkdir(path.dirname(s.file), { recursive: true });
    await writeFile(s.file, s.bytes);
  }
  let crashes = 0;
  const started = performance.now();
  const report = await scanDataset(await classSourcesFromFolders([path.join(tmp, 'data')]), { maxPixels: 40_000_000 }).catch((err) => {
    crashes++;
    console.error('scan threw:', err);
    return null;
  });
  const seconds = (performance.now() - started) / 1000;
  if (report) {
    const usable = new Set(report.images.map((i) => i.file));
    const reported = new Set(report.problems.map((p) => p.file));
    const unaccounted = samples.filter((s) => usable.has(s.file) === reported.has(s.file));
    crashes += unaccounted.length;
    let disagreements = 0;
    for (const image of report.images) await decodeImage(image.file, 32).catch(() => disagreements++);
    for (const p of report.problems.filter((x) => x.kind === 'corrupt' || x.kind === 'not-image' || x.kind === 'empty')) {
      await decodeImage(p.file, 32).then(() => disagreements++, () => undefined);
    }
    const byKind = report.problems.reduce<Record<string, number>>((n, p) => ({ ...n, [p.kind]: (n[p.kind] ?? 0) + 1 }), {});
    const byMutation = samples.reduce<Record<string, number>>((n, s) => ({ ...n, [s.mutation]: (n[s.mutation] ?? 0) + 1 }), {});
    console.log(`files            ${COUNT} (seed ${SEED}; mutations ${JSON.stringify(byMutation)})`);
    console.log(`scan             ${seconds.toFixed(1)} s, ${(COUNT / seconds).toFixed(0)} files/s`);
    console.log(`usable           ${usable.size}`);
    console.log(`reported         ${report.problems.length} ${JSON.stringify(byKind)}`);
    console.log(`crashes          ${crashes} (scan throws + files neither usable nor reported)`);
    console.log(`scan vs decoder  ${disagreements} disagreements`);
  }
  process.exitCode = crashes > 0 ? 1 : 0;
} finally {
  await rm(tmp, { recursive: true, force: true });
}
