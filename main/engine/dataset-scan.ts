// Scans the classes of a dataset into a DatasetReport: every image hashed and validated, every
// problem reported per file (never fatal), warnings about class sizes. Images are referenced by
// absolute path, never copied.
//
// Duplicates (same sha-256):
//   - in two or more classes ('duplicate'): every copy is left out and reported, naming the others —
//     the image cannot be both, and keeping either would be a guess. Excluding the wrong copy in the
//     project brings the other back.
//   - within one class ('duplicate-in-class'): the first copy (walk order) is used, the others are
//     reported and left out, so an image is never counted twice (nor lands in both train and
//     validation).
import { realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClassSource, DatasetImage, DatasetReport, FileProblem } from '../api/dataset';
import { forEachLimit } from './concurrency';
import { checkImageFile, type FileCheck, type ScanCache } from './image-check';
import { DEFAULT_MAX_INPUT_PIXELS } from './image-decode';
import { walkFolder } from './image-files';

export type { ScanCache, ImageFacts } from './image-check';

export const MIN_IMAGES_PER_CLASS = 5;
export const MAX_IMBALANCE = 3;

export interface ScanOptions {
  /** Images with more pixels are reported 'too-large' (default: the decoder's limit, 100 Mpx). */
  maxPixels?: number;
  signal?: AbortSignal;
  /** Called with (0, total) once the files are listed, then after each file. */
  onProgress?: (done: number, total: number) => void;
  cache?: ScanCache;
  /** Absolute paths to leave out silently (a project's exclusions). */
  exclude?: ReadonlySet<string>;
  /** Files checked at once; default 2 × cores (I/O and libvips overlap). */
  concurrency?: number;
}

interface Candidate {
  file: string;
  className: string;
}

async function listCandidates(classes: readonly ClassSource[], exclude: ReadonlySet<string>, signal?: AbortSignal) {
  const candidates: Candidate[] = [];
  const problems: FileProblem[] = [];
  let excluded = 0;
  const keep = (file: string) => {
    if (!exclude.has(file)) return true;
    excluded++;
    return false;
  };
  // Every class's folders by real path: a link inside one class never reaches into another.
  const realOf = async (folder: string) => realpath(path.resolve(folder)).catch(() => path.resolve(folder));
  const roots = await Promise.all(classes.map(async (source) => ({ name: source.name, reals: await Promise.all(source.folders.map(realOf)) })));
  for (const [c, source] of classes.entries()) {
    // One set per class: a folder shared by two classes is searched for both (and its images
    // reported as cross-class duplicates); within a class, overlapping folders and files reached
    // by two paths count once.
    const seenDirs = new Set<string>();
    const seenFiles = new Set<string>();
    const own = roots[c].reals;
    const others = new Map<string, string>();
    for (const root of roots) {
      if (root.name === source.name) continue;
      // A folder that is also one of this class's own (shared between classes) stays searchable.
      for (const real of root.reals) if (!own.includes(real)) others.set(real, root.name);
    }
    for (const folder of source.folders) {
      const walk = await walkFolder(path.resolve(folder), { seenDirs, seenFiles, boundary: { own, others }, signal });
      for (const file of walk.images) {
        if (!keep(file)) continue;
        candidates.push({ file, className: source.name });
      }
      for (const file of walk.otherFiles) {
        if (!keep(file)) continue;
        problems.push({ file, kind: 'not-image', reason: `Not an image file type (${path.extname(file) || 'no extension'}); skipped` });
      }
      for (const problem of walk.problems) {
        if (!keep(problem.file)) continue;
        if (problem.file === path.resolve(folder) && problem.kind === 'missing') {
          problems.push({ ...problem, reason: `Source folder of class "${source.name}" not found (moved or deleted?)` });
        } else problems.push(problem);
      }
    }
  }
  return { candidates, problems, excluded };
}

function describeOthers(files: string[]): string {
  return files.length === 1 ? files[0] : `${files.slice(0, 3).join(', ')}${files.length > 3 ? ` and ${files.length - 3} more` : ''}`;
}

/** Splits checked images into kept ones and duplicate problems (see the rule at the top). */
function resolveDuplicates(images: DatasetImage[]): { kept: DatasetImage[]; problems: FileProblem[] } {
  const byHash = new Map<string, DatasetImage[]>();
  for (const image of images) {
    const group = byHash.get(image.hash);
    if (group) group.push(image);
    else byHash.set(image.hash, [image]);
  }
  const dropped = new Set<DatasetImage>();
  const problems: FileProblem[] = [];
  for (const group of byHash.values()) {
    if (group.length < 2) continue;
    const classNames = [...new Set(group.map((g) => g.className))];
    if (classNames.length > 1) {
      for (const image of group) {
        dropped.add(image);
        const others = group.filter((g) => g !== image).map((g) => `${g.file} (class "${g.className}")`);
        problems.push({
          file: image.file,
          kind: 'duplicate',
          reason: `Same image as ${describeOthers(others)}: it cannot belong to two classes, so no copy is used; exclude the wrong one`,
        });
      }
    } else {
      for (const image of group.slice(1)) {
        dropped.add(image);
        problems.push({ file: image.file, kind: 'duplicate-in-class', reason: `Same image as ${group[0].file} in the same class; used once` });
      }
    }
  }
  return { kept: images.filter((image) => !dropped.has(image)), problems };
}

export function classWarnings(counts: { name: string; images: number }[]): string[] {
  const warnings: string[] = [];
  if (counts.length === 1) warnings.push(`Only one class ("${counts[0].name}"): training needs at least two`);
  for (const { name, images } of counts) {
    if (images === 0) warnings.push(`Class "${name}" has no usable images`);
    else if (images < MIN_IMAGES_PER_CLASS) {
      warnings.push(`Class "${name}" has only ${images} image${images === 1 ? '' : 's'}; at least ${MIN_IMAGES_PER_CLASS} are needed for a useful model`);
    }
  }
  const used = counts.filter((c) => c.images > 0);
  if (used.length >= 2) {
    const largest = used.reduce((a, b) => (b.images > a.images ? b : a));
    const smallest = used.reduce((a, b) => (b.images < a.images ? b : a));
    const ratio = largest.images / smallest.images;
    if (ratio > MAX_IMBALANCE) {
      warnings.push(
        `Classes are imbalanced: "${largest.name}" has ${largest.images} images, "${smallest.name}" ${smallest.images} ` +
          `(${ratio.toFixed(1)}:1, above ${MAX_IMBALANCE}:1); class weights will compensate, more images of the small classes would help more`,
      );
    }
  }
  return warnings;
}

/** Scans `classes` (see ScanOptions). Rejects only when `signal` aborts (with its reason). */
export async function scanDataset(classes: readonly ClassSource[], options: ScanOptions = {}): Promise<DatasetReport> {
  const { signal, onProgress, cache } = options;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  signal?.throwIfAborted();
  const listed = await listCandidates(classes, options.exclude ?? new Set(), signal);
  const { candidates } = listed;
  const checks: FileCheck[] = new Array(candidates.length);
  let done = 0;
  onProgress?.(0, candidates.length);
  const concurrency = options.concurrency ?? Math.max(2, 2 * os.availableParallelism());
  await forEachLimit(
    candidates,
    concurrency,
    async (candidate, index) => {
      checks[index] = await checkImageFile(candidate.file, maxPixels, cache);
      onProgress?.(++done, candidates.length);
    },
    signal,
  );

  const images: DatasetImage[] = [];
  const problems = [...listed.problems];
  candidates.forEach((candidate, index) => {
    const check = checks[index];
    if (check.ok) images.push({ file: candidate.file, className: candidate.className, hash: check.hash, width: check.width, height: check.height });
    else problems.push({ file: candidate.file, kind: check.kind, reason: check.reason });
  });
  const { kept, problems: duplicateProblems } = resolveDuplicates(images);
  problems.push(...duplicateProblems);
  problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

  const counts = new Map<string, number>();
  for (const image of kept) counts.set(image.className, (counts.get(image.className) ?? 0) + 1);
  const reportClasses = classes.map((c) => ({ name: c.name, images: counts.get(c.name) ?? 0, folders: [...c.folders] }));
  return { classes: reportClasses, images: kept, problems, warnings: classWarnings(reportClasses), excluded: listed.excluded };
}
