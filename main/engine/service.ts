// The engine behind the contract (main/api/contract.ts): one object that every host drives — the
// Electron main process through IPC, the browser host through its WebSocket, tests directly. It
// validates each request, runs it with the engine modules, and reports events to its listeners.
//
// State it keeps: the open project and its last scan, the one training run in progress (training
// itself runs in a child process, see train-process.ts), the classifier last used by classify.*
// (kept loaded until another run is asked for), and a measured compute throughput for the model
// cards' time estimates. Changes to the project (open, add folders, rescan, rename, remove, exclude)
// run one at a time, in order.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import {
  methodSchemas,
  parseParams,
  type ClassifyRow,
  type DatasetView,
  type DirListing,
  type EventName,
  type Events,
  type ImagePage,
  type MethodName,
  type ModelCard,
  type Params,
  type ProjectView,
  type Results,
  type RunSummary,
  type TrainingStatus,
} from '../api/contract';
import type { DatasetReport } from '../api/dataset';
import type { RunRecord, TrainEvent } from '../api/training';
import { disposeAll } from '../../models/heads';
import { listBackbones, getBackbone } from '../../models/registry';
import type { Preprocessing } from '../../models/types';
import { writeJsonAtomic } from './atomic-fs';
import { currentBackend, initBackend } from './backend';
import { checkpointExists, loadModel } from './checkpoint';
import { bestThroughput, estimateSeconds, measureThroughput, type Throughput } from './estimates';
import { createForwardPass, type ForwardPass } from './onnx-runtime';
import { exportRun, REFIT_VERSION } from './export';
import { entryKind, IMAGE_EXTENSIONS, isHiddenOrSystemName, isImageFileName } from './image-files';
import { expandImagePaths } from './predict';
import { predictImages } from './predict-images';
import {
  addSources,
  cacheDir,
  excludeImage,
  includeImage,
  INDEX_FILE,
  listRuns,
  openOrCreateProject,
  openProject,
  readRun,
  removeClass,
  renameClass,
  runDir,
  scanProject,
  type Project,
} from './project';
import { ScanIndex } from './scan-index';
import type { StartOptions, TrainingHandle } from './train-process';
import { checkLaunch, launchRun } from './run-launch';
import { thumbnailDataUrl } from './thumbnails';

export type ServiceListener = (event: EventName, payload: Events[EventName]) => void;

export interface EngineServiceOptions {
  host: 'electron' | 'browser';
  /** How the training process is made (Electron passes one built on utilityProcess); default: child_process.fork. */
  spawnTraining?: StartOptions['spawn'];
  /** The recent-projects list; default: <user config dir>/refit/recent-projects.json. */
  recentFile?: string;
}

export interface EngineService {
  /** Runs `method` with `params` (validated first); rejects with an Error whose message says what is wrong and what to do. */
  call(method: string, params: unknown): Promise<unknown>;
  /** Listens to every event; returns the function that stops listening. */
  on(listener: ServiceListener): () => void;
  /** Cancels a training in progress (killing it if it does not stop within a few seconds) and frees the loaded model. */
  dispose(): Promise<void>;
}

/** Limits of classify.upload: each image (decoded from base64), and all of one request together. */
export const MAX_UPLOAD_IMAGE_BYTES = 20 * 1024 * 1024;
export const MAX_UPLOAD_TOTAL_BYTES = 256 * 1024 * 1024;
const MAX_RECENT = 10;
const SCAN_PROGRESS_INTERVAL_MS = 100;
const DISPOSE_CANCEL_TIMEOUT_MS = 10_000;

export function defaultConfigDir(): string {
  if (process.env.XDG_CONFIG_HOME) return process.env.XDG_CONFIG_HOME;
  if (process.platform === 'win32' && process.env.APPDATA) return process.env.APPDATA;
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support');
  return path.join(os.homedir(), '.config');
}

type Handlers = { [M in MethodName]: (params: Params<M>) => Promise<Results[M]> };

interface ActiveTraining {
  runId: string;
  state: 'running' | 'cancelling';
  last: TrainEvent | null;
  handle?: TrainingHandle;
  cancelRequested: boolean;
  /** Settles once the run ended and 'training.ended' was emitted. */
  finished?: Promise<void>;
}

interface LoadedClassifier {
  key: string;
  runId: string;
  model: tf.LayersModel;
  labels: string[];
  preprocessing: Preprocessing;
  /** The classifier's forward pass, made at load: onnxruntime when it can (off the event loop, so IPC stays responsive), else TF.js. */
  forward: ForwardPass;
}

function disposeClassifier(c: LoadedClassifier): void {
  c.forward.dispose();
  disposeAll(c.model);
}

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0);
const byPath = (a: { file: string }, b: { file: string }) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

function isInside(file: string, folder: string): boolean {
  const prefix = folder.endsWith(path.sep) ? folder : folder + path.sep;
  return file.startsWith(prefix);
}

/** Runs tasks one at a time, in the order they were queued (a failed task does not stop the queue). */
function serialQueue() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}

export function createEngineService(options: EngineServiceOptions): EngineService {
  const recentFile = options.recentFile ?? path.join(defaultConfigDir(), 'refit', 'recent-projects.json');
  const listeners = new Set<ServiceListener>();
  const projectQueue = serialQueue();
  const classifyQueue = serialQueue();
  const recentQueue = serialQueue();

  let project: Project | null = null;
  let report: DatasetReport | null = null;
  let hashes: Map<string, string> | null = null;
  let training: ActiveTraining | null = null;
  let classifier: LoadedClassifier | null = null;
  let throughput: Throughput | null = null;
  let measuring: Promise<void> | null = null;
  let disposed = false;

  function emit<E extends EventName>(event: E, payload: Events[E]): void {
    for (const listener of [...listeners]) {
      try {
        listener(event, payload);
      } catch {
        // A failing listener (a closed window, a dropped socket) must not break the engine or the others.
      }
    }
  }

  function requireProject(): Project {
    if (!project) throw new Error('No project is open: open a project folder or create a new project first');
    return project;
  }

  function projectView(p: Project, r: DatasetReport | null): ProjectView {
    const counts = new Map(r?.classes.map((c) => [c.name, c.images]) ?? []);
    return {
      dir: p.dir,
      name: p.data.name,
      classes: p.data.classes.map((c) => ({ name: c.name, folders: [...c.folders], images: counts.get(c.name) ?? 0 })),
      exclusions: [...p.data.exclusions],
    };
  }

  function datasetView(p: Project, r: DatasetReport): DatasetView {
    return { project: projectView(p, r), classes: r.classes, problems: r.problems, warnings: r.warnings, totalImages: r.images.length };
  }

  /** Rescans the open project (only new or changed files are read), emitting throttled 'scan.progress'. */
  async function rescan(): Promise<DatasetView> {
    const p = requireProject();
    let last = 0;
    const scanned = await scanProject(p, {
      onProgress: (done, total) => {
        const now = performance.now();
        if (done === 0 || done === total || now - last >= SCAN_PROGRESS_INTERVAL_MS) {
          last = now;
          emit('scan.progress', { done, total });
        }
      },
    });
    if (project === p) {
      report = scanned;
      hashes = null;
    }
    return datasetView(p, scanned);
  }

  // ---- recent projects ----

  async function readRecent(): Promise<string[]> {
    try {
      const json = JSON.parse(await readFile(recentFile, 'utf8')) as { projects?: unknown };
      return Array.isArray(json.projects) ? json.projects.filter((d): d is string => typeof d === 'string') : [];
    } catch {
      return []; // missing or damaged: it is only a convenience list
    }
  }

  function addRecent(dir: string): Promise<void> {
    return recentQueue(async () => {
      const projects = [dir, ...(await readRecent()).filter((d) => d !== dir)].slice(0, MAX_RECENT);
      try {
        await mkdir(path.dirname(recentFile), { recursive: true });
        await writeJsonAtomic(recentFile, { format: 'refit-recent', version: 1, projects });
      } catch {
        // Not being able to remember the project (read-only config dir) must not stop opening it.
      }
    });
  }

  // ---- classification ----

  /** The run classify.* uses: `runId`, or the newest completed run with a best checkpoint. */
  async function classifierRun(p: Project, runId: string | undefined): Promise<RunRecord> {
    if (runId) {
      const run = await readRun(p.dir, runId);
      if (run.bestEpoch === null || !(await checkpointExists(path.join(runDir(p.dir, run.id), 'best')))) {
        throw new Error(`Run ${run.id} has no saved model (status: ${run.status}; no epoch finished): choose another run or train again`);
      }
      return run;
    }
    const { runs } = await listRuns(p.dir);
    for (const run of runs.reverse()) {
      if ((run.status === 'completed' || run.status === 'early-stopped') && run.bestEpoch !== null) {
        if (await checkpointExists(path.join(runDir(p.dir, run.id), 'best'))) return run;
      }
    }
    throw new Error(`Project ${p.data.name} has no finished training run with a saved model yet: train a model first, or choose a run`);
  }

  async function loadClassifier(runId: string | undefined): Promise<LoadedClassifier> {
    const p = requireProject();
    const run = await classifierRun(p, runId);
    const best = path.join(runDir(p.dir, run.id), 'best');
    const stamp = (await stat(path.join(best, 'model.json'))).mtimeMs;
    const key = `${p.dir}\0${run.id}\0${stamp}`;
    if (classifier?.key === key) return classifier;
    let model: tf.LayersModel;
    try {
      model = await loadModel(best);
    } catch (err) {
      throw new Error(`Cannot load the model of run ${run.id} from ${best}: ${errorMessage(err)}. Train again or choose another run.`);
    }
    let forward: ForwardPass;
    try {
      forward = await createForwardPass(model, { inputSize: run.config.inputSize });
    } catch (err) {
      disposeAll(model);
      throw new Error(`Cannot run the model of run ${run.id}: ${errorMessage(err)}`);
    }
    const next: LoadedClassifier = { key, runId: run.id, model, labels: run.labels, preprocessing: run.preprocessing, forward };
    if (disposed) {
      disposeClassifier(next);
      throw new Error('the engine is shutting down');
    }
    // Swapped in one step: nothing else ever sees (or frees again) a classifier already freed.
    const old = classifier;
    classifier = next;
    if (old) disposeClassifier(old);
    return next;
  }

  /** `row` as the UI knows the file: named `file`, errors naming it rather than the path classified. */
  function toRow(row: ClassifyRow, file: string): ClassifyRow {
    return { ...row, file, ...(row.error !== undefined ? { error: row.error.split(row.file).join(file) } : {}) };
  }

  async function classify(model: LoadedClassifier, files: AsyncIterable<string> | Iterable<string>, topK: number | undefined, onResult: (r: ClassifyRow) => void) {
    await predictImages(model.forward, files, {
      preprocessing: model.preprocessing,
      labels: model.labels,
      topK: Math.min(topK ?? 3, model.labels.length),
      onResult,
    });
  }

  /** Image bytes from base64 or a data: URL; a string describing the problem when it is not that. */
  function decodeUpload(data: string): Buffer | string {
    const base64 = data.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64)) return 'the data is not base64 (send the file’s bytes base64-encoded, or a data: URL)';
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.byteLength === 0) return 'the file is empty (0 bytes)';
    if (bytes.byteLength > MAX_UPLOAD_IMAGE_BYTES) {
      return `the file is ${(bytes.byteLength / 1024 / 1024).toFixed(1)} MB; at most ${MAX_UPLOAD_IMAGE_BYTES / 1024 / 1024} MB per image can be sent (classify large files by path instead)`;
    }
    return bytes;
  }

  // ---- training ----

  function trainingBusyError(active: ActiveTraining): Error {
    return new Error(`A training run is already in progress (run ${active.runId}): wait until it ends, or cancel it, before starting another`);
  }

  async function startRun(params: Params<'training.start'>): Promise<{ runId: string }> {
    if (training) throw trainingBusyError(training);
    const p = requireProject();
    const checked = await checkLaunch({
      projectDir: p.dir,
      config: params.config,
      ...(params.resumeRunId ? { resumeRunId: params.resumeRunId } : {}),
      ...(params.parentRunId ? { parentRunId: params.parentRunId } : {}),
    });
    if (training) throw trainingBusyError(training);
    const active: ActiveTraining = { runId: checked.runId, state: 'running', last: null, cancelRequested: false };
    training = active; // claimed before the scan: a second start is refused from here on

    try {
      const view = await projectQueue(rescan);
      active.handle = await launchRun(checked, p.dir, {
        images: (project === p ? report : null)?.images ?? [],
        datasetName: `Project ${p.data.name}`,
        skipped: view.problems.length,
        ...(currentBackend() ? { backend: currentBackend() } : {}),
        ...(options.spawnTraining ? { spawn: options.spawnTraining } : {}),
        onEvent: (event) => {
          active.last = event;
          emit('training.event', { runId: active.runId, event });
        },
        beforeStart: () => {
          if (disposed) throw new Error('The Refit engine is shutting down: training was not started');
        },
      });
      if (active.cancelRequested) active.handle.cancel();
    } catch (err) {
      training = null;
      throw err;
    }

    const end = (status: Events['training.ended']['status'], error?: string) => {
      if (training === active) training = null;
      if (classifier?.runId === active.runId) {
        // The run's best checkpoint may have changed (a resumed run): load it afresh next time.
        disposeClassifier(classifier);
        classifier = null;
      }
      emit('training.ended', { runId: active.runId, status, ...(error !== undefined ? { error } : {}) });
    };
    active.finished = active.handle.done.then(
      (result) => end(result.status),
      (err) => end('failed', errorMessage(err)),
    );
    return { runId: active.runId };
  }

  /**
   * Measures the backend's throughput and onnxruntime's (~0.1–0.3 s together) and keeps the best
   * value seen of each: other work on the machine only ever makes a measurement lower, so the maximum
   * over time approaches the real rate. Not re-measured while a training process competes for the CPU.
   */
  async function updateThroughput(): Promise<void> {
    if (throughput && training) return;
    measuring ??= (async () => {
      if (!currentBackend()) await initBackend();
      const measured = await measureThroughput();
      throughput = bestThroughput(throughput, measured);
    })()
      .catch(() => undefined) // no estimate is better than a failed models.list
      .finally(() => (measuring = null));
    await measuring;
  }

  // ---- the methods ----

  const handlers: Handlers = {
    'app.info': async () => ({
      version: REFIT_VERSION,
      backend: currentBackend() ?? (await initBackend()),
      host: options.host,
      project: project ? projectView(project, report) : null,
    }),

    'project.open': (params) =>
      projectQueue(async () => {
        const dir = path.resolve(params.dir);
        let opened: Project;
        if (params.create) {
          opened = await openOrCreateProject(dir, { name: params.name?.trim() || path.basename(dir) || 'Refit project' });
        } else {
          const exists = await stat(path.join(dir, 'project.json')).then(() => true, () => false);
          if (!exists) throw new Error(`${dir} is not a Refit project (it has no project.json): choose a project folder, or create a new project there`);
          opened = await openProject(dir);
        }
        if (classifier) {
          disposeClassifier(classifier);
          classifier = null;
        }
        project = opened;
        report = null;
        hashes = null;
        const view = await rescan();
        await addRecent(opened.dir);
        return view;
      }),

    'project.current': async () => (project && report ? datasetView(project, report) : null),

    'project.recent': async () => {
      const recent = await readRecent();
      const exists = await Promise.all(recent.map((d) => stat(path.join(d, 'project.json')).then(() => true, () => false)));
      return recent.filter((_, i) => exists[i]);
    },

    'dataset.addFolders': (params) =>
      projectQueue(async () => {
        await addSources(requireProject(), params.folders.map((f) => path.resolve(f)));
        return rescan();
      }),

    'dataset.scan': () => projectQueue(rescan),

    'dataset.renameClass': (params) =>
      projectQueue(async () => {
        await renameClass(requireProject(), params.from, params.to);
        return rescan();
      }),

    'dataset.removeClass': (params) =>
      projectQueue(async () => {
        await removeClass(requireProject(), params.name);
        return rescan();
      }),

    'dataset.setExcluded': (params) =>
      projectQueue(async () => {
        const p = requireProject();
        await (params.excluded ? excludeImage(p, params.file) : includeImage(p, params.file));
        return rescan();
      }),

    'dataset.images': async (params): Promise<ImagePage> => {
      const p = requireProject();
      const source = p.data.classes.find((c) => c.name === params.className);
      if (!source) {
        throw new Error(`No class "${params.className}" in project ${p.data.name}; its classes are: ${p.data.classes.map((c) => c.name).join(', ') || 'none (add folders first)'}`);
      }
      if (!report) await projectQueue(rescan);
      const included: ImagePage['images'] = (report?.images ?? [])
        .filter((i) => i.className === params.className)
        .map(({ file, hash, width, height }) => ({ file, hash, width, height, excluded: false }));
      // Excluded images stay visible in their class (so they can be brought back), with what the
      // scan index remembers about them.
      const excludedFiles = p.data.exclusions.filter((f) => source.folders.some((folder) => isInside(f, path.resolve(folder))));
      let excluded: ImagePage['images'] = [];
      if (excludedFiles.length > 0) {
        const index = await ScanIndex.load(path.join(p.dir, INDEX_FILE));
        excluded = excludedFiles.map((file) => {
          const facts = index.get(file);
          return { file, hash: facts?.hash ?? '', width: facts?.width ?? 0, height: facts?.height ?? 0, excluded: true };
        });
      }
      const all = [...included, ...excluded].sort(byPath);
      return { className: params.className, total: all.length, images: all.slice(params.offset, params.offset + params.limit) };
    },

    'dataset.thumbnail': async (params) => {
      const file = path.resolve(params.file);
      if (report && !hashes) hashes = new Map(report.images.map((i) => [i.file, i.hash]));
      const dataUrl = await thumbnailDataUrl(file, {
        size: params.size,
        ...(project ? { cacheDir: path.join(cacheDir(project.dir), 'thumbs') } : {}),
        ...(hashes?.has(file) ? { hash: hashes.get(file) } : {}),
      });
      return { dataUrl };
    },

    'fs.listDir': async (params): Promise<DirListing> => {
      const dir = path.resolve(params.dir ?? os.homedir());
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new Error(`Folder not found: ${dir} (moved or deleted?); choose another folder`);
        if (code === 'ENOTDIR') throw new Error(`Not a folder: ${dir} is a file; choose a folder`);
        if (code === 'EACCES' || code === 'EPERM') throw new Error(`Cannot open ${dir}: permission denied; choose another folder`);
        throw new Error(`Cannot open ${dir}: ${code ?? errorMessage(err)}`);
      }
      const listed: DirListing['entries'] = [];
      for (const entry of entries) {
        if (isHiddenOrSystemName(entry.name)) continue;
        const full = path.join(dir, entry.name);
        const { isDir, isFile } = await entryKind(full, entry).catch(() => ({ isDir: false, isFile: false }));
        if (isDir || (isFile && isImageFileName(entry.name))) listed.push({ name: entry.name, path: full, isDir });
      }
      // Folders first, then images; each in natural order ("img2" before "img10").
      listed.sort((a, b) => (a.isDir !== b.isDir ? (a.isDir ? -1 : 1) : byName(a.name, b.name)));
      const parent = path.dirname(dir);
      return { dir, parent: parent === dir ? null : parent, entries: listed };
    },

    'models.list': async (): Promise<ModelCard[]> => {
      const images = project && report ? report.images.length : 0;
      if (images > 0) await updateThroughput();
      const measured = images > 0 ? throughput : null;
      return listBackbones().map((info) => ({
        id: info.id,
        name: info.name,
        description: info.description,
        params: info.params,
        inputSize: info.inputSize,
        featureDim: info.featureDim,
        flops: info.flops,
        weights: [...info.weights],
        estimates: measured ? estimateSeconds(info, images, measured) : null,
      }));
    },

    'training.start': (params) => startRun(params),

    'training.cancel': async () => {
      const active = training;
      if (!active) return { cancelled: false };
      active.state = 'cancelling';
      if (active.handle) active.handle.cancel();
      else active.cancelRequested = true;
      return { cancelled: true };
    },

    'training.status': async (): Promise<TrainingStatus> => ({
      runId: training?.runId ?? null,
      state: training?.state ?? 'idle',
      last: training?.last ?? null,
    }),

    'runs.list': async (): Promise<RunSummary[]> => {
      const { runs } = await listRuns(requireProject().dir);
      return runs.reverse().map((run) => ({
        id: run.id,
        created: run.created,
        status: run.status,
        backbone: run.config.backbone,
        mode: run.config.mode,
        valAccuracy: run.metrics?.valAccuracy ?? null,
        epochs: run.history.length,
      }));
    },

    'runs.get': async (params) => readRun(requireProject().dir, params.runId),

    'classify.files': (params) =>
      classifyQueue(async () => {
        const model = await loadClassifier(params.runId);
        const rows: ClassifyRow[] = [];
        await classify(model, expandImagePaths(params.paths.map((f) => path.resolve(f))), params.topK, (r) => rows.push(r));
        if (rows.length === 0) throw new Error(`No image files found in ${params.paths.join(', ')}: choose image files or folders that contain images`);
        return rows;
      }),

    'classify.upload': (params) =>
      classifyQueue(async () => {
        const model = await loadClassifier(params.runId);
        const decoded = params.images.map((image) => decodeUpload(image.data));
        const total = decoded.reduce((sum, d) => sum + (typeof d === 'string' ? 0 : d.byteLength), 0);
        if (total > MAX_UPLOAD_TOTAL_BYTES) {
          throw new Error(`classify.upload: ${(total / 1024 / 1024).toFixed(0)} MB of images in one request; send at most ${MAX_UPLOAD_TOTAL_BYTES / 1024 / 1024} MB at a time`);
        }
        const rows: ClassifyRow[] = params.images.map((image, i) => ({ file: image.name, top: [], ...(typeof decoded[i] === 'string' ? { error: decoded[i] as string } : {}) }));
        const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-upload-'));
        try {
          const byTemp = new Map<string, number>();
          for (const [i, data] of decoded.entries()) {
            if (typeof data === 'string') continue;
            const ext = path.extname(params.images[i].name).toLowerCase();
            const file = path.join(tmp, `${i}${(IMAGE_EXTENSIONS as readonly string[]).includes(ext) ? ext : ''}`);
            await writeFile(file, data);
            byTemp.set(file, i);
          }
          await classify(model, [...byTemp.keys()], params.topK, (r) => {
            const i = byTemp.get(r.file)!;
            const name = params.images[i].name;
            // Errors name the file as the UI knows it, not the temporary copy.
            rows[i] = toRow(r, name);
          });
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        return rows;
      }),

    'export.run': async (params) => {
      const p = requireProject();
      const run = await readRun(p.dir, params.runId);
      const exported = await exportRun(runDir(p.dir, run.id), path.resolve(params.outDir), {
        onProgress: (progress) => emit('export.progress', progress),
        ...(params.onnx ? { onnx: true } : {}),
      });
      const usage = [
        `Exported the ${getBackbone(exported.backbone).name} classifier of run ${run.id} (${exported.labels.length} classes: ${exported.labels.join(', ')}) to ${exported.outDir}.`,
        `Classify images with it: refit predict "${exported.outDir}" photos/ --top 3`,
        `Or load model.json with plain TF.js (@tensorflow/tfjs): labels, input size (${run.config.inputSize}×${run.config.inputSize}) and preprocessing are in refit.json; README.md in the folder has a complete example.`,
        ...(params.onnx ? ['model.onnx runs in onnxruntime, OpenCV DNN and other ONNX runtimes: its input layout and the exact preprocessing are in refit.json ("onnx").'] : []),
      ].join('\n');
      return {
        outDir: exported.outDir,
        files: exported.files.map((f) => ({ path: f.path, bytes: f.bytes })),
        totalBytes: exported.totalBytes,
        usage,
      };
    },
  };

  return {
    async call(method: string, params: unknown): Promise<unknown> {
      if (disposed) throw new Error(`${method}: the Refit engine has shut down; restart Refit`);
      if (typeof method !== 'string' || !Object.hasOwn(methodSchemas, method)) {
        throw new Error(`Unknown method "${String(method)}"; the engine knows: ${Object.keys(methodSchemas).join(', ')}`);
      }
      const name = method as MethodName;
      const parsed = parseParams(name, params);
      return (handlers[name] as (p: unknown) => Promise<unknown>)(parsed);
    },

    on(listener: ServiceListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      const active = training;
      if (active?.handle) {
        active.handle.cancel();
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([
          active.finished!.then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DISPOSE_CANCEL_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
        if (!stopped) {
          active.handle.kill();
          await active.finished;
        }
      }
      if (classifier) {
        disposeClassifier(classifier);
        classifier = null;
      }
      listeners.clear();
    },
  };
}
