// The Classify screen's model, for the engine service: the best checkpoint of a run, loaded once with
// its forward pass (onnxruntime when it can: off the event loop, so IPC stays responsive) and kept
// until another run is asked for, the project changes, or the run trains again.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ClassifyRow, Events, Params } from '../../api/contract';
import type { Preprocessing } from '../../api/models';
import type { RunRecord } from '../../api/training';
import { disposeAll } from '../../../models/heads';
import { checkpointExists, loadModel } from '../checkpoint';
import { errorText } from '../../api/excerpt';
import { IMAGE_EXTENSIONS } from '../image-files';
import { createForwardPass, type ForwardPass } from '../onnx-runtime';
import { expandImagePaths } from '../predict';
import { predictImages } from '../predict-images';
import { listRuns, readRun, runDir, type Project } from '../project';
import { serialQueue } from './queue';
import { RefitError } from '../../api/errors';

/** Limits of classify.upload: each image (decoded from base64), and all of one request together. */
export const MAX_UPLOAD_IMAGE_BYTES = 20 * 1024 * 1024;
export const MAX_UPLOAD_TOTAL_BYTES = 256 * 1024 * 1024;

interface LoadedClassifier {
  key: string;
  runId: string;
  model: tf.LayersModel;
  labels: string[];
  preprocessing: Preprocessing;
  forward: ForwardPass;
}

function disposeClassifier(c: LoadedClassifier): void {
  c.forward.dispose();
  disposeAll(c.model);
}

/** The run classify.* uses: `runId`, or the newest completed run with a best checkpoint. */
export async function classifierRun(p: Project, runId: string | undefined): Promise<RunRecord> {
  if (runId) {
    const run = await readRun(p.dir, runId);
    if (run.bestEpoch === null || !(await checkpointExists(path.join(runDir(p.dir, run.id), 'best')))) {
      throw new RefitError('no-model', `Run ${run.id} has no saved model (status: ${run.status}; no epoch finished): choose another run or train again`);
    }
    return run;
  }
  const { runs } = await listRuns(p.dir);
  for (const run of runs.reverse()) {
    if ((run.status === 'completed' || run.status === 'early-stopped') && run.bestEpoch !== null) {
      if (await checkpointExists(path.join(runDir(p.dir, run.id), 'best'))) return run;
    }
  }
  throw new RefitError('no-model', `Project ${p.data.name} has no trained model yet: train one on the Train screen first`);
}

/** Image bytes from base64 or a data: URL; a string describing the problem when it is not that. */
export function decodeUpload(data: string): Buffer | string {
  const base64 = data.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64)) return 'the data is not base64 (send the file’s bytes base64-encoded, or a data: URL)';
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.byteLength === 0) return 'the file is empty (0 bytes)';
  if (bytes.byteLength > MAX_UPLOAD_IMAGE_BYTES) {
    return `the file is ${(bytes.byteLength / 1024 / 1024).toFixed(1)} MB; at most ${MAX_UPLOAD_IMAGE_BYTES / 1024 / 1024} MB per image can be sent (classify large files by path instead)`;
  }
  return bytes;
}

export type ClassifyProgress = Events['classify.progress'];

/** How often a tagged request's new rows are sent at most (the first row goes at once). */
const PROGRESS_INTERVAL_MS = 250;

/** Collects a tagged request's rows and sends them in small groups as they are computed. */
class ProgressStream {
  private pending: ClassifyRow[] = [];
  private done = 0;
  private last = 0;
  constructor(
    private readonly tag: string | undefined,
    private readonly send: ((p: ClassifyProgress) => void) | undefined,
    private total = 0,
  ) {}

  loading(): void {
    if (this.tag && this.send) this.send({ tag: this.tag, stage: 'loading', done: 0, total: this.total, rows: [] });
  }

  start(total: number): void {
    this.total = total;
    this.last = 0;
    if (this.tag && this.send) this.send({ tag: this.tag, stage: 'classifying', done: 0, total, rows: [] });
  }

  add(row: ClassifyRow): void {
    this.done += 1;
    if (!this.tag || !this.send) return;
    this.pending.push(row);
    const now = performance.now();
    if (now - this.last >= PROGRESS_INTERVAL_MS) this.flush(now);
  }

  flush(now = performance.now()): void {
    if (!this.tag || !this.send || this.pending.length === 0) return;
    this.last = now;
    const rows = this.pending;
    this.pending = [];
    this.send({ tag: this.tag, stage: 'classifying', done: this.done, total: Math.max(this.total, this.done), rows });
  }
}

/** `row` as the UI knows the file: named `file`, errors naming it rather than the path classified. */
function asNamed(row: ClassifyRow, file: string): ClassifyRow {
  return { ...row, file, ...(row.error !== undefined ? { error: row.error.split(row.file).join(file) } : {}) };
}

export class ClassifierSession {
  private loaded: LoadedClassifier | null = null;
  private closed = false;
  private readonly queue = serialQueue();

  constructor(
    private readonly requireProject: () => Project,
    /** Where tagged requests' 'classify.progress' events go. */
    private readonly onProgress?: (progress: ClassifyProgress) => void,
  ) {}

  /** Frees the loaded model (all of them, or only run `runId`'s, whose checkpoint may have changed). */
  drop(runId?: string): void {
    if (!this.loaded || (runId !== undefined && this.loaded.runId !== runId)) return;
    disposeClassifier(this.loaded);
    this.loaded = null;
  }

  /** Frees the model for good: nothing is loaded after this. */
  close(): void {
    this.closed = true;
    this.drop();
  }

  private async load(runId: string | undefined): Promise<LoadedClassifier> {
    const p = this.requireProject();
    const run = await classifierRun(p, runId);
    const best = path.join(runDir(p.dir, run.id), 'best');
    const stamp = (await stat(path.join(best, 'model.json'))).mtimeMs;
    const key = `${p.dir}\0${run.id}\0${stamp}`;
    if (this.loaded?.key === key) return this.loaded;
    let model: tf.LayersModel;
    try {
      model = await loadModel(best);
    } catch (err) {
      throw new Error(`Cannot load the model of run ${run.id} from ${best}: ${errorText(err)}. Train again or choose another run.`);
    }
    let forward: ForwardPass;
    try {
      forward = await createForwardPass(model, { inputSize: run.config.inputSize });
    } catch (err) {
      disposeAll(model);
      throw new Error(`Cannot run the model of run ${run.id}: ${errorText(err)}`);
    }
    const next: LoadedClassifier = { key, runId: run.id, model, labels: run.labels, preprocessing: run.preprocessing, forward };
    if (this.closed) {
      disposeClassifier(next);
      throw new Error('the engine is shutting down');
    }
    // Swapped in one step: nothing else ever sees (or frees again) a classifier already freed.
    const old = this.loaded;
    this.loaded = next;
    if (old) disposeClassifier(old);
    return next;
  }

  private async classify(model: LoadedClassifier, files: AsyncIterable<string> | Iterable<string>, topK: number | undefined, onResult: (r: ClassifyRow) => void) {
    await predictImages(model.forward, files, {
      preprocessing: model.preprocessing,
      labels: model.labels,
      topK: Math.min(topK ?? 3, model.labels.length),
      onResult,
    });
  }

  files(params: Params<'classify.files'>): Promise<ClassifyRow[]> {
    return this.queue(async () => {
      const stream = new ProgressStream(params.tag, this.onProgress);
      stream.loading();
      const model = await this.load(params.runId);
      // The whole list first: "26 images" is known before the first is classified.
      const files: string[] = [];
      for await (const file of expandImagePaths(params.paths.map((f) => path.resolve(f)))) files.push(file);
      stream.start(files.length);
      const rows: ClassifyRow[] = [];
      await this.classify(model, files, params.topK, (r) => {
        rows.push(r);
        stream.add(r);
      });
      stream.flush();
      if (rows.length === 0) throw new Error(`No image files found in ${params.paths.join(', ')}: choose image files or folders that contain images`);
      return rows;
    });
  }

  upload(params: Params<'classify.upload'>): Promise<ClassifyRow[]> {
    return this.queue(async () => {
      const stream = new ProgressStream(params.tag, this.onProgress, params.images.length);
      stream.loading();
      const model = await this.load(params.runId);
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
        stream.start(byTemp.size);
        await this.classify(model, [...byTemp.keys()], params.topK, (r) => {
          const i = byTemp.get(r.file)!;
          // Errors name the file as the UI knows it, not the temporary copy.
          rows[i] = asNamed(r, params.images[i].name);
          stream.add(rows[i]);
        });
        stream.flush();
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      return rows;
    });
  }
}
