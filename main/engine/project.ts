// The on-disk project store. A project is a folder of its own:
//
//   project.json   {format: 'refit-project', version: 1, name, created, updated, classes,
//                   exclusions, settings} — the dataset definition (images are referenced by
//                   absolute path, never copied)
//   index.json     the scan cache (scan-index.ts); losing it costs one full rescan, nothing else
//   runs/<id>/     run.json (RunRecord), best/ and last/ checkpoints (written by the trainer)
//   cache/         feature cache root (owned by the trainer)
//
// Every write is atomic (temp + fsync + rename), so a crash leaves the previous version intact.
// Functions that change a project write it first and, once that succeeded, update `project.data` in
// place and return the same Project (so a failed write changes nothing, on disk or in memory). Two
// processes editing one project at once are not coordinated (last write wins).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { ClassSource, DatasetReport } from '../api/dataset';
import { RUN_NAME_MAX, type RunRecord } from '../api/training';
import { writeJsonAtomic } from './atomic-fs';
import { errnoCode } from './errors';
import { classSourcesFromFolders, mergeClassSources } from './dataset-sources';
import { scanDataset, type ScanOptions } from './dataset-scan';
import { ScanIndex } from './scan-index';
import { describeIssues, readVersionedJson } from './versioned-json';
import { RefitError } from '../api/errors';

export const PROJECT_FORMAT = 'refit-project';
export const PROJECT_VERSION = 1;
export const PROJECT_FILE = 'project.json';
export const INDEX_FILE = 'index.json';
export const RUNS_DIR = 'runs';
export const CACHE_DIR = 'cache';
export const RUN_FILE = 'run.json';

const classSourceSchema = z.object({ name: z.string().min(1), folders: z.array(z.string().min(1)) });

const projectSchema = z.object({
  format: z.literal(PROJECT_FORMAT),
  version: z.literal(PROJECT_VERSION),
  name: z.string(),
  created: z.string(),
  updated: z.string(),
  classes: z.array(classSourceSchema),
  exclusions: z.array(z.string()),
  settings: z.record(z.string(), z.unknown()),
});

export type ProjectData = z.infer<typeof projectSchema>;

export interface Project {
  /** Absolute path of the project folder. */
  dir: string;
  data: ProjectData;
}

const projectFile = (dir: string) => path.join(dir, PROJECT_FILE);
const now = () => new Date().toISOString();

async function write(dir: string, data: ProjectData): Promise<ProjectData> {
  const next = { ...data, updated: now() };
  projectSchema.parse(next);
  await writeJsonAtomic(projectFile(dir), next);
  return next;
}

/** Writes `data` as the new state of `project`, then updates it in place. */
async function update(project: Project, data: ProjectData): Promise<Project> {
  project.data = await write(project.dir, data);
  return project;
}

/** Creates a project in `dir` (created if needed; it must not already be a project). */
export async function createProject(dir: string, options: { name: string }): Promise<Project> {
  const root = path.resolve(dir);
  if (await stat(projectFile(root)).then(() => true, () => false)) throw new Error(`${root} is already a Refit project (it has a ${PROJECT_FILE})`);
  // Never spread a project's files into a folder of the user's (their photos, their home folder).
  const existing = await readdir(root).catch(() => [] as string[]);
  if (existing.length > 0) {
    throw new RefitError('folder-not-empty', `${root} is not empty and is not a Refit project: choose a new or empty folder for the project (it holds ${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', …' : ''})`);
  }
  await mkdir(path.join(root, RUNS_DIR), { recursive: true });
  await mkdir(path.join(root, CACHE_DIR), { recursive: true });
  const created = now();
  const data = await write(root, {
    format: PROJECT_FORMAT,
    version: PROJECT_VERSION,
    name: options.name,
    created,
    updated: created,
    classes: [],
    exclusions: [],
    settings: {},
  });
  return { dir: root, data };
}

/** Opens the project in `dir`; a clear Error names the file and what is wrong when it is not a (readable, current) Refit project. */
export async function openProject(dir: string): Promise<Project> {
  const root = path.resolve(dir);
  const file = projectFile(root);
  const data = await readVersionedJson(file, { format: PROJECT_FORMAT, version: PROJECT_VERSION, schema: projectSchema, what: 'project' }, { missing: `${root} is not a Refit project: it has no ${PROJECT_FILE}` });
  return { dir: root, data };
}

/** Opens the project in `dir`, or creates it there when `dir` has no project.json yet. */
export async function openOrCreateProject(dir: string, options: { name: string }): Promise<Project> {
  const exists = await stat(projectFile(path.resolve(dir))).then(() => true, () => false);
  return exists ? openProject(dir) : createProject(dir, options);
}

/** Applies the folder rule (dataset-sources.ts) to `folders` and merges the classes found into the project's. */
export async function addSources(project: Project, folders: readonly string[]): Promise<Project> {
  const found = await classSourcesFromFolders(folders);
  return update(project, { ...project.data, classes: mergeClassSources(project.data.classes, found) });
}

function requireClass(project: Project, name: string): ClassSource {
  const found = project.data.classes.find((c) => c.name === name);
  if (!found) throw new Error(`No class "${name}" in project ${project.data.name}; classes: ${project.data.classes.map((c) => c.name).join(', ') || 'none'}`);
  return found;
}

/** Renames a class; renaming onto an existing class merges the two (the same rule as dropping folders). */
export async function renameClass(project: Project, from: string, to: string): Promise<Project> {
  const name = to.trim();
  if (!name) throw new Error('A class name cannot be empty');
  requireClass(project, from);
  const renamed = project.data.classes.map((c) => (c.name === from ? { ...c, name } : c));
  return update(project, { ...project.data, classes: mergeClassSources(renamed) });
}

export async function removeClass(project: Project, name: string): Promise<Project> {
  requireClass(project, name);
  return update(project, { ...project.data, classes: project.data.classes.filter((c) => c.name !== name) });
}

/** Leaves an image (absolute path) out of the dataset without touching the file. */
export async function excludeImage(project: Project, file: string): Promise<Project> {
  const absolute = path.resolve(file);
  if (project.data.exclusions.includes(absolute)) return project;
  return update(project, { ...project.data, exclusions: [...project.data.exclusions, absolute] });
}

export async function includeImage(project: Project, file: string): Promise<Project> {
  const absolute = path.resolve(file);
  if (!project.data.exclusions.includes(absolute)) return project;
  return update(project, { ...project.data, exclusions: project.data.exclusions.filter((f) => f !== absolute) });
}

/** Gives the project a new display name (its folder stays where it is). */
export async function renameProject(project: Project, name: string): Promise<Project> {
  const trimmed = name.trim();
  if (!trimmed) throw new Error('A project name cannot be empty');
  return update(project, { ...project.data, name: trimmed });
}

export async function updateSettings(project: Project, settings: Record<string, unknown>): Promise<Project> {
  return update(project, { ...project.data, settings: { ...project.data.settings, ...settings } });
}

/**
 * Scans the project's classes minus its exclusions, with index.json as the scan cache (only new or
 * changed files are read). Images the index knew that are gone are reported as 'missing' problems —
 * on every scan, until excluded or forgotten with forgetMissing — never as an error.
 */
export async function scanProject(project: Project, options: Omit<ScanOptions, 'cache' | 'exclude'> = {}): Promise<DatasetReport> {
  const indexFile = path.join(project.dir, INDEX_FILE);
  const index = await ScanIndex.load(indexFile);
  const exclude = new Set(project.data.exclusions);
  const report = await scanDataset(project.data.classes, { ...options, cache: index, exclude });
  const found = new Set([...report.images.map((i) => i.file), ...report.problems.map((p) => p.file)]);
  const folders = project.data.classes.flatMap((c) => c.folders);
  const missing = index.missing(found, folders, exclude);
  await index.save(indexFile);
  if (missing.length === 0) return report;
  const problems = [...report.problems, ...missing].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { ...report, problems };
}

/** Stops reporting the 'missing' images of `report` (a scanProject result). Returns how many were forgotten. */
export async function forgetMissing(project: Project, report: DatasetReport): Promise<number> {
  const indexFile = path.join(project.dir, INDEX_FILE);
  const index = await ScanIndex.load(indexFile);
  const n = index.forget(report.problems.filter((p) => p.kind === 'missing').map((p) => p.file));
  await index.save(indexFile);
  return n;
}

// ---- runs ----

const RUN_ID = /^[0-9A-Za-z][0-9A-Za-z._-]*$/;

function checkRunId(id: string): string {
  if (!RUN_ID.test(id) || id.includes('..')) throw new Error(`Invalid run id "${id}" (letters, digits, '.', '_' and '-' only)`);
  return id;
}

export function cacheDir(projectDir: string): string {
  return path.join(path.resolve(projectDir), CACHE_DIR);
}

export function runDir(projectDir: string, id: string): string {
  return path.join(path.resolve(projectDir), RUNS_DIR, checkRunId(id));
}

/** A new run id that sorts by creation time: 20250131-154502-123-a1b2 (UTC, milliseconds, random tail). */
export function newRunId(date = new Date()): string {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').replace('Z', '');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

const triple = z.tuple([z.number(), z.number(), z.number()]);

// One schema for run.json, used by the trainer (writing), the project (listing, resuming) and export.
// The envelope and what export relies on are checked strictly; nested training details (history
// entries, metrics) are owned by the trainer and only checked for the fields others read.
const runSchema = z.looseObject({
  format: z.literal('refit-run'),
  version: z.literal(1),
  id: z.string().regex(RUN_ID),
  created: z.string(),
  updated: z.string(),
  status: z.enum(['running', 'completed', 'early-stopped', 'cancelled', 'failed']),
  error: z.string().optional(),
  config: z.looseObject({
    backbone: z.string(),
    weights: z.enum(['imagenet', 'none']),
    mode: z.enum(['head', 'finetune', 'full']),
    inputSize: z.number().int().positive(),
    learningRate: z.number(),
  }),
  labels: z.array(z.string().min(1)).min(2),
  preprocessing: z.discriminatedUnion('mode', [
    z.object({ mode: z.literal('caffe'), mean: triple }),
    z.object({ mode: z.literal('torch'), mean: triple, std: triple }),
    z.object({ mode: z.literal('tf') }),
  ]),
  datasetFingerprint: z.string(),
  trainImages: z.number(),
  valImages: z.number(),
  history: z.array(z.looseObject({ epoch: z.number() })),
  bestEpoch: z.number().nullable(),
  lastEpoch: z.number(),
  metrics: z
    .looseObject({ valAccuracy: z.number(), valLoss: z.number(), bestEpoch: z.number(), perClass: z.array(z.looseObject({ name: z.string() })) })
    .nullable(),
  featureKey: z.string().optional(),
  parent: z.string().optional(),
  name: z.string().min(1).max(RUN_NAME_MAX).optional(),
  trainer: z.object({ engine: z.enum(['onnxruntime', 'tfjs']), reason: z.string() }).optional(),
});

const RUN_FORMAT = { format: 'refit-run', version: 1, schema: runSchema, what: 'run' } as const;

/** Reads and checks a run.json; `missing` is the message when it does not exist. */
export async function readRunFile(file: string, missing: string): Promise<RunRecord> {
  return (await readVersionedJson(file, RUN_FORMAT, { missing })) as unknown as RunRecord;
}

export async function readRun(projectDir: string, id: string): Promise<RunRecord> {
  const file = path.join(runDir(projectDir, id), RUN_FILE);
  return readRunFile(file, `No run "${id}" in ${path.resolve(projectDir)}: ${file} does not exist`);
}

/** Validates and writes runs/<id>/run.json atomically (creating the run folder). */
export async function writeRun(projectDir: string, record: RunRecord): Promise<void> {
  const dir = runDir(projectDir, record.id);
  const file = path.join(dir, RUN_FILE);
  const parsed = runSchema.safeParse(record);
  if (!parsed.success) throw new Error(`Refusing to write an invalid run record to ${file}: ${describeIssues(parsed.error)}`);
  await mkdir(dir, { recursive: true });
  await writeJsonAtomic(file, record);
}

/**
 * Names a run (run.json `name`; null removes it, and the UI shows a name made from the run's facts).
 * The run's folder and id stay as they are.
 */
export async function renameRun(projectDir: string, id: string, name: string | null): Promise<RunRecord> {
  const record = await readRun(projectDir, id);
  const next: RunRecord = { ...record };
  if (name === null) delete next.name;
  else next.name = name;
  await writeRun(projectDir, next);
  return next;
}

/**
 * The project's runs, oldest first. Folders without a run.json (a run being created) are skipped;
 * a run.json that cannot be read is listed in `unreadable` with the reason, so one damaged run never
 * hides the others.
 */
export async function listRuns(projectDir: string): Promise<{ runs: RunRecord[]; unreadable: { id: string; error: string }[] }> {
  const root = path.join(path.resolve(projectDir), RUNS_DIR);
  let names: string[];
  try {
    names = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && RUN_ID.test(e.name)).map((e) => e.name);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { runs: [], unreadable: [] };
    throw err;
  }
  const runs: RunRecord[] = [];
  const unreadable: { id: string; error: string }[] = [];
  for (const id of names.sort()) {
    const exists = await stat(path.join(root, id, RUN_FILE)).then(() => true, () => false);
    if (!exists) continue;
    try {
      runs.push(await readRun(projectDir, id));
    } catch (err) {
      unreadable.push({ id, error: (err as Error).message });
    }
  }
  return { runs, unreadable };
}
